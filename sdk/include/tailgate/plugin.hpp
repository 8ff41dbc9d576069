// Header-only C++ wrapper over plugin_abi.h.
//
// Write a class deriving from tailgate::sdk::Strategy, then
//     TAILGATE_STRATEGY(MyStrategy, "my-strategy")
// in exactly one .cpp of the plugin. The generated extern "C" entry points are
// noexcept trampolines: an exception from the constructor becomes a create()
// error message, one from route() becomes TG_ERR_INTERNAL with the exception's
// text as the reason the host logs (tg_route.error), one from observe() is
// swallowed (log it yourself inside observe() if it matters). Nothing but C
// types crosses the library boundary.
//
// Optional hooks a Strategy may override: admit() (hedge budgets),
// release_request() (per-request context, see Route::context()),
// adopt_state() (reload handover, see Strategy::adopt_state; per-deployment
// state: <tailgate/deployment_table.hpp>) and state_json() (what the admin
// routing state shows) and observe_remote() (other replicas' outcomes, shared
// state through Redis).
#pragma once

#include <tailgate/plugin_abi.h>

#include <cmath>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tailgate::sdk {

// Thrown from a Strategy constructor to reject its configuration.
struct ConfigError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Read-only view of the chain entry's `args:`.
class Args {
public:
    explicit Args(const tg_args* a) : a_(a) {}
    // `strategy` (the plugin's name, used in messages) is borrowed: a string literal.
    Args(const tg_args* a, const char* strategy) : a_(a), strategy_(strategy) {}

    // Refuses (ConfigError) the first arg whose key is not in `allowed`; the
    // message names it and lists `allowed`. Keys starting with "router." are the
    // host's router settings and always pass. `also(key)` may accept further keys
    // (a family the list can only describe, e.g. "policy.<Key>").
    void allow_only(std::initializer_list<std::string_view> allowed) const {
        allow_only(allowed, [](std::string_view) { return false; });
    }
    template <class Also>
    void allow_only(std::initializer_list<std::string_view> allowed, Also also) const {
        if (a_ == nullptr) return;
        for (uint32_t i = 0; i < a_->count; ++i) {
            std::string_view key = a_->items[i].key ? a_->items[i].key : "";
            if (key.substr(0, 7) == "router.") continue;
            if (std::find(allowed.begin(), allowed.end(), key) != allowed.end() || also(key)) continue;
            std::string msg = "unknown arg '" + std::string(key) + "' (" + (strategy_ ? strategy_ : "strategy");
            if (allowed.size() == 0) {
                msg += " takes no args)";
            } else {
                msg += " accepts: ";
                for (auto it = allowed.begin(); it != allowed.end(); ++it)
                    msg += (it == allowed.begin() ? "" : ", ") + std::string(*it);
                msg += ")";
            }
            throw ConfigError(msg);
        }
    }

    std::optional<std::string_view> get(std::string_view key) const {
        if (a_ == nullptr) return std::nullopt;
        for (uint32_t i = 0; i < a_->count; ++i)
            if (key == a_->items[i].key) return std::string_view(a_->items[i].value);
        return std::nullopt;
    }
    std::string str(std::string_view key, std::string_view def) const {
        auto v = get(key);
        return std::string(v ? *v : def);
    }
    double num(std::string_view key, double def) const {
        auto v = get(key);
        if (!v) return def;
        std::string s(*v);
        char* end = nullptr;
        double d = std::strtod(s.c_str(), &end);
        if (end == s.c_str() || *end != '\0')
            throw ConfigError(std::string(key) + ": expected a number, got '" + s + "'");
        return d;
    }
    bool flag(std::string_view key, bool def) const {
        auto v = get(key);
        if (!v) return def;
        if (*v == "true" || *v == "1" || *v == "yes") return true;
        if (*v == "false" || *v == "0" || *v == "no") return false;
        throw ConfigError(std::string(key) + ": expected true/false, got '" + std::string(*v) + "'");
    }
    // Durations: "250ms", "1.5s", "2m", or a bare number of seconds (LiteLLM style).
    double millis(std::string_view key, double def_ms) const {
        auto v = get(key);
        if (!v) return def_ms;
        auto ms = parse_duration_ms(*v);
        if (!ms) throw ConfigError(std::string(key) + ": expected a duration like 500ms or 2s, got '" +
                                   std::string(*v) + "'");
        return *ms;
    }
    static std::optional<double> parse_duration_ms(std::string_view text) {
        std::string s(text);
        char* end = nullptr;
        double d = std::strtod(s.c_str(), &end);
        if (end == s.c_str() || !(d >= 0) || !std::isfinite(d)) return std::nullopt;
        std::string_view unit(end);
        if (unit.empty() || unit == "s") return d * 1000.0;
        if (unit == "ms") return d;
        if (unit == "m") return d * 60000.0;
        if (unit == "h") return d * 3600000.0;
        return std::nullopt;
    }
    const tg_args* raw() const { return a_; }

