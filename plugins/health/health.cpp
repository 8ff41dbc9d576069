// health — per-deployment cooldowns with LiteLLM's allowed_fails semantics,
// plus half-open recovery probes. Usually first in the chain.
//
// State machine per deployment (see README.md for the full contract):
//
//   HEALTHY --(more than allowed_fails counted failures within fail_window,
//              or one AUTH / NOT_FOUND failure)--> COOLING for cooldown_time
//   COOLING --(cooldown over; evaluated lazily on route/observe)--> HALF_OPEN
//   HALF_OPEN: one probe at a time. A success (or a stream's first byte)
//              --> HEALTHY; a counted failure --> COOLING for twice the previous
//              cooldown, capped at max_cooldown_time.
//
// Threshold, as in LiteLLM's Router: a failure is "allowed" while the number of
// failures stays <= allowed_fails; the failure that makes it allowed_fails + 1
// starts the cooldown (allowed_fails 3: the 4th failure within the window
// cools down; allowed_fails 0: the first one does).
//
// A 429/503 carrying Retry-After makes that cooldown last at least that long.
// CANCELLED never counts; BAD_REQUEST and CONTEXT_WINDOW never count; a success
// resets the counters. All transitions are logged and published through the
// host (publish_health), which derives Retry-After for "all cooling" refusals.
//
// Concurrency: each deployment has its own small mutex; nothing global is
// locked on the request path except the (rare) overflow table for deployment
// indices the host did not list at creation.
#include <tailgate/deployment_table.hpp>
#include <tailgate/plugin.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace {

using tailgate::sdk::Args;
using tailgate::sdk::ConfigError;
using tailgate::sdk::DeploymentTable;
using tailgate::sdk::Host;
using tailgate::sdk::Route;
using tailgate::sdk::Strategy;

// Failure counters. RATE_LIMIT / SERVER / TIMEOUT share the Default counter
// (and allowed_fails) unless allowed_fails_policy gives them their own.
enum Bucket : int { kDefault = 0, kRateLimit, kServer, kTimeout, kAuth, kNotFound, kBucketCount };

const char* bucket_name(int b) {
    switch (b) {
        case kDefault: return "allowed_fails";
        case kRateLimit: return "RateLimitErrorAllowedFails";
        case kServer: return "InternalServerErrorAllowedFails";
        case kTimeout: return "TimeoutErrorAllowedFails";
        case kAuth: return "AuthenticationErrorAllowedFails";
        case kNotFound: return "NotFoundErrorAllowedFails";
    }
    return "?";
}

// LiteLLM's AllowedFailsPolicy keys (plus Tailgate's NotFoundErrorAllowedFails).
// Bucket -1: accepted for compatibility, never applies (those errors never count).
struct PolicyKey {
    const char* name;
    int bucket;
};
constexpr PolicyKey kPolicyKeys[] = {
    {"BadRequestErrorAllowedFails", -1},
    {"AuthenticationErrorAllowedFails", kAuth},
    {"TimeoutErrorAllowedFails", kTimeout},
    {"RateLimitErrorAllowedFails", kRateLimit},
    {"ContentPolicyViolationErrorAllowedFails", -1},
    {"InternalServerErrorAllowedFails", kServer},
    {"NotFoundErrorAllowedFails", kNotFound},
};

constexpr std::string_view kPolicyPrefix = "allowed_fails_policy.";
constexpr std::string_view kRouterPrefix = "router.";

// A probe stuck longer than this (terminal event lost) no longer blocks the deployment.
constexpr int64_t kStaleProbeMs = 10 * 60 * 1000;

// For log text: a failure without a class is just an "error".
const char* class_name(uint32_t c) {
    return c == TG_ERRC_NONE ? "error" : tailgate::sdk::error_class_name(c, "unknown");
}

const char* state_name(tg_health h) {
    switch (h) {
        case TG_HEALTH_HEALTHY: return "healthy";
        case TG_HEALTH_COOLING: return "cooling";
        case TG_HEALTH_HALF_OPEN: return "half-open";
    }
    return "?";
}

// Event fields, read only when the host's struct has them.
struct EventView {
    uint32_t type;
    uint32_t error_class = TG_ERRC_NONE;
    int32_t http_status = 0;
    int64_t retry_after_ms = -1;
    uint32_t attempt = 0;
    double elapsed_ms = -1;  // since the attempt started; < 0: unknown
    int64_t at_ms = -1;      // when it happened (host clock); < 0: unknown
    std::string_view request_id;

