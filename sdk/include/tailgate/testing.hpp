// Test helpers for strategy plugins (header-only, C++17, no test framework
// dependency). Not used by plugins at run time.
//
//   tailgate::sdk::testing::FakeHost host;                 // a tg_host_api that records
//   tailgate::sdk::testing::Deployments d;                 // deployments + live stats
//   d.add("a").weight = 3;  d.add("b").rpm = 100;
//   tg_route& r = d.route(&host);                          // all deployments, plan empty
//   tailgate::sdk::testing::Request req("gpt-4o");
//   int rc = tg_plugin_route(instance, &req.raw, &r);      // or via the host's loader
//   d.order()  -> {"b", "a"}
#pragma once

#include <tailgate/plugin_abi.h>

#include <dlfcn.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace tailgate::sdk::testing {

// A host table whose callbacks record what the plugin did. The clock is
// `now` (settable). Thread-safe. Pass api() to tg_plugin_create.
class FakeHost {
public:
    FakeHost() {
        api_.struct_size = sizeof(tg_host_api);
        api_.host = this;
        api_.log = [](void* h, uint32_t level, const char* msg) {
            auto* self = static_cast<FakeHost*>(h);
            std::lock_guard<std::mutex> lock(self->mu_);
            self->logs_.emplace_back(level, msg ? msg : "");
        };
        api_.now_ms = [](void* h) -> int64_t {
            auto* self = static_cast<FakeHost*>(h);
            std::lock_guard<std::mutex> lock(self->mu_);
            return self->now_;
        };
        api_.publish_latency = [](void* h, uint32_t index, uint32_t which, const tg_latency_summary* s) {
            auto* self = static_cast<FakeHost*>(h);
            std::lock_guard<std::mutex> lock(self->mu_);
            if (s) self->latency_[{index, which}] = *s;
        };
        api_.publish_health = [](void* h, uint32_t index, uint32_t health, int64_t until) {
            auto* self = static_cast<FakeHost*>(h);
            std::lock_guard<std::mutex> lock(self->mu_);
            self->health_[index] = {health, until};
        };
        api_.route_note = [](tg_route* route, const char* text) {
            if (route == nullptr || route->host_private == nullptr) return;
            auto* self = static_cast<FakeHost*>(route->host_private);
            std::lock_guard<std::mutex> lock(self->mu_);
            self->notes_.emplace_back(text ? text : "");
        };
        api_.route_retry_after = [](tg_route* route, int64_t ms) {
            if (route == nullptr || route->host_private == nullptr) return;
            auto* self = static_cast<FakeHost*>(route->host_private);
            std::lock_guard<std::mutex> lock(self->mu_);
            self->retry_hints_.push_back(ms);
        };
        api_.deployment_count = [](void* h) -> uint32_t {
            auto* self = static_cast<FakeHost*>(h);
            std::lock_guard<std::mutex> lock(self->mu_);
            return static_cast<uint32_t>(self->deployments_.size());
        };
        api_.deployment_at = [](void* h, uint32_t i) -> const tg_deployment* {
            auto* self = static_cast<FakeHost*>(h);
            std::lock_guard<std::mutex> lock(self->mu_);
            return i < self->deployments_.size() ? self->deployments_[i] : nullptr;
        };
        api_.log_enabled = [](void*, uint32_t) -> int32_t { return 1; };
        api_.metric_register = [](void* h, uint32_t kind, const char* name, const char*, const char*,
                                  const char* const*, uint32_t, const double*, uint32_t) -> int32_t {
            auto* self = static_cast<FakeHost*>(h);
            std::lock_guard<std::mutex> lock(self->mu_);
            if (name == nullptr || kind > TG_METRIC_HISTOGRAM) return -1;
            for (const auto& m : self->metric_names_)
                if (m == name) return -1;
            self->metric_names_.emplace_back(name);
            self->metric_kinds_.push_back(kind);
            return static_cast<int32_t>(self->metric_names_.size() - 1);
        };
        api_.metric_update = [](void* h, int32_t id, uint32_t label, double value) {
            auto* self = static_cast<FakeHost*>(h);
            std::lock_guard<std::mutex> lock(self->mu_);
            if (id < 0 || static_cast<size_t>(id) >= self->metric_names_.size()) return;
            double& v = self->metric_values_[{self->metric_names_[id], label}];
            v = self->metric_kinds_[id] == TG_METRIC_GAUGE ? value : v + value;  // histograms: the sum
        };
        // Quota leases (1.3): answered from set_quota()'s allowances; NONE for
        // a (deployment, kind) never given one.
        api_.quota_take = [](void* h, uint32_t index, uint32_t kind, int64_t amount, int64_t* retry) -> int32_t {
            auto* self = static_cast<FakeHost*>(h);
            std::lock_guard<std::mutex> lock(self->mu_);
            if (retry) *retry = -1;
            auto it = self->quota_.find({index, kind});
            if (it == self->quota_.end()) return TG_QUOTA_NONE;
            if (it->second.local) return TG_QUOTA_LOCAL;
            if (amount <= 0 ? it->second.left > 0 : it->second.left >= amount) {
                it->second.left -= amount > 0 ? amount : 0;
                return TG_QUOTA_GRANTED;
            }
            if (retry) *retry = it->second.free_in_ms;
            return TG_QUOTA_EXHAUSTED;
        };
        api_.quota_settle = [](void* h, uint32_t index, uint32_t kind, int64_t amount) {
            auto* self = static_cast<FakeHost*>(h);
            std::lock_guard<std::mutex> lock(self->mu_);
            self->settles_.push_back({index, kind, amount});
            auto it = self->quota_.find({index, kind});
            if (it != self->quota_.end() && !it->second.local) it->second.left -= amount;
        };
    }
    FakeHost(const FakeHost&) = delete;
    FakeHost& operator=(const FakeHost&) = delete;