    // Every key, in the order given (router.* included), e.g. to refuse
    // unknown ones with a message of your own (allow_only does the usual one).
    std::vector<std::string_view> keys() const {
        std::vector<std::string_view> out;
        if (a_ == nullptr) return out;
        for (uint32_t i = 0; i < a_->count; ++i) out.emplace_back(a_->items[i].key ? a_->items[i].key : "");
        return out;
    }

private:
    const tg_args* a_;
    const char* strategy_ = nullptr;
};

// Name of a tg_error_class value ("server", "timeout", ...); `other` for
// TG_ERRC_NONE and for values this SDK does not know (a newer host's).
inline const char* error_class_name(uint32_t error_class, const char* other = "other") {
    switch (error_class) {
        case TG_ERRC_CONNECT: return "connect";
        case TG_ERRC_TIMEOUT: return "timeout";
        case TG_ERRC_RATE_LIMIT: return "rate_limit";
        case TG_ERRC_SERVER: return "server";
        case TG_ERRC_AUTH: return "auth";
        case TG_ERRC_NOT_FOUND: return "not_found";
        case TG_ERRC_BAD_REQUEST: return "bad_request";
        case TG_ERRC_PROTOCOL: return "protocol";
        case TG_ERRC_CONTEXT_WINDOW: return "context_window";
        default: return other;
    }
}

// Services of the host, valid for the life of the strategy instance.
class Host {
public:
    // Copies only the members the host's table has (struct_size); the rest stay
    // null, so a plugin built against a newer SDK runs on an older host.
    explicit Host(const tg_host_api* api) : api_{} {
        if (api == nullptr) return;
        size_t n = api->struct_size < sizeof(tg_host_api) ? api->struct_size : sizeof(tg_host_api);
        std::memcpy(&api_, api, n);
    }
    void log(tg_log_level level, const std::string& msg) const {
        if (api_.log) api_.log(api_.host, static_cast<uint32_t>(level), msg.c_str());
    }
    // Whether a message at `level` would be written (1.1 hosts; older ones: always).
    bool log_enabled(tg_log_level level) const {
        if (api_.log == nullptr) return false;
        return api_.log_enabled == nullptr || api_.log_enabled(api_.host, static_cast<uint32_t>(level)) != 0;
    }
    int64_t now_ms() const { return api_.now_ms ? api_.now_ms(api_.host) : 0; }
    void publish_latency(uint32_t index, bool ttft, const tg_latency_summary& s) const {
        if (api_.publish_latency) api_.publish_latency(api_.host, index, ttft ? 0u : 1u, &s);
    }
    void publish_health(uint32_t index, tg_health h, int64_t until_ms) const {
        if (api_.publish_health) api_.publish_health(api_.host, index, static_cast<uint32_t>(h), until_ms);
    }
    void note(tg_route* route, const std::string& text) const {
        if (api_.route_note) api_.route_note(route, text.c_str());
    }
    // Refusing because of a limit that lifts by itself: a retry can succeed in
    // `ms` (the client's Retry-After). A no-op on hosts without the callback.
    void retry_after(tg_route* route, int64_t ms) const {
        if (api_.route_retry_after) api_.route_retry_after(route, ms);
    }
    // Plugin metrics (tailgate_plugin_<strategy>_<name> in /metrics). Register
    // in the constructor; -1 (and updates that do nothing) on a host without
    // them or when refused (the host logs why). One label at most, with every
    // value listed here: series stay bounded.
    int32_t counter(const char* name, const char* help, const char* label = nullptr,
                    std::initializer_list<const char*> values = {}) const {
        return register_metric(TG_METRIC_COUNTER, name, help, label, values, {});
    }
    int32_t gauge(const char* name, const char* help, const char* label = nullptr,
                  std::initializer_list<const char*> values = {}) const {
        return register_metric(TG_METRIC_GAUGE, name, help, label, values, {});
    }
    // buckets: ascending upper bounds; empty for the host's (1 ms .. 60 s, in ms).
    int32_t histogram(const char* name, const char* help, std::initializer_list<double> buckets = {},
                      const char* label = nullptr, std::initializer_list<const char*> values = {}) const {
        return register_metric(TG_METRIC_HISTOGRAM, name, help, label, values, buckets);
    }
    // counter: add; gauge: set; histogram: observe. label_index: position in the values.
    void metric(int32_t id, double value, uint32_t label_index = 0) const {
        if (id >= 0 && api_.metric_update) api_.metric_update(api_.host, id, label_index, value);
    }

