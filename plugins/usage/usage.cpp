// usage — LiteLLM's usage-based routing (`usage-based-routing` and
// `usage-based-routing-v2`): skip deployments at their rpm/tpm, lowest token
// usage first.
//
// Per deployment the plugin counts, over a sliding window of the last 60 s:
//   requests: one per attempt started (TG_EVENT_STARTED; retries and hedges
//             are upstream calls too),
//   tokens:   prompt_tokens + completion_tokens of each SUCCESS (and
//             SHADOW_DONE) event that reports usage (streams do when the
//             upstream sent a usage chunk).
// The window is 61 one-second buckets on the host clock (now_ms / at_ms), so
// an event counts for 60 to 61 s: never fewer than 60, so `rpm` requests are
// never started within any 60 s span (a fixed minute would allow 2 x rpm
// across its boundary).
//
// Per request, over the candidates the chain hands over:
//  1. A candidate is at its limit when requests >= rpm or tokens >= tpm (a
//     limit of 0 / unset is no limit); those are dropped.
//  2. The rest are ordered by tokens in the window, then requests, lowest
//     first; exact ties in random order (LiteLLM's v1 and v2 both pick the
//     lowest TPM deployment). Cooling candidates go last (chains without health).
//  3. Nothing left: TG_ERR_NO_CANDIDATE, after telling the host (route_retry_after)
//     when the first of them frees a slot, for the client's Retry-After.
// It never writes attempts; an earlier plan is cleared (positions changed).
//
// Counters are per process and per plugin instance (every instance observes
// every event of the router); see README.md for what that does not cover. In
// a fleet (1.3 hosts with Redis) the limits are the host's quota leases:
// route() reserves a request unit per limited candidate it keeps (request
// context), observe() settles what attempts used, release_request() gives the
// rest back; the window decides only when the host has no fleet answer.
//
// args: none (router.* settings are accepted and ignored).
#include <tailgate/deployment_table.hpp>
#include <tailgate/plugin.hpp>

#include "thread_rng.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

using tailgate::sdk::Args;
using tailgate::sdk::DeploymentTable;
using tailgate::sdk::Host;
using tailgate::sdk::Route;
using tailgate::sdk::Strategy;
using tailgate::sdk::event_is_remote;

constexpr int64_t kBucketMs = 1000;
constexpr int64_t kBuckets = 61;  // the current second and the 60 before it

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

struct Usage {
    int64_t requests = 0;
    int64_t tokens = 0;
};

// One deployment's sliding window. A bucket is reused for a later second by
// resetting it; an event older than the bucket's second is dropped (it left
// the window long ago). Shared with the next instance on a reload (by
// deployment identity), hence its own lock.
class Window {
public:
    void add(int64_t at_ms, int64_t requests, int64_t tokens) {
        const int64_t sec = floor_div(at_ms, kBucketMs);
        std::lock_guard lk(mu_);
        Bucket& b = buckets_[static_cast<size_t>(sec - floor_div(sec, kBuckets) * kBuckets)];
        if (b.sec > sec) return;
        if (b.sec != sec) b = Bucket{sec, 0, 0};
        b.requests += requests;
        b.tokens += tokens;
    }

    Usage read(int64_t now_ms) const {
        const int64_t oldest = floor_div(now_ms, kBucketMs) - (kBuckets - 1);
        Usage u;
        std::lock_guard lk(mu_);
        for (const Bucket& b : buckets_)
            if (b.sec >= oldest) {
                u.requests += b.requests;
                u.tokens += b.tokens;
            }
        return u;
    }