    explicit EventView(const tg_event& e) : type(e.type) {
        if (TG_HAS_MEMBER(&e, tg_event, at_ms)) at_ms = e.at_ms;
        if (TG_HAS_MEMBER(&e, tg_event, error_class)) error_class = e.error_class;
        if (TG_HAS_MEMBER(&e, tg_event, http_status)) http_status = e.http_status;
        if (TG_HAS_MEMBER(&e, tg_event, retry_after_ms)) retry_after_ms = e.retry_after_ms;
        if (TG_HAS_MEMBER(&e, tg_event, attempt)) attempt = e.attempt;
        if (TG_HAS_MEMBER(&e, tg_event, elapsed_ms)) elapsed_ms = e.elapsed_ms;
        if (TG_HAS_MEMBER(&e, tg_event, request_id) && e.request_id != nullptr) request_id = e.request_id;
    }
};

// Raw counter a failure goes to, or -1 when it never counts (client's fault).
int raw_bucket(const EventView& e) {
    switch (e.error_class) {
        case TG_ERRC_RATE_LIMIT: return kRateLimit;
        case TG_ERRC_SERVER: return kServer;
        case TG_ERRC_TIMEOUT: return kTimeout;
        case TG_ERRC_CONNECT:
        case TG_ERRC_PROTOCOL: return kDefault;
        case TG_ERRC_AUTH: return kAuth;
        case TG_ERRC_NOT_FOUND: return kNotFound;
        case TG_ERRC_BAD_REQUEST:
        case TG_ERRC_CONTEXT_WINDOW: return -1;
        default: break;  // NONE or a class newer than this plugin: judge by status
    }
    const int s = e.http_status;
    if (s == 429) return kRateLimit;
    if (s == 401 || s == 403) return kAuth;
    if (s == 404) return kNotFound;
    if (s == 408) return kTimeout;
    if (s >= 400 && s < 500) return -1;
    if (s >= 500) return kServer;
    return kDefault;
}

std::optional<int64_t> parse_count(std::string_view text) {
    std::string s(text);
    if (s.empty() || s[0] == '-' || s[0] == ' ') return std::nullopt;
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(s.c_str(), &end, 10);
    if (end == s.c_str() || *end != '\0' || errno == ERANGE || v < 0) return std::nullopt;
    return static_cast<int64_t>(v);
}

bool is_null_text(std::string_view v) { return v.empty() || v == "null" || v == "~" || v == "None"; }

enum class Probe { None, Reserved, Running };

// One deployment's health. Shared with the next instance on a reload (by
// identity: DeploymentTable::adopt), so everything in it is under its lock and
// nothing in it is specific to one router (no index: callers pass theirs).
struct Slot {
    std::mutex mu;
    std::string id;
    tg_health state = TG_HEALTH_HEALTHY;
    int64_t until = 0;       // end of the current cooldown (COOLING)
    int64_t cooling_since = 0;  // start of the current cooldown (COOLING)
    int64_t backoff_ms = 0;  // base length of the last cooldown (before Retry-After)
    std::array<std::deque<int64_t>, kBucketCount> fails;  // times of counted failures, oldest first
    Probe probe = Probe::None;
    std::string probe_request;
    uint32_t probe_attempt = 0;
    int64_t probe_since = 0;  // reserved at / started at (or refreshed)
};

class Health final : public Strategy {
public:
    Health(Host host, Args args)
        : host_(host), slots_(host, [] { return std::make_shared<Slot>(); }),
          reserved_(std::make_shared<std::atomic<int>>(0)) {
        configure(args);
    }

    // Reload: deployments the previous configuration also had keep their state
    // (fail counts, cooldown, half-open probe), shared with the previous
    // instance, which still observes the requests that started on it. The
    // thresholds are this instance's: a changed allowed_fails applies to the
    // next failure. The host learns each carried state at once.
    bool adopt_state(Strategy& previous) override {
        auto& prev = static_cast<Health&>(previous);
        reserved_ = prev.reserved_;
        size_t cooling = 0;
        const size_t n = slots_.adopt(prev.slots_, [&](uint32_t index, Slot& s) {
            std::lock_guard lk(s.mu);
            if (s.state == TG_HEALTH_HEALTHY) return;
            cooling += s.state == TG_HEALTH_COOLING;
            host_.publish_health(index, s.state, s.until);
        });
        host_.log(TG_LOG_INFO, "health: kept the state of " + std::to_string(n) + " of " +
                                   std::to_string(slots_.listed()) + " deployment(s) (" + std::to_string(cooling) +
                                   " cooling)");
        return true;
    }