    // Fleets (1.2): may this replica send the half-open probe of `index` now?
    // Always true on hosts without the callback, alone, or with Redis down.
    bool probe_lease(uint32_t index) const {
        return api_.probe_lease == nullptr || api_.probe_lease(api_.host, index) != 0;
    }

    // Fleets (1.3): quota leases for rpm/tpm (see tg_host_api.quota_take).
    // TG_QUOTA_NONE on hosts without them: count locally.
    int32_t quota_take(uint32_t index, uint32_t kind, int64_t amount, int64_t* retry_after_ms = nullptr) const {
        return api_.quota_take ? api_.quota_take(api_.host, index, kind, amount, retry_after_ms) : TG_QUOTA_NONE;
    }
    void quota_settle(uint32_t index, uint32_t kind, int64_t amount) const {
        if (api_.quota_settle && amount != 0) api_.quota_settle(api_.host, index, kind, amount);
    }

    uint32_t deployment_count() const { return api_.deployment_count ? api_.deployment_count(api_.host) : 0; }
    const tg_deployment* deployment_at(uint32_t i) const {
        return api_.deployment_at ? api_.deployment_at(api_.host, i) : nullptr;
    }

private:
    int32_t register_metric(uint32_t kind, const char* name, const char* help, const char* label,
                            std::initializer_list<const char*> values, std::initializer_list<double> buckets) const {
        if (api_.metric_register == nullptr) return -1;
        return api_.metric_register(api_.host, kind, name, help, label, values.size() ? values.begin() : nullptr,
                                    static_cast<uint32_t>(values.size()), buckets.size() ? buckets.begin() : nullptr,
                                    static_cast<uint32_t>(buckets.size()));
    }
    tg_host_api api_;  // copied: the host's table is BORROWED at create time
};