    // Milliseconds from now until requests < rpm and tokens < tpm (limits <= 0:
    // none), as buckets leave the window oldest first. 0 when already below.
    int64_t free_in(int64_t now_ms, int64_t rpm, int64_t tpm) const {
        const int64_t oldest = floor_div(now_ms, kBucketMs) - (kBuckets - 1);
        std::array<Bucket, kBuckets> in{};
        size_t n = 0;
        Usage u;
        {
            std::lock_guard lk(mu_);
            for (const Bucket& b : buckets_)
                if (b.sec >= oldest) {
                    in[n++] = b;
                    u.requests += b.requests;
                    u.tokens += b.tokens;
                }
        }
        std::sort(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(n),
                  [](const Bucket& a, const Bucket& b) { return a.sec < b.sec; });
        auto over = [&] { return (rpm > 0 && u.requests >= rpm) || (tpm > 0 && u.tokens >= tpm); };
        int64_t free_at = now_ms;
        for (size_t i = 0; i < n && over(); ++i) {
            u.requests -= in[i].requests;
            u.tokens -= in[i].tokens;
            free_at = (in[i].sec + kBuckets) * kBucketMs;  // when bucket i leaves the window
        }
        return std::max<int64_t>(0, free_at - now_ms);
    }

private:
    struct Bucket {
        int64_t sec = std::numeric_limits<int64_t>::min();
        int64_t requests = 0;
        int64_t tokens = 0;
    };
    mutable std::mutex mu_;
    std::array<Bucket, kBuckets> buckets_{};
};

using tailgate::plugins::thread_rng;

int64_t limit_of(const tg_deployment* d, bool tpm) {
    if (d == nullptr) return 0;
    if (tpm) return TG_HAS_MEMBER(d, tg_deployment, tpm) && d->tpm > 0 ? d->tpm : 0;
    return TG_HAS_MEMBER(d, tg_deployment, rpm) && d->rpm > 0 ? d->rpm : 0;
}

std::string label(const tg_deployment* d) { return d && d->id ? d->id : "?"; }

// A deployment id as a JSON string's content.
std::string json_escape(const std::string& s) {
    std::string out;
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += ch;
        } else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += ch;
        }
    }
    return out;
}

// Fleet quota leases (tg_host_api.quota_take, 1.3 hosts with a Redis): this
// request's reservations, left in tg_route.request_ctx. route() takes one
// request unit of each limited candidate it keeps; the attempt that starts
// uses it, the rest go back when the request ends.
struct Held {
    std::mutex mu;
    std::vector<uint32_t> reserved;  // deployment indices with a unit taken and no attempt started on it yet
};

struct Keyed {
    Usage use;
    uint64_t tie;
    tg_candidate c;
};

class UsageStrategy final : public Strategy {
public:
    UsageStrategy(Host host, Args args) : host_(host), windows_(host, [] { return std::make_shared<Window>(); }) {
        args.allow_only({});
    }

    // Reload: deployments the previous configuration also had keep their
    // rpm/tpm windows (a reload must not hand out a fresh minute of quota).
    bool adopt_state(Strategy& previous) override {
        windows_.adopt(static_cast<UsageStrategy&>(previous).windows_);
        return true;
    }

    // {"deployments": {"<id>": {"requests": n, "tokens": n}}}: the last 60 s.
    std::string state_json() const override {
        const int64_t now = host_.now_ms();
        std::string out = "{\"window_s\":60,\"deployments\":{";
        bool first = true;
        windows_.for_each([&](uint32_t, const std::string& id, Window& w) {
            if (id.empty()) return;
            const Usage u = w.read(now);
            out += (first ? "\"" : ",\"") + json_escape(id) + "\":{\"requests\":" + std::to_string(u.requests) +
                   ",\"tokens\":" + std::to_string(u.tokens) + "}";
            first = false;
        });
        return out + "}}";
    }

