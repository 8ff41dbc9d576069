// budget-aware's own tests, run against the built .so through the SDK's loader
// harness (tailgate::sdk::testing::LoadedPlugin), exactly as the host drives it.
#include <tailgate/testing.hpp>

#include <cstdio>
#include <string>

using namespace tailgate::sdk::testing;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            std::fprintf(stderr, "check failed: %s (line %d)\n", #cond, __LINE__); \
            return 1;                                                            \
        }                                                                        \
    } while (0)

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    LoadedPlugin p(argv[1]);
    CHECK(p.name() == "budget-aware");
    FakeHost host;
    Args bad{{"small_max_tokens", "-1"}};
    CHECK(p.create(host.api(), bad.raw()).find("small_max_tokens") != std::string::npos);
    Args args{{"small_max_tokens", "100"}};
    CHECK(p.create(host.api(), args.raw()) == "");

    Deployments d;
    tg_deployment& pricey = d.add("pricey");
    pricey.input_cost_per_token = 10e-6, pricey.output_cost_per_token = 30e-6;
    d.add("unknown");  // no price: last
    tg_deployment& cheap = d.add("cheap");
    cheap.input_cost_per_token = 0.1e-6, cheap.output_cost_per_token = 0.4e-6;

    // Small request: cheapest first, unknown price last; a context is left.
    Request small;
    small.max_tokens(50);
    auto res = p.route(small.raw, d.route(&host));
    CHECK(res.status == TG_OK && res.error.empty());
    CHECK(d.order() == (std::vector<std::string>{"cheap", "pricey", "unknown"}));
    CHECK(res.request_ctx != nullptr);
    CHECK(host.notes().back() == "budget-aware: cheapest first (max_tokens 50)");

    // Its SUCCESS event comes back with the context; then the host releases it.
    Event ok(TG_EVENT_SUCCESS, &d.deployment(2));
    ok.tokens(12, 40).context(res.request_ctx);
    p.observe(ok.raw);
    p.release(res.request_ctx);
    CHECK(host.metric("routed", 0) == 1);              // size="small"
    CHECK(host.metric("completion_tokens", 0) == 40);  // spent under "small"

    // Large or unbounded requests keep the chain's order.
    for (int64_t max_tokens : {int64_t(1000), int64_t(-1)}) {
        Request big;
        big.max_tokens(max_tokens);
        auto r2 = p.route(big.raw, d.route(&host));
        CHECK(r2.status == TG_OK);
        CHECK(d.order() == (std::vector<std::string>{"pricey", "unknown", "cheap"}));
        p.release(r2.request_ctx);
    }
    CHECK(host.metric("routed", 1) == 2);  // size="large"

    // A second route() of the same request (a fallback group) reuses its context.
    tg_route& again = d.route(&host);
    int marker = 0;
    again.request_ctx = &marker;
    auto r3 = p.route(small.raw, again);
    CHECK(r3.request_ctx == &marker);
    std::puts("budget-aware: all checks passed");
    return 0;
}
