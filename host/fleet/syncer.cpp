#include "fleet/syncer.hpp"

#include "common/prometheus_text.hpp"
#include "fleet/batch.hpp"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <cstdio>
#include <future>
#include <random>

namespace tailgate::fleet {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr Millis kFirstBackoff{100};
constexpr Millis kMaxBackoff{5000};
constexpr Millis kHeartbeatEvery{1000};
constexpr int64_t kMaxEventAgeMs = 5000;  // older outcomes (a replica catching up) are not fed to strategies
constexpr const char* kStreamMax = "2000";
constexpr const char* kReadCount = "1000";

// Takes the probe lease, or keeps it when this replica holds it already.
constexpr const char* kLeaseScript =
    "local v = redis.call('GET', KEYS[1]) "
    "if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end "
    "if v then return 0 end "
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1";
// Gives the lease back only if this replica still holds it.
constexpr const char* kReleaseScript =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";
// rev:seq = max(rev:seq, ARGV[1]): a Redis that lost its data is seeded again.
constexpr const char* kSeqAtLeastScript =
    "local c = tonumber(redis.call('GET', KEYS[1]) or '0') "
    "if c < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end return 1";

// Quota leases (fleet/quota.hpp). KEYS[1]: a sorted set per deployment and
// kind; members "<replica>/<nonce>/<seq>:g:<units>" (a grant, scored with the
// end of its lease) and ":d:<units>" (units used that no grant covered, scored
// with when Redis heard of them); a member counts until its score leaves the
// sliding window. Grants min(want, limit - used), never below 0; debts are
// recorded whatever the limit (they happened). Time is Redis's own (TIME), so
// replicas' clocks do not matter. KEYS[2]: a hash of the replicas asking
// (last seen). ARGV: limit, want, debt, lease ms, window ms, member base,
// replica. Returns {granted, ms until the oldest member leaves (-1 none),
// replicas that asked in the last 10 s (sizes the smallest allowance)}.
constexpr const char* kQuotaGrantScript =
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "local window = tonumber(ARGV[5]) local lease = tonumber(ARGV[4]) "
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window) "
    "local used, oldest = 0, nil "
    "local all = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES') "
    "for i = 1, #all, 2 do "
    "  used = used + (tonumber(string.match(all[i], ':(%d+)$')) or 0) "
    "  local s = tonumber(all[i + 1]) if oldest == nil or s < oldest then oldest = s end "
    "end "
    "local debt = tonumber(ARGV[3]) "
    "if debt > 0 then redis.call('ZADD', KEYS[1], now, ARGV[6] .. ':d:' .. debt) used = used + debt "
    "  if oldest == nil or now < oldest then oldest = now end end "
    "local g = math.min(tonumber(ARGV[2]), tonumber(ARGV[1]) - used) "
    "if g < 0 then g = 0 end "
    "if g > 0 then redis.call('ZADD', KEYS[1], now + lease, ARGV[6] .. ':g:' .. g) "
    "  if oldest == nil then oldest = now + lease end end "
    "redis.call('PEXPIRE', KEYS[1], window + lease + 1000) "
    "local free = -1 if oldest then free = oldest + window - now end "
    "redis.call('HSET', KEYS[2], ARGV[7], now) "
    "local reps, n = redis.call('HGETALL', KEYS[2]), 0 "
    "for i = 1, #reps, 2 do "
    "  if tonumber(reps[i + 1]) > now - 10000 then n = n + 1 else redis.call('HDEL', KEYS[2], reps[i]) end "
    "end "
    "redis.call('PEXPIRE', KEYS[2], 60000) "
    "return {g, free, math.max(n, 1)}";
// A grant whose lease ended with units unused: its count goes down to what
// was used (removed when nothing was). ARGV: the member, used, the new member.
constexpr const char* kQuotaReturnScript =
    "local s = redis.call('ZSCORE', KEYS[1], ARGV[1]) "
    "if not s then return 0 end "
    "redis.call('ZREM', KEYS[1], ARGV[1]) "
    "if tonumber(ARGV[2]) > 0 then redis.call('ZADD', KEYS[1], s, ARGV[3]) end "
    "return 1";
constexpr int64_t kQuotaWindowMs = 60000;

const char* kind_name(QuotaKind k) { return k == QuotaKind::Tokens ? "tpm" : "rpm"; }

std::string make_nonce() {
    std::random_device rd;
    char buf[17];
    std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
    return buf;
}