    const tg_host_api* api() const { return &api_; }

    void set_now(int64_t ms) {
        std::lock_guard<std::mutex> lock(mu_);
        now_ = ms;
    }
    // Deployments answered by deployment_count/deployment_at (not owned).
    void set_deployments(std::vector<const tg_deployment*> d) {
        std::lock_guard<std::mutex> lock(mu_);
        deployments_ = std::move(d);
    }

    // Quota leases: deployment `index` has `left` units of `kind` (TG_QUOTA_*);
    // local: answer TG_QUOTA_LOCAL (a fleet without an answer).
    void set_quota(uint32_t index, uint32_t kind, int64_t left, int64_t free_in_ms = -1, bool local = false) {
        std::lock_guard<std::mutex> lock(mu_);
        quota_[{index, kind}] = Quota{left, free_in_ms, local};
    }
    int64_t quota_left(uint32_t index, uint32_t kind) const {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = quota_.find({index, kind});
        return it == quota_.end() ? 0 : it->second.left;
    }
    struct Settle {
        uint32_t index;
        uint32_t kind;
        int64_t amount;
    };
    std::vector<Settle> settles() const {
        std::lock_guard<std::mutex> lock(mu_);
        return settles_;
    }

    std::vector<std::pair<uint32_t, std::string>> logs() const {
        std::lock_guard<std::mutex> lock(mu_);
        return logs_;
    }
    // A registered metric's value for one label position: counters and
    // histograms the sum of what was added/observed, gauges the last value.
    double metric(const std::string& name, uint32_t label_index = 0) const {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = metric_values_.find({name, label_index});
        return it == metric_values_.end() ? 0.0 : it->second;
    }
    std::vector<std::string> notes() const {
        std::lock_guard<std::mutex> lock(mu_);
        return notes_;
    }
    // Every route_retry_after(ms) reported through a route whose host_private is this host.
    std::vector<int64_t> retry_hints() const {
        std::lock_guard<std::mutex> lock(mu_);
        return retry_hints_;
    }
    // which: 0 = ttft, 1 = total. samples == 0 when never published.
    tg_latency_summary latency(uint32_t index, uint32_t which) const {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = latency_.find({index, which});
        return it == latency_.end() ? tg_latency_summary{} : it->second;
    }
    // {health, cooldown_until_ms}; {HEALTHY, 0} when never published.
    std::pair<uint32_t, int64_t> health(uint32_t index) const {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = health_.find(index);
        return it == health_.end() ? std::pair<uint32_t, int64_t>{TG_HEALTH_HEALTHY, 0} : it->second;
    }

private:
    tg_host_api api_{};
    mutable std::mutex mu_;
    int64_t now_ = 0;
    std::vector<std::pair<uint32_t, std::string>> logs_;
    std::vector<std::string> notes_;
    std::vector<int64_t> retry_hints_;
    std::map<std::pair<uint32_t, uint32_t>, tg_latency_summary> latency_;
    std::map<uint32_t, std::pair<uint32_t, int64_t>> health_;
    std::vector<const tg_deployment*> deployments_;
    std::vector<std::string> metric_names_;
    std::vector<uint32_t> metric_kinds_;
    std::map<std::pair<std::string, uint32_t>, double> metric_values_;
    struct Quota {
        int64_t left = 0;
        int64_t free_in_ms = -1;
        bool local = false;
    };
    std::map<std::pair<uint32_t, uint32_t>, Quota> quota_;
    std::vector<Settle> settles_;
};