// Convenience over tg_route for use inside Strategy::route().
class Route {
public:
    explicit Route(tg_route* r) : r_(r) {}
    uint32_t size() const { return r_->count; }
    tg_candidate& operator[](uint32_t i) { return r_->candidates[i]; }
    const tg_candidate& operator[](uint32_t i) const { return r_->candidates[i]; }
    tg_candidate* begin() { return r_->candidates; }
    tg_candidate* end() { return r_->candidates + r_->count; }
    // Keeps candidates for which keep(c) is true, preserving order.
    template <class Pred>
    void filter(Pred keep) {
        uint32_t out = 0;
        for (uint32_t i = 0; i < r_->count; ++i)
            if (keep(r_->candidates[i])) r_->candidates[out++] = r_->candidates[i];
        r_->count = out;
        clear_plan();
    }
    static bool is_cooling(const tg_candidate& c) {
        const tg_deployment_stats* st = c.stats;
        return st != nullptr && TG_HAS_MEMBER(st, tg_deployment_stats, health) && st->health == TG_HEALTH_COOLING;
    }
    // Moves cooling candidates after the others, keeping both orders; returns
    // how many are not cooling. The plan is left alone (positions may move).
    uint32_t cooling_last() {
        tg_candidate* mid = std::stable_partition(begin(), end(), [](const tg_candidate& c) { return !is_cooling(c); });
        return static_cast<uint32_t>(mid - begin());
    }
    void move_to_front(uint32_t i) {
        if (i >= r_->count) return;
        tg_candidate c = r_->candidates[i];
        for (uint32_t k = i; k > 0; --k) r_->candidates[k] = r_->candidates[k - 1];
        r_->candidates[0] = c;
    }
    uint32_t attempt_count() const { return r_->attempt_count; }
    const tg_attempt& attempt(uint32_t i) const { return r_->attempts[i]; }
    void clear_plan() { r_->attempt_count = 0; }
    bool add_attempt(uint32_t candidate, tg_launch launch, uint32_t delay_ms = 0) {
        if (r_->attempt_count >= TG_MAX_ATTEMPTS || candidate >= r_->count) return false;
        r_->attempts[r_->attempt_count++] = tg_attempt{candidate, static_cast<uint32_t>(launch), delay_ms, 0};
        return true;
    }
    tg_route* raw() { return r_; }

    // This strategy's per-request context (see tg_route.request_ctx): null on
    // the first route() of a request; set_context() needs a 1.1 host and
    // returns false on an older one (keep nothing then: it would leak).
    // The context comes back in Strategy::observe's event (event_context())
    // and goes to Strategy::release_request once the request is over.
    void* context() const { return TG_HAS_MEMBER(r_, tg_route, request_ctx) ? r_->request_ctx : nullptr; }
    bool set_context(void* ctx) {
        if (!TG_HAS_MEMBER(r_, tg_route, request_ctx)) return false;
        r_->request_ctx = ctx;
        return true;
    }

private:
    tg_route* r_;
};

// Another replica's outcome (delivered to Strategy::observe_remote), 1.2 hosts.
inline bool event_is_remote(const tg_event& ev) {
    return TG_HAS_MEMBER(&ev, tg_event, flags) && (ev.flags & TG_EVENT_FLAG_REMOTE) != 0;
}
// The attempt's launch rule (tg_launch); nullopt on hosts before 1.2.
inline std::optional<uint32_t> event_launch(const tg_event& ev) {
    if (!TG_HAS_MEMBER(&ev, tg_event, launch)) return std::nullopt;
    return ev.launch;
}

// The request context this instance set while routing the event's request.
inline void* event_context(const tg_event& ev) {
    return TG_HAS_MEMBER(&ev, tg_event, request_ctx) ? ev.request_ctx : nullptr;
}

// ---- request fields (tg_request 1.1), with the "absent" answers of older hosts ----
inline std::optional<std::string_view> request_user(const tg_request& r) {
    if (!TG_HAS_MEMBER(&r, tg_request, user) || r.user == nullptr) return std::nullopt;
    return std::string_view(r.user);
}
// max_completion_tokens, else max_tokens; nullopt when absent.
inline std::optional<int64_t> request_max_tokens(const tg_request& r) {
    if (!TG_HAS_MEMBER(&r, tg_request, max_tokens) || r.max_tokens < 0) return std::nullopt;
    return r.max_tokens;
}
inline bool request_has(const tg_request& r, uint32_t flag) {
    return TG_HAS_MEMBER(&r, tg_request, flags) && (r.flags & flag) != 0;
}
inline std::optional<int64_t> request_prompt_tokens_estimate(const tg_request& r) {
    if (!TG_HAS_MEMBER(&r, tg_request, prompt_tokens_estimate) || r.prompt_tokens_estimate < 0) return std::nullopt;
    return r.prompt_tokens_estimate;
}
// A header from router_settings.strategy_request_headers; `name` lower-case.
inline std::optional<std::string_view> request_header(const tg_request& r, std::string_view name) {
    if (!TG_HAS_MEMBER(&r, tg_request, header_count) || r.headers == nullptr) return std::nullopt;
    for (uint32_t i = 0; i < r.header_count; ++i)
        if (name == r.headers[i].key) return std::string_view(r.headers[i].value);
    return std::nullopt;
}
// A dry run (TG_REQUEST_PREVIEW, 1.2 hosts): plan as usual, change no state.
inline bool request_is_preview(const tg_request& r) { return request_has(r, TG_REQUEST_PREVIEW); }
inline std::optional<std::string_view> request_caller(const tg_request& r) {
    if (!TG_HAS_MEMBER(&r, tg_request, caller_key_hash) || r.caller_key_hash == nullptr) return std::nullopt;
    return std::string_view(r.caller_key_hash);
}