    tg_status route(const tg_request& request, Route& r) override {
        if (disabled_) return TG_OK;
        const int64_t now = host_.now_ms();
        const std::string_view req_id =
            TG_HAS_MEMBER(&request, tg_request, request_id) && request.request_id ? request.request_id : "";
        const bool preview = tailgate::sdk::request_is_preview(request);

        thread_local std::vector<int32_t> new_pos;
        new_pos.assign(r.size(), -1);
        std::string skipped, probing;
        uint32_t out = 0;
        for (uint32_t i = 0; i < r.size(); ++i) {
            const tg_candidate c = r[i];
            if (c.deployment == nullptr) continue;
            const uint32_t index = c.deployment->index;
            Slot& s = slots_.at(index);
            std::string why;
            bool keep = false, probe = false;
            {
                std::lock_guard lk(s.mu);
                remember_id(s, *c.deployment);
                advance(s, index, now);
                sync_host(s, index, c);
                switch (s.state) {
                    case TG_HEALTH_HEALTHY: keep = true; break;
                    case TG_HEALTH_COOLING: why = "cooling " + std::to_string(s.until - now) + "ms"; break;
                    case TG_HEALTH_HALF_OPEN:
                        expire_probe(s, now);
                        // In a fleet, one replica probes (a lease in Redis); the others wait for its outcome.
                        // A dry run sees the probe would be sent, and leaves it (and the lease) free.
                        if (s.probe == Probe::None && !preview && !host_.probe_lease(index)) {
                            why = "probed by another replica";
                        } else if (s.probe == Probe::None) {
                            if (!preview) {
                                set_probe(s, Probe::Reserved);
                                s.probe_request.assign(req_id);
                                s.probe_attempt = 0;
                                s.probe_since = now;
                            }
                            keep = probe = true;
                        } else if (s.probe == Probe::Reserved && s.probe_request == req_id) {
                            keep = probe = true;  // the same request routed again (e.g. as a fallback)
                        } else {
                            why = "probe in flight";
                        }
                        break;
                }
            }
            if (keep) {
                new_pos[i] = static_cast<int32_t>(out);
                r[out++] = c;
                if (probe) probing += (probing.empty() ? "" : ", ") + label(*c.deployment);
            } else {
                skipped += (skipped.empty() ? "" : ", ") + label(*c.deployment) + " (" + why + ")";
            }
        }

        const uint32_t before = r.size();
        if (out < before) {
            tg_route* raw = r.raw();
            raw->count = out;
            // Keep an earlier strategy's plan for the candidates that remain.
            uint32_t kept = 0;
            for (uint32_t a = 0; a < raw->attempt_count; ++a) {
                tg_attempt at = raw->attempts[a];
                if (at.candidate >= before || new_pos[at.candidate] < 0) continue;
                at.candidate = static_cast<uint32_t>(new_pos[at.candidate]);
                raw->attempts[kept++] = at;
            }
            raw->attempt_count = kept;
        }
        if (!skipped.empty()) host_.note(r.raw(), "health: skipped " + skipped);
        if (!probing.empty()) host_.note(r.raw(), "health: probing " + probing);
        return out == 0 ? TG_ERR_NO_CANDIDATE : TG_OK;
    }

    void observe(const tg_event& ev) override {
        if (disabled_ || ev.deployment == nullptr) return;
        const EventView e(ev);
        const int64_t now = host_.now_ms();
        const Slot& s = apply(ev, e, now, &Health::on_event);
        // The request's reservations of other (half-open) deployments: its
        // outcome elsewhere decides whether it will still launch them.
        const bool terminal = e.type == TG_EVENT_SUCCESS || e.type == TG_EVENT_FAILURE ||
                              e.type == TG_EVENT_CANCELLED || e.type == TG_EVENT_FIRST_BYTE;
        if (terminal && reserved_->load(std::memory_order_acquire) > 0)
            for_each_slot([&](Slot& o) {
                if (&o == &s) return;
                std::lock_guard lk(o.mu);
                if (o.probe != Probe::Reserved || o.probe_request != e.request_id) return;
                if (e.type == TG_EVENT_FAILURE)
                    o.probe_since = now;  // a retry may come next: the reservation gets a fresh window
                else
                    set_probe(o, Probe::None);  // committed elsewhere or gone: it will not launch this one
            });
    }