// Deployments with their stats, and a tg_route over them. Addresses of added
// deployments and stats stay valid for the life of the object.
class Deployments {
public:
    Deployments() = default;
    Deployments(const Deployments&) = delete;
    Deployments& operator=(const Deployments&) = delete;

    // Adds a deployment (weight/rpm/tpm 0, costs unknown); returns it for tweaks.
    tg_deployment& add(const std::string& id, const std::string& provider = "openai",
                       const std::string& model_group = "test-group") {
        strings_.push_back(id);
        const char* id_c = strings_.back().c_str();
        strings_.push_back(provider);
        const char* prov_c = strings_.back().c_str();
        strings_.push_back(model_group);
        const char* group_c = strings_.back().c_str();
        tg_deployment d{};
        d.struct_size = sizeof(tg_deployment);
        d.index = static_cast<uint32_t>(deployments_.size());
        d.id = id_c;
        d.model_group = group_c;
        d.provider = prov_c;
        d.upstream_model = id_c;
        d.api_base = "http://127.0.0.1:1";
        d.input_cost_per_token = -1;
        d.output_cost_per_token = -1;
        deployments_.push_back(d);
        tg_deployment_stats s{};
        s.struct_size = sizeof(tg_deployment_stats);
        stats_.push_back(s);
        return deployments_.back();
    }
    tg_deployment& deployment(uint32_t i) { return deployments_.at(i); }
    tg_deployment_stats& stats(uint32_t i) { return stats_.at(i); }
    size_t size() const { return deployments_.size(); }

    // Resets the route to every deployment in insertion order, with no plan.
    // `host` (may be null) receives route notes through host_private.
    tg_route& route(FakeHost* host = nullptr) {
        candidates_.clear();
        for (size_t i = 0; i < deployments_.size(); ++i)
            candidates_.push_back(tg_candidate{&deployments_[i], &stats_[i]});
        route_ = tg_route{};
        route_.struct_size = sizeof(tg_route);
        route_.candidates = candidates_.data();
        route_.count = static_cast<uint32_t>(candidates_.size());
        route_.attempts = attempts_;
        route_.attempt_count = 0;
        route_.host_private = host;
        return route_;
    }
    tg_route& current() { return route_; }

    // Ids of the route's candidates, in order.
    std::vector<std::string> order() const {
        std::vector<std::string> out;
        for (uint32_t i = 0; i < route_.count; ++i) out.emplace_back(route_.candidates[i].deployment->id);
        return out;
    }
    std::vector<const tg_deployment*> pointers() const {
        std::vector<const tg_deployment*> out;
        for (auto& d : deployments_) out.push_back(&d);
        return out;
    }

private:
    std::deque<std::string> strings_;
    std::deque<tg_deployment> deployments_;
    std::deque<tg_deployment_stats> stats_;
    std::vector<tg_candidate> candidates_;
    tg_attempt attempts_[TG_MAX_ATTEMPTS] = {};
    tg_route route_{};
};

