#include "keys/cache.hpp"

#include "common/key_hash.hpp"

#include <mutex>

namespace tailgate::keys {

namespace {

constexpr size_t kMaxAbsent = 100'000;  // a flood of made-up keys cannot grow this without bound

}  // namespace

KeyCache::Hit KeyCache::find(const std::string& token, TimeMs now, CallerPtr& out) const {
    std::shared_lock lk(mu_);
    if (auto it = callers_.find(token); it != callers_.end()) {
        out = it->second;
        return Hit::Found;
    }
    if (auto it = absent_.find(token); it != absent_.end() && it->second > now) return Hit::Absent;
    return Hit::Miss;
}

UsagePtr KeyCache::key_usage_locked(const KeyRecord& k) {
    auto& u = key_usage_[k.token];
    if (!u) u = std::make_shared<Usage>(&outbox_, "k" + k.token);
    u->stored(SpendRow{k.spend, k.budget_reset_at, k.spend_seq});  // unless it has seen a newer row
    return u;
}

KeyCache::Team& KeyCache::team_locked(const std::string& id) {
    Team& t = teams_[id];
    if (!t.usage) t.usage = std::make_shared<Usage>(&outbox_, "t" + id);
    return t;
}

UsagePtr KeyCache::key_usage(const std::string& token) {
    std::unique_lock lk(mu_);
    auto& u = key_usage_[token];
    if (!u) u = std::make_shared<Usage>(&outbox_, "k" + token);
    return u;
}

CallerPtr KeyCache::build_locked(std::shared_ptr<const KeyRecord> k) {
    auto c = std::make_shared<Caller>();
    c->key_usage = key_usage_locked(*k);
    c->hash_prefix = k->token.substr(0, 16);  // the SHA-256 prefix strategies and logs know callers by
    if (!k->team_id.empty()) {
        auto it = teams_.find(k->team_id);
        if (it != teams_.end() && it->second.rec) {
            c->team = it->second.rec;
            c->team_usage = it->second.usage;
        }
    }
    c->key = std::move(k);
    return c;
}

CallerPtr KeyCache::put(const KeyRecord& k, const std::optional<TeamRecord>& team) {
    auto rec = std::make_shared<const KeyRecord>(k);
    std::unique_lock lk(mu_);
    absent_.erase(k.token);
    if (team) {
        Team& t = team_locked(team->team_id);
        t.usage->stored(SpendRow{team->spend, team->budget_reset_at, team->spend_seq});
        t.rec = std::make_shared<const TeamRecord>(*team);
    }
    CallerPtr c = build_locked(std::move(rec));
    callers_[k.token] = c;
    return c;
}

void KeyCache::put_absent(const std::string& token, TimeMs now) {
    std::unique_lock lk(mu_);
    if (absent_.size() >= kMaxAbsent) {
        for (auto it = absent_.begin(); it != absent_.end();) it = it->second <= now ? absent_.erase(it) : std::next(it);
        if (absent_.size() >= kMaxAbsent) absent_.clear();
    }
    absent_[token] = now + absent_ttl_;
}

void KeyCache::erase(const std::string& token) {
    std::unique_lock lk(mu_);
    callers_.erase(token);
    key_usage_.erase(token);
}

void KeyCache::forget(const std::string& token) {
    std::unique_lock lk(mu_);
    callers_.erase(token);
    absent_.erase(token);
}

void KeyCache::move_usage(const std::string& from, const std::string& to) {
    std::unique_lock lk(mu_);
    auto it = key_usage_.find(from);
    if (it == key_usage_.end()) return;
    it->second->rename("k" + to);
    key_usage_[to] = it->second;
    key_usage_.erase(it);
    callers_.erase(from);
    callers_.erase(to);  // rebuilt with the moved usage on the next put or lookup
}

void KeyCache::put_team(const std::string& team_id, const std::optional<TeamRecord>& team) {
    std::unique_lock lk(mu_);
    Team& t = team_locked(team_id);
    if (team) {
        t.usage->stored(SpendRow{team->spend, team->budget_reset_at, team->spend_seq});
        t.rec = std::make_shared<const TeamRecord>(*team);
    } else {
        t.rec.reset();
    }
    for (auto& [token, caller] : callers_)
        if (caller->key && caller->key->team_id == team_id) caller = build_locked(caller->key);
}

bool KeyCache::has_team(const std::string& team_id) const {
    std::shared_lock lk(mu_);
    auto it = teams_.find(team_id);
    return it != teams_.end() && it->second.rec;
}

std::vector<CallerPtr> KeyCache::callers() const {
    std::shared_lock lk(mu_);
    std::vector<CallerPtr> out;
    out.reserve(callers_.size());
    for (const auto& [token, c] : callers_) out.push_back(c);
    return out;
}

size_t KeyCache::size() const {
    std::shared_lock lk(mu_);
    return callers_.size();
}

UsagePtr KeyCache::team_usage(const std::string& team_id) {
    std::unique_lock lk(mu_);
    return team_locked(team_id).usage;
}

}  // namespace tailgate::keys
