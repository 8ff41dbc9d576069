#include "keys/service.hpp"

#include "common/key_hash.hpp"
#include "keys/repository.hpp"
#include "store/migrations.hpp"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace tailgate::keys {

namespace {

// Changes are read again for this long after they were first seen: replicas'
// clocks differ, and applying a change twice does nothing.
constexpr TimeMs kRefreshOverlap = 60'000;

bool same_hash(const std::string& a, const std::string& b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

ApiError store_unavailable() {
    return ApiError::unavailable(
        "The key store is unavailable: keys already in use keep working, a key not seen before waits for it", 5);
}

}  // namespace

KeyService::KeyService(store::DatabasePtr db, Settings s, FleetPtr fleet)
    : db_(std::move(db)), settings_(std::move(s)), fleet_(std::move(fleet)) {
    db_->run([](store::Connection& c) { store::migrate(c, kComponent, migrations()); });
    auto m = std::make_shared<Caller>();
    m->master = true;
    if (!settings_.master_key.empty()) {
        m->hash_prefix = key_hash_prefix(settings_.master_key);
        master_token_ = key_token_hash(settings_.master_key);
    }
    master_ = std::move(m);
    watermark_ = now_ms();
    if (auto f = std::move(fleet_)) attach_fleet(std::move(f));
    thread_ = std::thread([this] { maintain(); });
}

void KeyService::attach_fleet(FleetPtr fleet) {
    if (!fleet || fleet_) return;
    fleet_ = std::move(fleet);
    fleet_->subscribe([this](const FleetChange& ch) { on_fleet_change(ch); });
    cache_.outbox().enable();
    fleet_->share_usage([this] { return collect_usage(); }, [this](std::string_view p) { receive_usage(p); });
    fleet_->on_reconnect([this] {
        // Changes published while the channel was down were lost: read them from the store now.
        {
            std::lock_guard lk(wake_mu_);
            resync_.store(true, std::memory_order_release);
        }
        wake_.notify_all();
    });
}

namespace {
// A replica's in-flight count is sent again this often while nonzero; the
// others forget it after Usage::kInFlightTtlMs without news.
constexpr TimeMs kInFlightKeepaliveMs = 1000;
}  // namespace

std::string KeyService::collect_usage() {
    const TimeMs now = now_ms();
    std::vector<UsagePtr> changed = cache_.outbox().take();
    changed.insert(changed.end(), busy_.begin(), busy_.end());
    busy_.clear();
    std::vector<UsageDelta> deltas;
    for (const UsagePtr& u : changed) {
        if (auto d = u->take_delta(now, kInFlightKeepaliveMs)) deltas.push_back(std::move(*d));
        if (u->in_flight() > 0) busy_.push_back(u);
    }
    std::sort(busy_.begin(), busy_.end());
    busy_.erase(std::unique(busy_.begin(), busy_.end()), busy_.end());
    if (deltas.empty()) return {};
    usage_sent_.fetch_add(deltas.size(), std::memory_order_relaxed);
    return encode_usage(fleet_->replica(), now, deltas);
}

void KeyService::receive_usage(std::string_view payload) {
    std::string replica;
    TimeMs sent_at = 0;
    std::vector<UsageDelta> deltas;
    if (!decode_usage(payload, replica, sent_at, deltas)) return;  // a newer or broken sender
    const TimeMs now = now_ms();
    for (const UsageDelta& d : deltas) {
        const std::string id = d.id.substr(1);
        UsagePtr u = d.id[0] == 'k' ? cache_.key_usage(id) : cache_.team_usage(id);
        u->remote(replica, d, sent_at, now);
    }
    usage_received_.fetch_add(deltas.size(), std::memory_order_relaxed);
}

KeyService::~KeyService() {
    {
        std::lock_guard lk(wake_mu_);
        stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
}

Auth KeyService::authenticate(std::string_view key) {
    if (!auth_enabled()) return Auth{master_, std::nullopt};
    const std::string token = key_token_hash(key);
    // Both sides hashed: the comparison takes the same time whatever the key's length or prefix.
    if (same_hash(token, master_token_)) return Auth{master_, std::nullopt};
    const TimeMs now = now_ms();
    CallerPtr c;
    switch (cache_.find(token, now, c)) {
        case KeyCache::Hit::Found:
            if (!same_hash(c->key->token, token)) return Auth{nullptr, ApiError::unauthorized("Invalid API key")};
            return standing(std::move(c), now);
        case KeyCache::Hit::Absent: return Auth{nullptr, ApiError::unauthorized("Invalid API key")};
        case KeyCache::Hit::Miss: break;
    }
    return lookup(token, now);
}

Auth KeyService::standing(CallerPtr c, TimeMs now) const {
    if (auto e = check_standing(*c, now)) return Auth{nullptr, std::move(e)};
    return Auth{std::move(c), std::nullopt};
}

Auth KeyService::lookup(const std::string& token, TimeMs now) {
    std::shared_future<Loaded> fut;
    {
        std::lock_guard lk(loading_mu_);
        auto it = loading_.find(token);
        if (it != loading_.end()) {
            fut = it->second;
        } else {
            db_lookups_.fetch_add(1, std::memory_order_relaxed);
            fut = db_->submit([token](store::Connection& c) -> Loaded {
                          Loaded l;
                          l.first = find_key(c, token);
                          if (l.first && !l.first->team_id.empty()) l.second = find_team(c, l.first->team_id);
                          return l;
                      })
                      .share();
            loading_.emplace(token, fut);
        }
    }
    if (fut.wait_for(settings_.lookup_timeout) != std::future_status::ready) return Auth{nullptr, store_unavailable()};
    Loaded loaded;
    try {
        loaded = fut.get();
    } catch (const std::exception&) {
        std::lock_guard lk(loading_mu_);
        loading_.erase(token);
        return Auth{nullptr, store_unavailable()};
    }
    {
        std::lock_guard lk(loading_mu_);
        loading_.erase(token);
    }
    if (!loaded.first) {
        cache_.put_absent(token, now);
        return Auth{nullptr, ApiError::unauthorized("Invalid API key")};
    }
    return standing(cache_.put(*loaded.first, loaded.second), now);
}

void KeyService::count_tokens(const Caller& c, int64_t tokens, TimeMs now) {
    if (c.key_usage) c.key_usage->add_tokens(tokens, now);
    if (c.team_usage) c.team_usage->add_tokens(tokens, now);
}

void KeyService::record(SpendEvent ev) {
    if (ev.kind == SpendKind::Winner) {
        if (ev.key_usage) ev.key_usage->add_spend(ev.cost);
        if (ev.team_usage) ev.team_usage->add_spend(ev.cost);
    }
    {
        std::lock_guard lk(totals_mu_);
        totals_[{ev.model_group, ev.deployment, ev.kind}] += ev.cost;
    }
    std::lock_guard lk(queue_mu_);
    if (queue_.size() + retry_.size() >= settings_.max_queued_events) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    queue_.push_back(std::move(ev));
}

size_t KeyService::queued_events() const {
    std::lock_guard lk(queue_mu_);
    return queue_.size() + retry_.size() + writing_.load(std::memory_order_relaxed);
}

bool KeyService::flush() {
    std::lock_guard fl(flush_mu_);
    std::vector<SpendEvent> batch;
    {
        std::lock_guard lk(queue_mu_);
        batch.swap(retry_);
        batch.insert(batch.end(), std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
        queue_.clear();
        for (SpendEvent& e : batch)  // spend of a key regenerated since goes to its new token
            if (auto it = renamed_.find(e.api_key); it != renamed_.end()) e.api_key = it->second;
        writing_.store(batch.size(), std::memory_order_relaxed);  // still "not yet written" until committed
    }
    const TimeMs now = now_ms();
    WrittenRows rows;
    try {
        rows = db_->run([&](store::Connection& c) { return write_batch(c, batch, settings_.spend_logs, now); });
    } catch (const std::exception& e) {
        write_failures_.fetch_add(1, std::memory_order_relaxed);
        std::lock_guard lk(queue_mu_);
        batch.insert(batch.end(), std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
        queue_.clear();
        retry_ = std::move(batch);
        writing_.store(0, std::memory_order_relaxed);
        return false;
    }
    auto row_of = [](const std::map<std::string, SpendRow>& m, const std::string& id) -> std::optional<SpendRow> {
        auto it = m.find(id);
        return it == m.end() ? std::nullopt : std::optional(it->second);
    };
    for (const SpendEvent& e : batch) {
        if (e.kind != SpendKind::Winner) continue;
        if (e.key_usage) e.key_usage->written(e.cost, row_of(rows.keys, e.api_key));
        if (e.team_usage) e.team_usage->written(e.cost, row_of(rows.teams, e.team_id));
    }
    written_events_.fetch_add(batch.size(), std::memory_order_relaxed);
    writing_.store(0, std::memory_order_relaxed);
    last_write_.store(now, std::memory_order_relaxed);
    return true;
}

void KeyService::refresh() {
    std::lock_guard fl(flush_mu_);
    const TimeMs since = watermark_ - kRefreshOverlap;
    try {
        auto [keys, teams] = db_->run([since](store::Connection& c) {
            return std::make_pair(keys_changed_since(c, since), teams_changed_since(c, since));
        });
        apply_remote(keys, teams);
        refresh_spend();
    } catch (const std::exception&) {
        // The database logs it and readiness shows it; the cache keeps serving.
    }
}

void KeyService::apply_remote(const std::vector<KeyRecord>& keys, const std::vector<TeamRecord>& teams) {
    for (const TeamRecord& t : teams) {
        watermark_ = std::max(watermark_, t.updated_at);
        if (!cache_.has_team(t.team_id) && t.deleted_at == 0) continue;  // nobody here uses it
        cache_.put_team(t.team_id, t.deleted_at ? std::nullopt : std::optional<TeamRecord>(t));
    }
    const TimeMs now = now_ms();
    for (const KeyRecord& k : keys) {
        watermark_ = std::max(watermark_, k.updated_at);
        CallerPtr c;
        const auto hit = cache_.find(k.token, now, c);
        if (k.deleted_at) {
            if (hit == KeyCache::Hit::Found) cache_.forget(k.token);
            continue;
        }
        if (hit == KeyCache::Hit::Found)
            cache_.put(k, std::nullopt);
        else if (hit == KeyCache::Hit::Absent)
            cache_.forget(k.token);  // created elsewhere after it was looked up here
    }
}

void KeyService::refresh_spend() {
    std::vector<std::string> tokens, teams;
    std::map<std::string, UsagePtr> key_usage, team_usage;
    for (const CallerPtr& c : cache_.callers()) {
        if (!c->key) continue;
        if (c->key->limits.max_budget) {
            tokens.push_back(c->key->token);
            key_usage[c->key->token] = c->key_usage;
        }
        if (c->team && c->team->limits.max_budget && !team_usage.count(c->team->team_id)) {
            teams.push_back(c->team->team_id);
            team_usage[c->team->team_id] = c->team_usage;
        }
    }
    if (tokens.empty() && teams.empty()) return;
    auto [ks, ts] = db_->run([&](store::Connection& c) {
        return std::make_pair(key_spend(c, tokens), team_spend(c, teams));
    });
    for (const StoredSpend& s : ks) key_usage[s.id]->stored(s.row);
    for (const StoredSpend& s : ts) team_usage[s.id]->stored(s.row);
}

void KeyService::maintain() {
    auto next_refresh = std::chrono::steady_clock::now() + settings_.refresh_interval;
    for (;;) {
        bool stop;
        {
            std::unique_lock lk(wake_mu_);
            wake_.wait_for(lk, settings_.flush_interval,
                           [this] { return stopping_ || resync_.load(std::memory_order_acquire); });
            stop = stopping_;
        }
        flush();
        if (stop) return;
        if (resync_.exchange(false) || std::chrono::steady_clock::now() >= next_refresh) {
            refresh();
            next_refresh = std::chrono::steady_clock::now() + settings_.refresh_interval;
        }
    }
}

void KeyService::changed_key(const KeyRecord& k, const std::optional<TeamRecord>& team) {
    cache_.put(k, team);
    if (fleet_) fleet_->publish(FleetChange{FleetChange::Kind::Key, k.token});
}

void KeyService::removed_key(const std::string& token) {
    cache_.erase(token);
    cache_.put_absent(token, now_ms());
    if (fleet_) fleet_->publish(FleetChange{FleetChange::Kind::Key, token});
}

void KeyService::regenerated_key(const std::string& old_token, const KeyRecord& k,
                                 const std::optional<TeamRecord>& team) {
    {
        std::lock_guard lk(queue_mu_);
        if (renamed_.size() >= 10'000) renamed_.clear();  // requests from that long ago have ended
        renamed_[old_token] = k.token;
        for (auto& [from, to] : renamed_)
            if (to == old_token) to = k.token;  // regenerated twice
    }
    cache_.move_usage(old_token, k.token);
    cache_.put_absent(old_token, now_ms());
    cache_.put(k, team);
    if (fleet_) {
        fleet_->publish(FleetChange{FleetChange::Kind::Key, old_token});
        fleet_->publish(FleetChange{FleetChange::Kind::Key, k.token});
    }
}

void KeyService::changed_team(const std::string& team_id, const std::optional<TeamRecord>& team) {
    cache_.put_team(team_id, team);
    if (fleet_) fleet_->publish(FleetChange{FleetChange::Kind::Team, team_id});
}

void KeyService::on_fleet_change(const FleetChange& ch) {
    fleet_changes_received_.fetch_add(1, std::memory_order_relaxed);
    if (ch.kind == FleetChange::Kind::Key) {
        cache_.forget(ch.id);  // the next request reads it again
        return;
    }
    db_->post([this, id = ch.id](store::Connection& c) { cache_.put_team(id, find_team(c, id)); });
}

}  // namespace tailgate::keys