// A tg_args with its strings kept alive: Args a{{"delay", "p95"}}; create(..., a.raw(), ...).
class Args {
public:
    Args() { refresh(); }
    Args(std::initializer_list<std::pair<std::string, std::string>> kv) : items_(kv.begin(), kv.end()) { refresh(); }
    Args(const Args&) = delete;
    Args& operator=(const Args&) = delete;
    Args& set(std::string key, std::string value) {
        items_.emplace_back(std::move(key), std::move(value));
        refresh();
        return *this;
    }
    const tg_args* raw() const { return &raw_; }

private:
    void refresh() {
        kv_.clear();
        for (const auto& [k, v] : items_) kv_.push_back(tg_kv{k.c_str(), v.c_str()});
        raw_.struct_size = sizeof(tg_args);
        raw_.items = kv_.empty() ? nullptr : kv_.data();
        raw_.count = static_cast<uint32_t>(kv_.size());
    }
    std::deque<std::pair<std::string, std::string>> items_;  // deque: c_str() pointers stay put
    std::vector<tg_kv> kv_;
    tg_args raw_{};
};

// A tg_request with its strings kept alive.
struct Request {
    explicit Request(std::string group = "test-group", bool stream = false, std::string overrides = "{}",
                     std::string metadata = "{}", std::string id = "req-1")
        : id_(std::move(id)), group_(std::move(group)), overrides_(std::move(overrides)),
          metadata_(std::move(metadata)) {
        raw.struct_size = sizeof(tg_request);
        raw.request_id = id_.c_str();
        raw.model_group = group_.c_str();
        raw.endpoint = TG_ENDPOINT_CHAT;
        raw.stream = stream ? 1 : 0;
        raw.overrides_json = overrides_.c_str();
        raw.metadata_json = metadata_.c_str();
        raw.now_ms = 0;
        raw.max_tokens = -1;
        raw.prompt_tokens_estimate = -1;
    }
    Request(const Request&) = delete;
    Request& operator=(const Request&) = delete;

    // Builders for the per-request fields; each returns *this.
    Request& user(std::string u) {
        user_ = std::move(u);
        raw.user = user_.c_str();
        return *this;
    }
    Request& max_tokens(int64_t n) { raw.max_tokens = n; return *this; }
    Request& flags(uint32_t f) { raw.flags = f; return *this; }
    Request& prompt_tokens_estimate(int64_t n) { raw.prompt_tokens_estimate = n; return *this; }
    Request& endpoint(tg_endpoint e) { raw.endpoint = e; return *this; }
    Request& now(int64_t ms) { raw.now_ms = ms; return *this; }
    Request& caller(std::string key_hash) {
        caller_ = std::move(key_hash);
        raw.caller_key_hash = caller_.c_str();
        return *this;
    }
    // A header (give the name lower-case, as the host does).
    Request& header(std::string name, std::string value) {
        headers_.emplace_back(std::move(name), std::move(value));
        header_kv_.clear();
        for (const auto& [k, v] : headers_) header_kv_.push_back(tg_kv{k.c_str(), v.c_str()});
        raw.headers = header_kv_.data();
        raw.header_count = static_cast<uint32_t>(header_kv_.size());
        return *this;
    }
    // A flattened per-request override ("hedge.delay" = "p99"), as in tg_request.overrides.
    Request& override_kv(std::string key, std::string value) {
        overrides_kv_.emplace_back(std::move(key), std::move(value));
        override_tg_.clear();
        for (const auto& [k, v] : overrides_kv_) override_tg_.push_back(tg_kv{k.c_str(), v.c_str()});
        raw.overrides = override_tg_.data();
        raw.override_count = static_cast<uint32_t>(override_tg_.size());
        return *this;
    }

    tg_request raw{};

private:
    std::string id_, group_, overrides_, metadata_, user_, caller_;
    std::deque<std::pair<std::string, std::string>> headers_, overrides_kv_;
    std::vector<tg_kv> header_kv_, override_tg_;
};

// A tg_event for one deployment, with the "unknown" values the host uses.
//   Event ev(TG_EVENT_SUCCESS, &d.deployment(0));  ev.elapsed(120).tokens(10, 50);
struct Event {
    Event(tg_event_type type, const tg_deployment* deployment, const char* request_id = "req-1") {
        raw.struct_size = sizeof(tg_event);
        raw.type = type;
        raw.deployment = deployment;
        raw.request_id = request_id;
        raw.model_group = deployment ? deployment->model_group : "test-group";
        raw.ttft_ms = -1;
        raw.retry_after_ms = -1;
        raw.prompt_tokens = -1;
        raw.completion_tokens = -1;
    }
    Event& at(int64_t ms) { raw.at_ms = ms; return *this; }
    Event& elapsed(double ms) { raw.elapsed_ms = ms; return *this; }
    Event& ttft(double ms) { raw.ttft_ms = ms; raw.stream = 1; return *this; }
    Event& attempt(uint32_t i) { raw.attempt = i; return *this; }
    Event& failure(tg_error_class c, int32_t http_status = 0) {
        raw.error_class = c;
        raw.http_status = http_status;
        return *this;
    }
    Event& tokens(int64_t prompt, int64_t completion) {
        raw.prompt_tokens = prompt;
        raw.completion_tokens = completion;
        return *this;
    }
    Event& context(void* ctx) { raw.request_ctx = ctx; return *this; }
    tg_event raw{};
};