    // Another replica's outcome (a fleet sharing state through Redis): its
    // failures count here as well, so every replica cools a deployment within
    // about one sync interval of the one that saw it fail; the outcome of the
    // probe the lease holder sent ends every replica's half-open state.
    void observe_remote(const tg_event& ev) override {
        if (disabled_ || ev.deployment == nullptr) return;
        apply(ev, EventView(ev), host_.now_ms(), &Health::on_remote_event);
    }

private:
    // ---- configuration ----
    void configure(const Args& args) {
        // Plugin-level keys override the router-level ones (router.<key>).
        auto get = [&](std::string_view key) -> std::optional<std::string_view> {
            if (auto v = args.get(key)) return v;
            return args.get(std::string(kRouterPrefix) + std::string(key));
        };
        auto key_used = [&](std::string_view key) {
            return args.get(key) ? std::string(key) : std::string(kRouterPrefix) + std::string(key);
        };
        auto count = [&](std::string_view key, int64_t def) -> int64_t {
            auto v = get(key);
            if (!v) return def;
            auto n = parse_count(*v);
            if (!n) throw ConfigError(key_used(key) + ": expected a non-negative integer, got '" + std::string(*v) + "'");
            return *n;
        };
        auto duration = [&](std::string_view key, double def_ms) -> int64_t {
            auto v = get(key);
            if (!v) return static_cast<int64_t>(def_ms);
            auto ms = Args::parse_duration_ms(*v);
            if (!ms || *ms > 1e15)
                throw ConfigError(key_used(key) + ": expected a duration like 500ms or 5s, got '" + std::string(*v) + "'");
            return static_cast<int64_t>(std::llround(*ms));
        };

        auto is_policy_key = [](std::string_view key) {
            return key.substr(0, kPolicyPrefix.size()) == kPolicyPrefix &&
                   policy_key(key.substr(kPolicyPrefix.size())) != nullptr;
        };
        // Router settings are not ours, but a misspelt router-level policy key deserves a warning.
        if (const tg_args* raw = args.raw())
            for (uint32_t i = 0; i < raw->count; ++i) {
                std::string_view key = raw->items[i].key ? raw->items[i].key : "";
                if (key.substr(0, kRouterPrefix.size()) != kRouterPrefix) continue;
                std::string_view rest = key.substr(kRouterPrefix.size());
                if (rest.substr(0, kPolicyPrefix.size()) == kPolicyPrefix && !is_policy_key(rest))
                    host_.log(TG_LOG_WARN, "health: ignoring unknown " + std::string(key));
            }
        args.allow_only({"allowed_fails", "cooldown_time", "disable_cooldowns", "fail_window", "max_cooldown_time",
                         "probe_reserve_time", "allowed_fails_policy.<Key>"},
                        is_policy_key);

        if (auto v = get("disable_cooldowns")) {
            if (*v == "true" || *v == "1" || *v == "yes") disabled_ = true;
            else if (*v == "false" || *v == "0" || *v == "no") disabled_ = false;
            else throw ConfigError(key_used("disable_cooldowns") + ": expected true/false, got '" + std::string(*v) + "'");
        }
        const int64_t allowed = count("allowed_fails", 3);
        cooldown_ms_ = duration("cooldown_time", 5000);
        window_ms_ = duration("fail_window", 60000);
        if (window_ms_ <= 0) throw ConfigError("fail_window: must be greater than 0");
        max_cooldown_ms_ = duration("max_cooldown_time", 10.0 * static_cast<double>(cooldown_ms_));
        if (max_cooldown_ms_ < cooldown_ms_)
            throw ConfigError("max_cooldown_time (" + std::to_string(max_cooldown_ms_) +
                              "ms) is shorter than cooldown_time (" + std::to_string(cooldown_ms_) + "ms)");
        reserve_ms_ = duration("probe_reserve_time", 2000);

        // Thresholds: own counter for a class with a policy entry, else the shared one.
        for (int b = 0; b < kBucketCount; ++b) {
            counter_[b] = kDefault;
            threshold_[b] = allowed;
        }
        counter_[kAuth] = kAuth;  // misconfiguration: cools down at once unless a policy says otherwise
        threshold_[kAuth] = 0;
        counter_[kNotFound] = kNotFound;
        threshold_[kNotFound] = 0;
        for (const PolicyKey& pk : kPolicyKeys) {
            const std::string key = std::string(kPolicyPrefix) + pk.name;
            auto v = get(key);
            if (!v || is_null_text(*v)) continue;
            auto n = parse_count(*v);
            if (!n) throw ConfigError(key_used(key) + ": expected a non-negative integer, got '" + std::string(*v) + "'");
            if (pk.bucket < 0) {
                host_.log(TG_LOG_INFO, std::string("health: ") + pk.name +
                                           " has no effect: 400-class errors never cool a deployment down");
                continue;
            }
            counter_[pk.bucket] = pk.bucket;
            threshold_[pk.bucket] = *n;
        }
    }