    tg_status route(const tg_request& request, Route& r) override {
        r.clear_plan();
        if (r.size() == 0) return TG_ERR_NO_CANDIDATE;
        const int64_t now = host_.now_ms();
        const bool preview = tailgate::sdk::request_is_preview(request);
        Held* held = static_cast<Held*>(r.context());

        thread_local std::vector<Keyed> keep;
        keep.clear();
        std::string limited;         // "a (rpm 2/2), b (tpm 1500/1000)"
        int64_t soonest_free = -1;   // among the deployments at their limit
        auto& rng = thread_rng();
        for (const tg_candidate& c : r) {
            Window* w = c.deployment ? &windows_.at(*c.deployment) : nullptr;
            const Usage u = w ? w->read(now) : Usage{};
            const int64_t rpm = limit_of(c.deployment, false), tpm = limit_of(c.deployment, true);
            const uint32_t index = c.deployment ? c.deployment->index : 0;
            // A fleet's quota lease answers first (strict, fleet-wide); without
            // one (alone, Redis down, not granted yet) this replica's window does.
            int64_t fleet_free = -1;
            bool fleet_at = false;
            auto quota = [&](uint32_t kind, int64_t amount) {
                int64_t hint = -1;
                const int32_t q = host_.quota_take(index, kind, amount, &hint);
                if (q != TG_QUOTA_NONE && !preview && held == nullptr) {
                    // The host hears what this request uses (observe): keep a context.
                    held = new Held();
                    if (!r.set_context(held)) {  // a host without request contexts (never one with quotas)
                        delete held;
                        held = nullptr;
                    }
                }
                if (q == TG_QUOTA_EXHAUSTED) {
                    fleet_at = true;
                    const int64_t f = hint >= 0 ? hint : 1000;
                    if (fleet_free < 0 || f < fleet_free) fleet_free = f;
                }
                return q;
            };
            bool at_tpm = false, at_rpm = false;
            if (c.deployment && tpm > 0) {
                const int32_t q = quota(TG_QUOTA_TOKENS, 0);
                at_tpm = q == TG_QUOTA_EXHAUSTED || ((q == TG_QUOTA_NONE || q == TG_QUOTA_LOCAL) && u.tokens >= tpm);
            }
            if (c.deployment && rpm > 0 && !at_tpm) {
                const int32_t q = quota(TG_QUOTA_REQUESTS, preview ? 0 : 1);
                at_rpm = q == TG_QUOTA_EXHAUSTED || ((q == TG_QUOTA_NONE || q == TG_QUOTA_LOCAL) && u.requests >= rpm);
                if (q == TG_QUOTA_GRANTED && !preview) {
                    if (held != nullptr) {
                        std::lock_guard lk(held->mu);
                        held->reserved.push_back(index);
                    } else {
                        host_.quota_settle(index, TG_QUOTA_REQUESTS, -1);
                    }
                }
            }
            if (!at_rpm && !at_tpm) {
                keep.push_back(Keyed{u, rng(), c});
                continue;
            }
            limited += (limited.empty() ? "" : ", ") + label(c.deployment) + " (" +
                       (at_rpm ? "rpm " + std::to_string(u.requests) + "/" + std::to_string(rpm) : "") +
                       (at_rpm && at_tpm ? ", " : "") +
                       (at_tpm ? "tpm " + std::to_string(u.tokens) + "/" + std::to_string(tpm) : "") +
                       (fleet_at ? ", fleet allowance spent" : "") + ")";
            const int64_t free = fleet_at ? fleet_free : w->free_in(now, rpm, tpm);
            if (soonest_free < 0 || free < soonest_free) soonest_free = free;
        }

        if (keep.empty()) {
            host_.retry_after(r.raw(), soonest_free);
            host_.note(r.raw(), "usage: every deployment at its limit: " + limited + "; a slot frees in " +
                                    std::to_string(soonest_free) + " ms");
            return TG_ERR_NO_CANDIDATE;
        }
        // Some are still open: the hint matters only if a later strategy refuses them.
        if (soonest_free >= 0) host_.retry_after(r.raw(), soonest_free);

        std::sort(keep.begin(), keep.end(), [](const Keyed& a, const Keyed& b) {
            if (a.use.tokens != b.use.tokens) return a.use.tokens < b.use.tokens;
            if (a.use.requests != b.use.requests) return a.use.requests < b.use.requests;
            return a.tie < b.tie;
        });
        std::stable_partition(keep.begin(), keep.end(), [](const Keyed& k) { return !Route::is_cooling(k.c); });
        tg_route* raw = r.raw();
        raw->count = static_cast<uint32_t>(keep.size());
        for (uint32_t i = 0; i < raw->count; ++i) r[i] = keep[i].c;

        const Keyed& first = keep.front();
        std::string note = "usage: " + label(first.c.deployment) + " (" + std::to_string(first.use.requests) +
                           " req, " + std::to_string(first.use.tokens) + " tok in 60s)";
        if (!limited.empty()) note += "; at limit: " + limited;
        host_.note(raw, note);
        return TG_OK;
    }