// Loads a built plugin and drives it the way the host does: the handshake
// (required symbols, ABI version, name), create() with args, route() with the
// host's checks of the output (the rules on tg_route in plugin_abi.h: a broken
// rule is a failure and the route is put back as it was, exactly like the
// host), observe(), admit(), release of request contexts, destroy(). Use it to
// test the .so you ship rather than your classes:
//
//   LoadedPlugin p("build/sticky-user.so");      // throws std::runtime_error
//   FakeHost host;  Args args{{"key", "user"}};
//   ASSERT_EQ(p.create(host.api(), args.raw()), "");
//   auto res = p.route(req.raw, d.route(&host)); // res.status, res.error, res.request_ctx
class LoadedPlugin {
public:
    struct RouteResult {
        int32_t status = TG_OK;    // TG_ERR_INTERNAL for any failure, as the host sees it
        std::string error;         // why, when it failed ("" otherwise)
        void* request_ctx = nullptr;  // what the plugin left in tg_route.request_ctx
    };

    explicit LoadedPlugin(const std::string& path) : path_(path) {
        lib_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (lib_ == nullptr) throw std::runtime_error(path + ": cannot load: " + dlerror());
        version_ = sym<tg_plugin_abi_version_fn>(TG_SYM_ABI_VERSION);
        name_fn_ = sym<tg_plugin_name_fn>(TG_SYM_NAME);
        create_ = sym<tg_plugin_create_fn>(TG_SYM_CREATE);
        destroy_ = sym<tg_plugin_destroy_fn>(TG_SYM_DESTROY);
        route_ = sym<tg_plugin_route_fn>(TG_SYM_ROUTE);
        observe_ = sym<tg_plugin_observe_fn>(TG_SYM_OBSERVE);
        admit_ = sym<tg_plugin_admit_fn>(TG_SYM_ADMIT);
        release_ = sym<tg_plugin_release_request_fn>(TG_SYM_RELEASE_REQUEST);
        adopt_ = sym<tg_plugin_adopt_state_fn>(TG_SYM_ADOPT_STATE);
        state_json_ = sym<tg_plugin_state_json_fn>(TG_SYM_STATE_JSON);
        if (!version_ || !name_fn_ || !create_ || !destroy_ || !route_ || !observe_) {
            dlclose(lib_);
            throw std::runtime_error(path + ": a required tg_plugin_* symbol is missing");
        }
        if (version_() != TG_ABI_VERSION) {
            dlclose(lib_);
            throw std::runtime_error(path + ": ABI version mismatch");
        }
        const char* n = name_fn_();
        name_ = n ? n : "";
    }
    ~LoadedPlugin() {
        destroy();
        dlclose(lib_);
    }
    LoadedPlugin(const LoadedPlugin&) = delete;
    LoadedPlugin& operator=(const LoadedPlugin&) = delete;

    const std::string& name() const { return name_; }

    // "" on success, else the plugin's message. One instance at a time.
    std::string create(const tg_host_api* host, const tg_args* args) {
        destroy();
        char err[1024] = "";
        self_ = create_(host, args, err, sizeof err);
        return self_ ? std::string() : std::string(err[0] ? err : "(no message)");
    }
    void destroy() {
        if (self_) destroy_(self_);
        self_ = nullptr;
    }
    void* instance() const { return self_; }