    static const PolicyKey* policy_key(std::string_view name) {
        for (const PolicyKey& pk : kPolicyKeys)
            if (name == pk.name) return &pk;
        return nullptr;
    }

    // ---- slots ----
    template <class F>
    void for_each_slot(F f) {
        slots_.for_each([&](uint32_t, const std::string&, Slot& s) { f(s); });
    }

    // An event (this replica's or another's) on its deployment's slot, under the
    // slot's lock: the id noted and an ended cooldown moved on before `handle`.
    using Handler = void (Health::*)(Slot& s, uint32_t index, const EventView& e, int64_t now);
    Slot& apply(const tg_event& ev, const EventView& e, int64_t now, Handler handle) {
        const uint32_t index = ev.deployment->index;
        Slot& s = slots_.at(index);
        std::lock_guard lk(s.mu);
        remember_id(s, *ev.deployment);
        advance(s, index, now);
        (this->*handle)(s, index, e, now);
        return s;
    }

    static void remember_id(Slot& s, const tg_deployment& d) {
        if (s.id.empty() && d.id != nullptr) s.id = d.id;
    }

    static std::string label(const tg_deployment& d) {
        return d.id != nullptr ? std::string(d.id) : "#" + std::to_string(d.index);
    }

    static std::string who(const Slot& s) { return "deployment '" + (s.id.empty() ? "?" : s.id) + "'"; }

    // The host's view of this deployment (candidate stats) lags when the state
    // changed through the other instance sharing the slot after a reload (it
    // publishes to its own router): tell this router.
    void sync_host(const Slot& s, uint32_t index, const tg_candidate& c) const {
        const tg_deployment_stats* st = c.stats;
        if (st == nullptr || !TG_HAS_MEMBER(st, tg_deployment_stats, cooldown_until_ms)) return;
        const int64_t until = s.state == TG_HEALTH_COOLING ? s.until : 0;
        if (st->health != static_cast<uint32_t>(s.state) || st->cooldown_until_ms != until)
            host_.publish_health(index, s.state, until);
    }

    // ---- state machine (slot lock held) ----
    void set_probe(Slot& s, Probe p) {
        if (s.probe == Probe::Reserved && p != Probe::Reserved) reserved_->fetch_sub(1, std::memory_order_acq_rel);
        if (s.probe != Probe::Reserved && p == Probe::Reserved) reserved_->fetch_add(1, std::memory_order_acq_rel);
        s.probe = p;
        if (p == Probe::None) s.probe_request.clear();
    }

    void expire_probe(Slot& s, int64_t now) {
        if (s.probe == Probe::Reserved && now - s.probe_since >= reserve_ms_) {
            host_.log(TG_LOG_DEBUG, "health: " + who(s) + " probe reservation expired (not started within " +
                                        std::to_string(reserve_ms_) + "ms)");
            set_probe(s, Probe::None);
        } else if (s.probe == Probe::Running && now - s.probe_since >= kStaleProbeMs) {
            host_.log(TG_LOG_WARN, "health: " + who(s) + " probe got no outcome within " +
                                       std::to_string(kStaleProbeMs) + "ms; allowing another");
            set_probe(s, Probe::None);
        }
    }