int64_t steady_ms() {
    return std::chrono::duration_cast<Millis>(SteadyClock::now().time_since_epoch()).count();
}

Millis jittered(Millis m) {
    thread_local std::minstd_rand rng{std::random_device{}()};
    std::uniform_real_distribution<double> f(0.8, 1.2);
    return Millis(static_cast<int64_t>(static_cast<double>(m.count()) * f(rng)));
}

}  // namespace

Syncer::Syncer(asio::io_context& io, const config::SharedStateSettings& settings, LinkPtr link, Inbound in)
    : io_(io), strand_(asio::make_strand(io)), s_(settings), link_(std::move(link)), in_(std::move(in)),
      timer_(strand_), nonce_(make_nonce()), started_ms_(steady_ms()) {}

Syncer::~Syncer() = default;

void Syncer::start(uint64_t revision_cursor) {
    revision_cursor_ = revision_cursor;
    std::weak_ptr<Syncer> weak = weak_from_this();
    link_->set_wake([weak] {
        if (auto self = weak.lock()) asio::post(self->strand_, [self] { self->serve_allocations(); });
    });
    asio::post(strand_, [self = shared_from_this()] {
        self->connect();
        self->schedule_tick();
    });
}

void Syncer::stop() {
    link_->set_wake(nullptr);
    auto done = std::make_shared<std::promise<void>>();
    auto f = done->get_future();
    asio::post(strand_, [self = shared_from_this(), done] {
        self->stopped_ = true;
        self->timer_.cancel();
        if (self->conn_) self->conn_->close();
        self->conn_.reset();
        self->link_->set_active(false);
        self->up_ = false;
        done->set_value();
    });
    f.wait_for(std::chrono::seconds(1));
}

void Syncer::schedule_tick() {
    if (stopped_) return;
    timer_.expires_after(s_.sync_interval);
    timer_.async_wait(asio::bind_executor(strand_, [self = shared_from_this()](const boost::system::error_code& ec) {
        if (ec || self->stopped_) return;
        self->tick();
        self->schedule_tick();
    }));
}

void Syncer::tick() {
    const auto now = SteadyClock::now();
    if (!conn_) {
        if (!connecting_ && now >= next_connect_) connect();
        return;
    }
    if (!conn_->open()) return;  // connecting: its own timer bounds it
    if (const Millis age = conn_->oldest_pending(now); age > s_.command_timeout) {
        lost("no reply within " + std::to_string(s_.command_timeout.count()) + "ms");
        return;
    }
    if (round_pending_ > 0 || !synced_) return;  // the last round is still out: never pile up
    round();
}

void Syncer::connect() {
    RedisEndpoint ep;
    ep.host = s_.host;
    ep.port = s_.port;
    ep.username = s_.username;
    ep.password = s_.password.reveal();
    ep.db = s_.db;
    ep.connect_timeout = s_.connect_timeout;
    if (s_.tls) {
        if (!tls_ctx_) {
            try {
                tls_ctx_ = make_tls_context(s_.tls_ca_file, s_.tls_verify);
            } catch (const std::exception& e) {
                return lost(std::string("TLS: ") + e.what());  // retried with backoff, like an unreachable Redis
            }
        }
        ep.tls = tls_ctx_;
        ep.tls_server_name = s_.tls_server_name;
        ep.tls_verify = s_.tls_verify;
    }
    conn_ = std::make_shared<RedisConnection>(strand_, std::move(ep));
    connecting_ = true;
    synced_ = false;
    round_pending_ = 0;
    std::weak_ptr<Syncer> weak = weak_from_this();
    conn_->on_closed = [weak](const std::string& why) {
        if (auto self = weak.lock()) self->lost(why);
    };
    conn_->connect([weak, c = conn_](const std::string& error) {
        auto self = weak.lock();
        if (!self || self->conn_ != c) return;
        self->on_connect(error);
    });
}

void Syncer::on_connect(const std::string& error) {
    connecting_ = false;
    if (!error.empty()) return lost(error);
    backoff_ = Millis(0);
    ++connects_;
    spdlog::info("shared state: connected to Redis at {}{} as replica '{}'{}", s_.endpoint(),
                 s_.tls ? (s_.tls_verify ? " over TLS (certificate verified)" : " over TLS (certificate NOT verified)") : "",
                 link_->replica(), ever_up_ ? "; resynchronising" : "");
    ever_up_ = true;
    down_logged_ = false;
    link_->set_active(true);
    up_ = true;
    initial_sync();
}