    RouteResult route(const tg_request& request, tg_route& route) {
        RouteResult out;
        const tg_route before = route;
        const std::vector<tg_candidate> cands(route.candidates, route.candidates + route.count);
        const std::vector<tg_attempt> plan(route.attempts, route.attempts + TG_MAX_ATTEMPTS);
        char reason[256] = "";
        route.error = reason;
        route.error_size = sizeof reason;
        out.status = route_(self_, &request, &route);
        route.error = nullptr;
        route.error_size = 0;
        out.request_ctx = route.request_ctx;
        if (out.status == TG_OK) {
            out.error = check(before, cands, route);
        } else if (out.status != TG_ERR_NO_CANDIDATE) {
            out.error = "returned status " + std::to_string(out.status) + (reason[0] ? ": " + std::string(reason) : "");
        }
        if (!out.error.empty()) {  // undone, as the host does
            out.status = TG_ERR_INTERNAL;
            void* ctx = route.request_ctx;
            route = before;
            std::copy(cands.begin(), cands.end(), route.candidates);
            std::copy(plan.begin(), plan.end(), route.attempts);
            route.request_ctx = ctx;
        }
        return out;
    }
    void observe(const tg_event& ev) { observe_(self_, &ev); }
    bool admit(const tg_event& ev) { return admit_ == nullptr || admit_(self_, &ev) != 0; }
    // Frees a context route() left (the host does this after the request's last event).
    void release(void* ctx) {
        if (ctx && release_) release_(self_, ctx);
    }
    // A reload's handover, as the host does it: this instance (create() it from
    // the next configuration, on a host listing the next deployments) takes
    // over `previous`'s state; `previous` must be another LoadedPlugin of the
    // same file. TG_OK, or why not (the plugin's status; TG_ERR_INTERNAL
    // without the export).
    int32_t adopt_state(const LoadedPlugin& previous) {
        if (adopt_ == nullptr || self_ == nullptr || previous.self_ == nullptr) return TG_ERR_INTERNAL;
        return adopt_(self_, previous.self_);
    }
    // What tg_plugin_state_json writes ("" when nothing or no export).
    std::string state_json() const {
        if (state_json_ == nullptr || self_ == nullptr) return {};
        const int32_t n = state_json_(self_, nullptr, 0);
        if (n < 0) return {};
        std::string out(static_cast<size_t>(n) + 1, '\0');
        if (state_json_(self_, &out[0], static_cast<uint32_t>(out.size())) != n) return {};
        out.resize(static_cast<size_t>(n));
        return out;
    }

private:
    template <class Fn>
    Fn sym(const char* name) {
        return reinterpret_cast<Fn>(dlsym(lib_, name));
    }
    static std::string check(const tg_route& before, const std::vector<tg_candidate>& in, const tg_route& r) {
        if (r.candidates != before.candidates || r.attempts != before.attempts || r.host_private != before.host_private)
            return "replaced candidates, attempts or host_private";
        if (r.count > before.count) return "raised count";
        std::vector<bool> used(in.size(), false);
        for (uint32_t k = 0; k < r.count; ++k) {
            size_t j = 0;
            while (j < in.size() && (in[j].deployment != r.candidates[k].deployment || in[j].stats != r.candidates[k].stats))
                ++j;
            if (j == in.size()) return "candidates[" + std::to_string(k) + "] was not handed in";
            if (used[j]) return "candidates[" + std::to_string(k) + "] is listed twice";
            used[j] = true;
        }
        if (r.attempt_count > TG_MAX_ATTEMPTS) return "too many attempts";
        for (uint32_t i = 0; i < r.attempt_count; ++i)
            if (r.attempts[i].candidate >= r.count || r.attempts[i].launch > TG_LAUNCH_ON_FAILURE)
                return "attempts[" + std::to_string(i) + "] is invalid";
        return {};
    }

    std::string path_, name_;
    void* lib_ = nullptr;
    void* self_ = nullptr;
    tg_plugin_abi_version_fn version_ = nullptr;
    tg_plugin_name_fn name_fn_ = nullptr;
    tg_plugin_create_fn create_ = nullptr;
    tg_plugin_destroy_fn destroy_ = nullptr;
    tg_plugin_route_fn route_ = nullptr;
    tg_plugin_observe_fn observe_ = nullptr;
    tg_plugin_admit_fn admit_ = nullptr;
    tg_plugin_release_request_fn release_ = nullptr;
    tg_plugin_adopt_state_fn adopt_ = nullptr;
    tg_plugin_state_json_fn state_json_ = nullptr;
};

}  // namespace tailgate::sdk::testing