    void transition(Slot& s, uint32_t index, int64_t now, tg_health to, int64_t until, tg_log_level level,
                    const std::string& reason) {
        const tg_health from = s.state;
        s.state = to;
        s.until = to == TG_HEALTH_COOLING ? until : 0;
        if (to == TG_HEALTH_COOLING) s.cooling_since = now;
        set_probe(s, Probe::None);
        std::string msg = "health: " + who(s) + " " + state_name(from) + " -> " + state_name(to);
        if (to == TG_HEALTH_COOLING) msg += " for " + std::to_string(until - now) + "ms";
        msg += ": " + reason;
        host_.log(level, msg);
        host_.publish_health(index, to, s.until);
    }

    void advance(Slot& s, uint32_t index, int64_t now) {
        if (s.state == TG_HEALTH_COOLING && now >= s.until)
            transition(s, index, now, TG_HEALTH_HALF_OPEN, 0, TG_LOG_INFO, "cooldown over; the next request probes it");
    }

    void cool(Slot& s, uint32_t index, int64_t now, int64_t base_ms, const EventView& e, const std::string& reason) {
        s.backoff_ms = base_ms;
        int64_t len = base_ms;
        std::string why = reason;
        const bool honours_retry_after =
            e.error_class == TG_ERRC_RATE_LIMIT || e.http_status == 429 || e.http_status == 503;
        if (honours_retry_after && e.retry_after_ms > len) {
            len = e.retry_after_ms;
            why += "; upstream Retry-After " + std::to_string(e.retry_after_ms) + "ms";
        }
        for (auto& f : s.fails) f.clear();
        transition(s, index, now, TG_HEALTH_COOLING, now + len, TG_LOG_WARN, why);
    }

    static std::string failure_text(const EventView& e) {
        std::string t = class_name(e.error_class);
        if (e.http_status > 0) t += " (HTTP " + std::to_string(e.http_status) + ")";
        return t;
    }

    void on_event(Slot& s, uint32_t index, const EventView& e, int64_t now) {
        switch (e.type) {
            case TG_EVENT_STARTED:
                if (s.state != TG_HEALTH_HALF_OPEN) return;
                expire_probe(s, now);
                if (s.probe == Probe::Running) {
                    host_.log(TG_LOG_DEBUG, "health: " + who(s) + " extra attempt started while its probe runs");
                    return;
                }
                set_probe(s, Probe::Running);
                s.probe_request.assign(e.request_id);
                s.probe_attempt = e.attempt;
                s.probe_since = now;
                return;

            case TG_EVENT_FIRST_BYTE:  // content is flowing: the deployment answers
            case TG_EVENT_SUCCESS:
                if (s.state == TG_HEALTH_HALF_OPEN)
                    transition(s, index, now, TG_HEALTH_HEALTHY, 0, TG_LOG_INFO,
                               e.type == TG_EVENT_SUCCESS ? "probe succeeded" : "probe streams content");
                // The host sent it while cooling (panic routing: everything was
                // cooling) and it answered: recovered. An attempt that started
                // before the cooldown proves nothing about now.
                else if (s.state == TG_HEALTH_COOLING && e.elapsed_ms >= 0 &&
                         static_cast<double>(now) - e.elapsed_ms >= static_cast<double>(s.cooling_since))
                    transition(s, index, now, TG_HEALTH_HEALTHY, 0, TG_LOG_INFO, "answered while cooling (panic routing)");
                if (e.type == TG_EVENT_SUCCESS && s.state == TG_HEALTH_HEALTHY) {
                    for (auto& f : s.fails) f.clear();
                    s.backoff_ms = 0;
                }
                return;

            case TG_EVENT_CANCELLED:  // never counts
                if (s.state == TG_HEALTH_HALF_OPEN && is_probe(s, e)) set_probe(s, Probe::None);
                return;

            case TG_EVENT_FAILURE: break;
            default: return;
        }

        const int raw = raw_bucket(e);
        if (raw < 0) {  // the client's fault: says nothing about the deployment
            if (s.state == TG_HEALTH_HALF_OPEN && is_probe(s, e)) set_probe(s, Probe::None);
            return;
        }
        if (s.state == TG_HEALTH_HALF_OPEN) {
            // Only the probe's failure backs off: an attempt that started before
            // the cooldown ended, or one the host sent beside the probe (panic
            // routing), must not lengthen it.
            if (!is_probe(s, e)) return;
            cool(s, index, now, next_backoff(s), e, "probe failed: " + failure_text(e) + " (backoff x2, max " +
                                      std::to_string(max_cooldown_ms_) + "ms)");
            return;
        }
        if (s.state != TG_HEALTH_HEALTHY) return;  // already cooling: late outcomes change nothing
        count_failure(s, index, e, now, raw, "");
    }