// Said once per outage, in the log and in tailgate_shared_state_up.
void Syncer::lost(const std::string& why) {
    ++failures_;
    const bool was_up = up_.exchange(false);
    link_->set_active(false);
    for (auto& p : link_->take_allocations()) p->set_exception(std::make_exception_ptr(std::runtime_error(why)));
    if (conn_) {
        auto c = std::move(conn_);
        c->close();
    }
    connecting_ = false;
    synced_ = false;
    round_pending_ = 0;
    backoff_ = backoff_.count() == 0 ? kFirstBackoff : std::min(kMaxBackoff, backoff_ * 2);
    next_connect_ = SteadyClock::now() + jittered(backoff_);
    if (was_up || !down_logged_) {
        spdlog::warn("shared state: Redis at {} unavailable ({}); serving from this replica's own state "
                     "(rpm/tpm counted by this replica alone), reconnecting in the background",
                     s_.endpoint(), why);
        down_logged_ = true;
    } else {
        spdlog::debug("shared state: reconnect to {} failed: {}", s_.endpoint(), why);
    }
}

void Syncer::send(std::vector<std::string> argv, ReplyFn fn) {
    ++round_pending_;
    ++commands_;
    std::weak_ptr<Syncer> weak = weak_from_this();
    conn_->command(std::move(argv), [weak, fn = std::move(fn)](const redisReply* r) {
        auto self = weak.lock();
        if (!self) return;
        if (r != nullptr && fn) fn(r);
        self->round_reply();
    });
}

void Syncer::round_reply() {
    if (round_pending_ > 0 && --round_pending_ == 0 && conn_ && conn_->open()) {
        last_sync_ms_ = steady_ms();
        ++rounds_;
        synced_ = true;
    }
}

// After every (re)connect: the stream position, the revision log both ways,
// and the cooldowns other replicas started while this one was away.
void Syncer::initial_sync() {
    if (stream_cursor_.empty())
        send({"XREVRANGE", key("events"), "+", "-", "COUNT", "1"}, [this](const redisReply* r) {
            stream_cursor_ = "0-0";
            if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 && r->element[0]->type == REDIS_REPLY_ARRAY &&
                r->element[0]->elements > 0)
                stream_cursor_ = reply_text(r->element[0]->element[0]);
        });
    uint64_t top = 0;
    for (auto& rev : link_->known_revisions()) {
        top = std::max(top, rev.number);
        send({"ZADD", key("revisions"), "NX", std::to_string(rev.number), std::move(rev.json)});
    }
    if (top > 0) send({"EVAL", kSeqAtLeastScript, "1", key("rev:seq"), std::to_string(top)});
    if (in_.deployment_ids && in_.cooldown) {
        const auto ids = in_.deployment_ids();
        if (!ids.empty()) {
            std::vector<std::string> argv{"MGET"};
            for (const auto& id : ids) argv.push_back(key("cool:" + id));
            send(std::move(argv), [this, ids](const redisReply* r) {
                if (r->type != REDIS_REPLY_ARRAY) return;
                for (size_t i = 0; i < r->elements && i < ids.size(); ++i)
                    if (const long long until = reply_integer(r->element[i], 0); until > wall_ms())
                        in_.cooldown(ids[i], until);
            });
        }
    }
    if (in_.quota_limits) link_->quota_prime_all(in_.quota_limits());
    send({"PING"});  // a round with nothing else still completes
}

void Syncer::round() {
    Outbox box = link_->take();
    events_dropped_ += box.dropped;
    send_outbox(box);
    send({"XREAD", "COUNT", kReadCount, "STREAMS", key("events"), stream_cursor_},
         [this](const redisReply* r) { read_events(r); });
    send({"ZRANGEBYSCORE", key("revisions"), "(" + std::to_string(revision_cursor_), "+inf", "WITHSCORES", "LIMIT",
          "0", "100"},
         [this](const redisReply* r) { read_revisions(r); });
    const auto now = SteadyClock::now();
    if (now - last_heartbeat_ >= kHeartbeatEvery) {
        last_heartbeat_ = now;
        send({"SET", key("replica:" + link_->replica()), std::to_string(wall_ms()), "PX", "5000"});
        if (in_.quota_limits) link_->quota_prime_all(in_.quota_limits());
    }
    send_quotas(now);
    serve_allocations();
}

std::string Syncer::quota_member(uint64_t seq) const {
    return link_->replica() + "/" + nonce_ + "/" + std::to_string(seq);
}