class Strategy {
public:
    virtual ~Strategy() = default;
    // Filter / reorder candidates and optionally shape the plan.
    // Return TG_ERR_NO_CANDIDATE to refuse the request.
    virtual tg_status route(const tg_request& request, Route& route) = 0;
    // Attempt outcomes of every request of the router. Must not block.
    virtual void observe(const tg_event&) {}
    // Outcomes other replicas of a fleet saw (TG_EVENT_FLAG_REMOTE; shared
    // state through Redis). Ignored unless overridden; `observe(ev)` makes
    // windows and counters fleet-wide. Must not block.
    virtual void observe_remote(const tg_event&) {}
    // A hedge this strategy planned is due: launch it? (load budgets). Must not block.
    virtual bool admit(const tg_event&) { return true; }
    // Frees a context set with Route::set_context(), once, after the request's
    // last event. Must not block.
    virtual void release_request(void* /*ctx*/) noexcept {}
    // Reload handover: take over what is useful of `previous`, the instance
    // this one replaces (same strategy, same loaded library, so
    // static_cast<MyStrategy&>(previous) is valid; args may differ). Move the
    // state out: `previous` is destroyed afterwards. Return false to start
    // fresh. Never concurrent with other calls on either instance.
    virtual bool adopt_state(Strategy& /*previous*/) { return false; }
    // Live state for GET /admin/routing/state: a JSON object's text, or "" for
    // nothing. A number member "budget_left" is shown as the hedge budget left.
    // Called concurrently with route()/observe(). Must not block.
    virtual std::string state_json() const { return {}; }
};

// Read-only view of tg_request's flattened per-request overrides (extra_body).
inline std::optional<std::string_view> request_override(const tg_request& r, std::string_view key) {
    if (r.struct_size < offsetof(tg_request, override_count) + sizeof(uint32_t) || r.overrides == nullptr)
        return std::nullopt;
    for (uint32_t i = 0; i < r.override_count; ++i)
        if (key == r.overrides[i].key) return std::string_view(r.overrides[i].value);
    return std::nullopt;
}

namespace detail {
inline void copy_error(char* err, size_t len, const char* msg) {
    if (err == nullptr || len == 0) return;
    std::snprintf(err, len, "%s", msg);
}
// The reason of a failed route(), when the host offers room for one (1.1).
inline void route_error(tg_route* r, const char* msg) {
    if (r != nullptr && TG_HAS_MEMBER(r, tg_route, error_size)) copy_error(r->error, r->error_size, msg);
}
}  // namespace detail

}  // namespace tailgate::sdk