    // A counted failure of a healthy deployment; cools it past the threshold.
    void count_failure(Slot& s, uint32_t index, const EventView& e, int64_t now, int raw, const char* where) {
        const int b = counter_[raw];
        const int64_t limit = threshold_[raw];
        auto& q = s.fails[b];
        q.push_back(now);
        while (!q.empty() && q.front() <= now - window_ms_) q.pop_front();
        while (q.size() > static_cast<size_t>(limit) + 1) q.pop_front();
        if (static_cast<int64_t>(q.size()) > limit) {
            std::string reason = failure_text(e) + where + ": " + std::to_string(q.size()) + " failure" +
                                 (q.size() == 1 ? "" : "s") + " within " + std::to_string(window_ms_) + "ms > " +
                                 bucket_name(b) + " " + std::to_string(limit);
            cool(s, index, now, cooldown_ms_, e, reason);
        }
    }

    // When the remote attempt started, on this host's clock (its at_ms is converted).
    static double started_at(const EventView& e, int64_t now) {
        const double at = e.at_ms >= 0 ? static_cast<double>(e.at_ms) : static_cast<double>(now);
        return at - std::max(0.0, e.elapsed_ms);
    }

    void on_remote_event(Slot& s, uint32_t index, const EventView& e, int64_t now) {
        const bool began_after_cooldown = started_at(e, now) >= static_cast<double>(s.cooling_since);
        switch (e.type) {
            case TG_EVENT_FIRST_BYTE:
            case TG_EVENT_SUCCESS:
                if (s.state == TG_HEALTH_HALF_OPEN && s.probe == Probe::None)
                    transition(s, index, now, TG_HEALTH_HEALTHY, 0, TG_LOG_INFO, "another replica's probe succeeded");
                else if (s.state == TG_HEALTH_COOLING && began_after_cooldown)
                    transition(s, index, now, TG_HEALTH_HEALTHY, 0, TG_LOG_INFO, "answered another replica while cooling");
                if (e.type == TG_EVENT_SUCCESS && s.state == TG_HEALTH_HEALTHY) {
                    for (auto& f : s.fails) f.clear();
                    s.backoff_ms = 0;
                }
                return;
            case TG_EVENT_FAILURE: break;
            default: return;  // STARTED, CANCELLED...: the lease holder's own business
        }
        const int raw = raw_bucket(e);
        if (raw < 0) return;
        if (s.state == TG_HEALTH_HALF_OPEN) {
            // The lease holder's probe failed: back off as if it were ours.
            if (s.probe != Probe::None || !began_after_cooldown) return;
            cool(s, index, now, next_backoff(s), e, "another replica's probe failed: " + failure_text(e));
            return;
        }
        if (s.state == TG_HEALTH_HEALTHY) count_failure(s, index, e, now, raw, " on another replica");
    }

    int64_t next_backoff(const Slot& s) const {
        const int64_t prev = std::max<int64_t>(s.backoff_ms, cooldown_ms_);
        return std::min<int64_t>(prev > max_cooldown_ms_ / 2 ? max_cooldown_ms_ : prev * 2, max_cooldown_ms_);
    }

    static bool is_probe(const Slot& s, const EventView& e) {
        if (s.probe == Probe::Running) return s.probe_request == e.request_id && s.probe_attempt == e.attempt;
        if (s.probe == Probe::Reserved) return s.probe_request == e.request_id;
        return false;
    }

    Host host_;
    bool disabled_ = false;
    int64_t cooldown_ms_ = 5000;
    int64_t max_cooldown_ms_ = 50000;
    int64_t window_ms_ = 60000;
    int64_t reserve_ms_ = 2000;
    int counter_[kBucketCount] = {};
    int64_t threshold_[kBucketCount] = {};

    DeploymentTable<Slot> slots_;  // by deployment index, kept by identity across reloads
    // Slots with Probe::Reserved; shared with the instance whose slots this one shares.
    std::shared_ptr<std::atomic<int>> reserved_;
};

}  // namespace

TAILGATE_STRATEGY(Health, "health")