// Refills of the local allowances that run low, and grants that expired with
// units unused given back: a few commands per round while limits are in use.
void Syncer::send_quotas(SteadyClock::time_point now) {
    for (auto& r : link_->quota_refills(now)) {
        const std::string k = key(std::string("quota:") + kind_name(r.kind) + ":" + r.deployment);
        send({"EVAL", kQuotaGrantScript, "2", k, key("quota:replicas"), std::to_string(r.limit),
              std::to_string(r.want), std::to_string(r.debt), std::to_string(link_->quota_lease().count()),
              std::to_string(kQuotaWindowMs), quota_member(r.seq), link_->replica()},
             [this, r, now](const redisReply* reply) {
                 if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) {
                     spdlog::debug("shared state: quota grant for {} failed: {}", r.deployment, reply_text(reply));
                     link_->quota_granted(r, 0, -1, 1, now);
                     return;
                 }
                 link_->quota_granted(r, reply_integer(reply->element[0], 0), reply_integer(reply->element[1], -1),
                                      reply_integer(reply->element[2], 1), now);
             });
    }
    for (const auto& x : link_->quota_expired(now)) {
        const std::string base = quota_member(x.seq);
        send({"EVAL", kQuotaReturnScript, "1", key(std::string("quota:") + kind_name(x.kind) + ":" + x.deployment),
              base + ":g:" + std::to_string(x.granted), std::to_string(x.used), base + ":g:" + std::to_string(x.used)});
    }
}

void Syncer::send_outbox(Outbox& box) {
    if (!box.events.empty() || !box.messages.empty()) {
        events_sent_ += box.events.size();
        send({"XADD", key("events"), "MAXLEN", "~", kStreamMax, "*", "b",
              encode_batch(link_->replica(), box, wall_ms())});
    }
    for (const auto& [id, until] : box.cooldowns) {
        const int64_t left = until - wall_ms();
        if (until > 0 && left > 0)
            send({"SET", key("cool:" + id), std::to_string(until), "PX", std::to_string(left)});
        else
            send({"DEL", key("cool:" + id)});
    }
    for (const auto& id : box.lease_wanted) ask_lease(id);
    for (const auto& id : box.lease_released)
        send({"EVAL", kReleaseScript, "1", key("probe:" + id), link_->replica()});
    for (auto& rev : box.revisions) {
        const std::string n = std::to_string(rev.number);
        send({"ZADD", key("revisions"), "NX", n, std::move(rev.json)});
        send({"EVAL", kSeqAtLeastScript, "1", key("rev:seq"), n});
    }
}

void Syncer::ask_lease(const std::string& id) {
    const auto sent = SteadyClock::now();
    send({"EVAL", kLeaseScript, "1", key("probe:" + id), link_->replica(), std::to_string(s_.probe_lease.count())},
         [this, id, sent](const redisReply* r) {
             // Held until a little before Redis lets it go: never two holders at once.
             if (reply_integer(r) == 1) link_->lease_granted(id, sent + s_.probe_lease * 9 / 10);
             else link_->lease_granted(id, {});  // someone else probes; ask again when wanted
         });
}

void Syncer::serve_allocations() {
    if (!conn_ || !conn_->open()) return;
    for (auto& p : link_->take_allocations()) {
        ++commands_;
        conn_->command({"INCR", key("rev:seq")}, [p](const redisReply* r) {
            if (r == nullptr || is_error(r)) p->set_exception(std::make_exception_ptr(std::runtime_error("INCR")));
            else p->set_value(static_cast<uint64_t>(reply_integer(r)));
        });
    }
}

// XREAD: [[stream, [[id, [field, value, ...]], ...]]] or nil.
void Syncer::read_events(const redisReply* r) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) return;
    const redisReply* stream = r->element[0];
    if (stream->type != REDIS_REPLY_ARRAY || stream->elements < 2) return;
    const redisReply* entries = stream->element[1];
    if (entries->type != REDIS_REPLY_ARRAY) return;
    const int64_t now = wall_ms();
    for (size_t i = 0; i < entries->elements; ++i) {
        const redisReply* e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2) continue;
        stream_cursor_ = reply_text(e->element[0]);
        const redisReply* fields = e->element[1];
        if (fields->type != REDIS_REPLY_ARRAY || fields->elements < 2) continue;
        auto batch = decode_batch(reply_text(fields->element[1]));
        if (!batch || batch->replica == link_->replica()) continue;
        std::vector<RemoteOutcome> fresh;
        fresh.reserve(batch->outcomes.size());
        for (auto& o : batch->outcomes) {
            if (now - o.outcome.at_wall_ms > kMaxEventAgeMs) ++events_stale_;
            else fresh.push_back(std::move(o));
        }
        events_received_ += fresh.size();
        if (!fresh.empty() && in_.outcomes) in_.outcomes(fresh);
        for (const auto& m : batch->messages) link_->deliver(m);
    }
}

