// route() cost per request: builds a Router from a small config with real
// plugins and times Router::route in a loop (no test framework, no I/O).
//
//   tailgate-route-bench <plugin dir> [iterations] [chain]
//     chain: comma-separated strategies (default "simple-shuffle")
//
// Prints ns/route (best of 5 runs, to shrug off a busy machine). The request
// carries the issue-17 fields (user, max_tokens, one header) when the build
// has them, so the before/after comparison includes their cost.
#include "config/config.hpp"
#include "plugin/loader.hpp"
#include "router/router.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

using namespace tailgate;

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s <plugin dir> [iterations] [chain]\n", argv[0]);
        return 2;
    }
    const long iterations = argc > 2 ? std::atol(argv[2]) : 200000;
    std::string chain = argc > 3 ? argv[3] : "simple-shuffle";
    std::string yaml = "model_list:\n";
    for (int i = 0; i < 4; ++i)
        yaml += "  - model_name: chat\n    litellm_params: {model: openai/m" + std::to_string(i) +
                ", api_base: \"http://127.0.0.1:1/v1\"}\n    model_info: {id: d" + std::to_string(i) + "}\n";
    yaml += "router_settings:\n  num_retries: 2\n  strategies: [" + chain + "]\n";
    auto cfg = std::make_shared<const config::Config>(config::load_string(yaml, "bench.yaml"));
    plugin::Registry registry({argv[1]});
    router::Router router(cfg, registry);

    router::RequestInfo req;
    req.request_id = "bench-request-0001";
    req.model_group = "chat";
#ifdef TAILGATE_BENCH_REQUEST_FIELDS
    req.user = "user-42";
    req.max_tokens = 256;
    req.prompt_tokens_estimate = 120;
    req.headers = {{"x-tenant", "blue"}};
    req.caller_key_hash = "0123456789abcdef";
#endif
    double best = 1e300;
    for (int run = 0; run < 5; ++run) {
        const auto t0 = std::chrono::steady_clock::now();
        for (long i = 0; i < iterations; ++i) {
            auto r = router.route(req);
            if (r.index() != 0) return 1;
        }
        const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
        best = std::min(best, ns / static_cast<double>(iterations));
    }
    std::printf("%s: %.0f ns/route (best of 5 x %ld)\n", chain.c_str(), best, iterations);
    return 0;
}