// Defines the exported entry points for Class (the six required ones, and the
// optional tg_plugin_admit, tg_plugin_release_request, tg_plugin_adopt_state
// tg_plugin_state_json and tg_plugin_observe_remote),
// constructed as Class(Host, Args).
#define TAILGATE_STRATEGY(Class, NameLiteral)                                                       \
    extern "C" TG_EXPORT uint32_t tg_plugin_abi_version(void) { return TG_ABI_VERSION; }            \
    extern "C" TG_EXPORT const char* tg_plugin_name(void) { return NameLiteral; }                   \
    extern "C" TG_EXPORT void* tg_plugin_create(const tg_host_api* host, const tg_args* args,       \
                                                char* err, size_t err_len) {                        \
        try {                                                                                       \
            return static_cast<::tailgate::sdk::Strategy*>(                                         \
                new Class(::tailgate::sdk::Host(host), ::tailgate::sdk::Args(args, NameLiteral)));  \
        } catch (const std::exception& e) {                                                         \
            ::tailgate::sdk::detail::copy_error(err, err_len, e.what());                            \
        } catch (...) {                                                                             \
            ::tailgate::sdk::detail::copy_error(err, err_len, "unknown exception in constructor"); \
        }                                                                                           \
        return nullptr;                                                                             \
    }                                                                                               \
    extern "C" TG_EXPORT void tg_plugin_destroy(void* self) {                                       \
        try {                                                                                       \
            delete static_cast<::tailgate::sdk::Strategy*>(self);                                   \
        } catch (...) {                                                                             \
        }                                                                                           \
    }                                                                                               \
    extern "C" TG_EXPORT int32_t tg_plugin_route(void* self, const tg_request* req, tg_route* r) { \
        try {                                                                                       \
            ::tailgate::sdk::Route route(r);                                                        \
            return static_cast<int32_t>(static_cast<::tailgate::sdk::Strategy*>(self)->route(*req, route)); \
        } catch (const std::exception& e) {                                                         \
            ::tailgate::sdk::detail::route_error(r, e.what());                                      \
            return TG_ERR_INTERNAL;                                                                 \
        } catch (...) {                                                                             \
            ::tailgate::sdk::detail::route_error(r, "unknown exception in route()");                \
            return TG_ERR_INTERNAL;                                                                 \
        }                                                                                           \
    }                                                                                               \
    extern "C" TG_EXPORT void tg_plugin_observe(void* self, const tg_event* ev) {                   \
        try {                                                                                       \
            static_cast<::tailgate::sdk::Strategy*>(self)->observe(*ev);                            \
        } catch (...) {                                                                             \
        }                                                                                           \
    }                                                                                               \
    extern "C" TG_EXPORT void tg_plugin_observe_remote(void* self, const tg_event* ev) {            \
        try {                                                                                       \
            static_cast<::tailgate::sdk::Strategy*>(self)->observe_remote(*ev);                     \
        } catch (...) {                                                                             \
        }                                                                                           \
    }                                                                                               \
    extern "C" TG_EXPORT int32_t tg_plugin_admit(void* self, const tg_event* ev) {                  \
        try {                                                                                       \
            return static_cast<::tailgate::sdk::Strategy*>(self)->admit(*ev) ? 1 : 0;               \
        } catch (...) {                                                                             \
            return 1; /* a failing budget check must not stall the request */                      \
        }                                                                                           \
    }                                                                                               \
    extern "C" TG_EXPORT void tg_plugin_release_request(void* self, void* ctx) {                    \
        static_cast<::tailgate::sdk::Strategy*>(self)->release_request(ctx);                        \
    }                                                                                               \
    extern "C" TG_EXPORT int32_t tg_plugin_adopt_state(void* self, void* previous) {               \
        try {                                                                                       \
            return static_cast<::tailgate::sdk::Strategy*>(self)->adopt_state(                      \
                       *static_cast<::tailgate::sdk::Strategy*>(previous))                          \
                       ? TG_OK                                                                      \
                       : TG_ERR_INTERNAL;                                                           \
        } catch (...) {                                                                             \
            return TG_ERR_INTERNAL;                                                                 \
        }                                                                                           \
    }                                                                                               \
    extern "C" TG_EXPORT int32_t tg_plugin_state_json(void* self, char* out, uint32_t size) {      \
        try {                                                                                       \
            const std::string s = static_cast<const ::tailgate::sdk::Strategy*>(self)->state_json(); \
            if (s.empty() || s.size() > 0x7fffffffu) return -1;                                     \
            if (out != nullptr && size > 0) ::tailgate::sdk::detail::copy_error(out, size, s.c_str()); \
            return static_cast<int32_t>(s.size());                                                  \
        } catch (...) {                                                                             \
            return -1;                                                                              \
        }                                                                                           \
    }