    void observe(const tg_event& ev) override {
        count(ev);
        // Quota leases: only the instance that routed the request (it left a
        // context) tells the host, so two instances never count one attempt twice.
        auto* held = static_cast<Held*>(tailgate::sdk::event_context(ev));
        if (held == nullptr || ev.deployment == nullptr || event_is_remote(ev)) return;
        const uint32_t index = ev.deployment->index;
        if (ev.type == TG_EVENT_STARTED && limit_of(ev.deployment, false) > 0) {
            bool reserved = false;
            {
                std::lock_guard lk(held->mu);
                auto it = std::find(held->reserved.begin(), held->reserved.end(), index);
                if (it != held->reserved.end()) {
                    held->reserved.erase(it);
                    reserved = true;
                }
            }
            if (!reserved) host_.quota_settle(index, TG_QUOTA_REQUESTS, 1);  // a retry on it, or counted alone
        } else if ((ev.type == TG_EVENT_SUCCESS || ev.type == TG_EVENT_SHADOW_DONE) && limit_of(ev.deployment, true) > 0) {
            if (const int64_t t = tokens_of(ev); t > 0) host_.quota_settle(index, TG_QUOTA_TOKENS, t);
        }
    }

    // A fleet's other replicas (shared state through Redis): their attempts and
    // tokens count in the same windows, so the ranking (and, while Redis has no
    // answer, the limits) see the fleet's usage within about one sync interval.
    void observe_remote(const tg_event& ev) override { count(ev); }

    // Reservations no attempt used go back into the allowance.
    void release_request(void* ctx) noexcept override {
        auto* held = static_cast<Held*>(ctx);
        if (held == nullptr) return;
        for (const uint32_t index : held->reserved) host_.quota_settle(index, TG_QUOTA_REQUESTS, -1);
        delete held;
    }

private:
    static int64_t tokens_of(const tg_event& ev) {
        const int64_t p = TG_HAS_MEMBER(&ev, tg_event, prompt_tokens) ? ev.prompt_tokens : -1;
        const int64_t c = TG_HAS_MEMBER(&ev, tg_event, completion_tokens) ? ev.completion_tokens : -1;
        if (p < 0 && c < 0) return -1;  // no usage reported
        return std::max<int64_t>(p, 0) + std::max<int64_t>(c, 0);
    }

    void count(const tg_event& ev) {
        if (ev.deployment == nullptr) return;
        const int64_t at = TG_HAS_MEMBER(&ev, tg_event, at_ms) ? ev.at_ms : host_.now_ms();
        if (ev.type == TG_EVENT_STARTED) {
            windows_.at(*ev.deployment).add(at, 1, 0);
            return;
        }
        if (ev.type != TG_EVENT_SUCCESS && ev.type != TG_EVENT_SHADOW_DONE) return;
        if (const int64_t t = tokens_of(ev); t >= 0) windows_.at(*ev.deployment).add(at, 0, t);
    }

    Host host_;
    DeploymentTable<Window> windows_;  // by deployment index, kept by identity across reloads
};

}  // namespace

TAILGATE_STRATEGY(UsageStrategy, "usage")