// ZRANGEBYSCORE ... WITHSCORES: [member, score, member, score, ...].
void Syncer::read_revisions(const redisReply* r) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2) return;
    std::vector<Revision> got;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const long long n = reply_integer(r->element[i + 1], -1);
        if (n <= 0) continue;
        got.push_back(Revision{static_cast<uint64_t>(n), reply_text(r->element[i])});
        revision_cursor_ = std::max<uint64_t>(revision_cursor_, static_cast<uint64_t>(n));
    }
    revisions_received_ += got.size();
    if (!got.empty() && in_.revisions) in_.revisions(std::move(got));
}

std::string Syncer::render_metrics() const {
    const int64_t now = steady_ms();
    const int64_t last = last_sync_ms_.load();
    const double lag_s = static_cast<double>(now - (last > 0 ? last : started_ms_)) / 1000.0;
    std::string out;
    auto series = [&](const char* name, const char* type, const char* help, const std::string& body) {
        prometheus::family(out, name, type, help);
        out += body;
    };
    auto line = [](const std::string& name, auto v) { return name + " " + std::to_string(v) + "\n"; };
    series("tailgate_shared_state_up", "gauge", "1 while Redis answers and this replica synchronises with the fleet.",
           line("tailgate_shared_state_up", up_.load() ? 1 : 0));
    series("tailgate_shared_state_sync_lag_seconds", "gauge",
           "Time since the last completed synchronisation round with Redis.",
           line("tailgate_shared_state_sync_lag_seconds", lag_s));
    series("tailgate_shared_state_commands_total", "counter", "Redis commands sent (pipelined, one round per "
           "sync_interval).", line("tailgate_shared_state_commands_total", commands_.load()));
    series("tailgate_shared_state_rounds_total", "counter", "Completed synchronisation rounds.",
           line("tailgate_shared_state_rounds_total", rounds_.load()));
    series("tailgate_shared_state_connects_total", "counter", "Successful connections to Redis.",
           line("tailgate_shared_state_connects_total", connects_.load()));
    series("tailgate_shared_state_failures_total", "counter",
           "Connections to Redis that failed or were dropped (errors, timeouts).",
           line("tailgate_shared_state_failures_total", failures_.load()));
    series("tailgate_shared_state_events_total", "counter",
           "Attempt outcomes exchanged with other replicas (dropped: not buffered; stale: older than 5 s).",
           "tailgate_shared_state_events_total{direction=\"sent\"} " + std::to_string(events_sent_.load()) +
               "\ntailgate_shared_state_events_total{direction=\"received\"} " +
               std::to_string(events_received_.load()) + "\ntailgate_shared_state_events_total{direction=\"dropped\"} " +
               std::to_string(events_dropped_.load()) + "\ntailgate_shared_state_events_total{direction=\"stale\"} " +
               std::to_string(events_stale_.load()) + "\n");
    const auto& q = link_->quota_counts();
    series("tailgate_shared_state_quota_answers_total", "counter",
           "rpm/tpm quota lease answers on the request path (granted: from this replica's allowance; exhausted: "
           "at the fleet's limit; local: counted by this replica alone, Redis down or not answered yet).",
           "tailgate_shared_state_quota_answers_total{answer=\"granted\"} " + std::to_string(q.granted.load()) +
               "\ntailgate_shared_state_quota_answers_total{answer=\"exhausted\"} " + std::to_string(q.exhausted.load()) +
               "\ntailgate_shared_state_quota_answers_total{answer=\"local\"} " + std::to_string(q.local.load()) + "\n");
    series("tailgate_shared_state_quota_units_granted_total", "counter",
           "rpm/tpm units Redis granted to this replica (quota leases).",
           line("tailgate_shared_state_quota_units_granted_total", q.units_granted.load()));
    series("tailgate_shared_state_quota_refills_total", "counter", "Quota lease refills asked of Redis.",
           line("tailgate_shared_state_quota_refills_total", q.refills.load()));
    series("tailgate_shared_state_revisions_received_total", "counter", "Config revisions read from the fleet's log.",
           line("tailgate_shared_state_revisions_received_total", revisions_received_.load()));
    return out;
}

}  // namespace tailgate::fleet
