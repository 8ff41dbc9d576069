// budget-aware — example third-party strategy: small requests go to the
// cheapest deployment, the rest keep the order the chain gave them.
//
// A request is "small" when it asks for at most `small_max_tokens` completion
// tokens (max_completion_tokens / max_tokens). Small requests get the
// candidates sorted by price (input + output cost per token, unknown prices
// last, ties in the previous order). Requests without a limit are not small:
// nothing bounds what they will spend.
//
// Shows the two 1.1 facilities a stateful strategy needs:
//  - plugin metrics: tailgate_plugin_budget_aware_routed_total{size="small|large"}
//    and tailgate_plugin_budget_aware_completion_tokens_total{size=...};
//  - a per-request context: route() remembers the request's class, observe()
//    gets it back with the SUCCESS event and counts the tokens actually spent
//    under it, release_request() frees it. No map keyed by request id.
//
//   router_settings:
//     strategies:
//       - latency-based-routing
//       - name: budget-aware
//         args: {small_max_tokens: 256}
#include <tailgate/plugin.hpp>

#include <algorithm>
#include <string>
#include <vector>

namespace {

class BudgetAware final : public tailgate::sdk::Strategy {
public:
    BudgetAware(tailgate::sdk::Host host, tailgate::sdk::Args args) : host_(host) {
        args.allow_only({"small_max_tokens"});
        small_ = static_cast<int64_t>(args.num("small_max_tokens", 256));
        if (small_ < 0) throw tailgate::sdk::ConfigError("small_max_tokens: must be >= 0");
        routed_ = host_.counter("routed", "Requests routed, by size class", "size", {"small", "large"});
        tokens_ = host_.counter("completion_tokens", "Completion tokens of successful attempts, by size class",
                                "size", {"small", "large"});
    }

    tg_status route(const tg_request& req, tailgate::sdk::Route& r) override {
        const auto max_tokens = tailgate::sdk::request_max_tokens(req);
        const bool small = max_tokens && *max_tokens <= small_;
        // Fallback groups route again: the context set then is handed back here.
        if (r.context() == nullptr) {
            auto* ctx = new Ctx{small};
            if (!r.set_context(ctx)) delete ctx;  // an older host: no context, no metric of spend
            host_.metric(routed_, 1, small ? kSmall : kLarge);
        }
        if (!small) return TG_OK;
        std::stable_sort(r.begin(), r.end(), [](const tg_candidate& a, const tg_candidate& b) {
            return price(a) < price(b);
        });
        r.clear_plan();  // positions moved: let the host plan over the new order
        host_.note(r.raw(), "budget-aware: cheapest first (max_tokens " + std::to_string(*max_tokens) + ")");
        return TG_OK;
    }

    void observe(const tg_event& ev) override {
        const auto* ctx = static_cast<const Ctx*>(tailgate::sdk::event_context(ev));
        if (ctx == nullptr || ev.type != TG_EVENT_SUCCESS || ev.completion_tokens < 0) return;
        host_.metric(tokens_, static_cast<double>(ev.completion_tokens), ctx->small ? kSmall : kLarge);
    }

    void release_request(void* ctx) noexcept override { delete static_cast<Ctx*>(ctx); }

private:
    struct Ctx {
        bool small;
    };
    static constexpr uint32_t kSmall = 0, kLarge = 1;  // label positions

    static double price(const tg_candidate& c) {
        const tg_deployment* d = c.deployment;
        if (d->input_cost_per_token < 0 || d->output_cost_per_token < 0) return 1e300;  // unknown: last
        return d->input_cost_per_token + d->output_cost_per_token;
    }

    tailgate::sdk::Host host_;
    int64_t small_ = 256;
    int32_t routed_ = -1;
    int32_t tokens_ = -1;
};

}  // namespace

TAILGATE_STRATEGY(BudgetAware, "budget-aware")
