// least-busy — fewest in-flight attempts first, the way LiteLLM's `least-busy`
// routing strategy picks the deployment with the fewest ongoing requests.
//
// Per request, over the candidates the chain hands over: ordered by the host's
// in_flight count (tg_deployment_stats, attempts launched and not yet ended),
// lowest first; equal counts in random order, so idle or equally loaded
// deployments share the load instead of the first one taking it all. Cooling
// candidates go last (matters only in chains without health). The host's
// default plan then starts on the least busy and retries down the list.
//
// The counts are a snapshot taken when the request is routed: requests routed
// at the same instant see the same counts (the random tie-break spreads them).
//
// It never writes attempts; an earlier plan is cleared (positions changed).
//
// args: none (router.* settings are accepted and ignored).
#include <tailgate/plugin.hpp>

#include "thread_rng.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using tailgate::sdk::Args;
using tailgate::sdk::Host;
using tailgate::sdk::Route;
using tailgate::sdk::Strategy;

using tailgate::plugins::thread_rng;

uint32_t in_flight(const tg_candidate& c) {
    const tg_deployment_stats* s = c.stats;
    return s != nullptr && TG_HAS_MEMBER(s, tg_deployment_stats, in_flight) ? s->in_flight : 0;
}

struct Keyed {
    uint32_t busy;
    uint64_t tie;
    tg_candidate c;
};

class LeastBusy final : public Strategy {
public:
    LeastBusy(Host host, Args args) : host_(host) {
        args.allow_only({});
    }

    tg_status route(const tg_request&, Route& r) override {
        r.clear_plan();
        if (r.size() == 0) return TG_ERR_NO_CANDIDATE;
        thread_local std::vector<Keyed> items;
        items.clear();
        auto& rng = thread_rng();
        for (const tg_candidate& c : r) items.push_back(Keyed{in_flight(c), rng(), c});
        std::sort(items.begin(), items.end(), [](const Keyed& a, const Keyed& b) {
            return a.busy != b.busy ? a.busy < b.busy : a.tie < b.tie;
        });
        for (uint32_t i = 0; i < r.size(); ++i) r[i] = items[i].c;
        r.cooling_last();
        const tg_deployment* first = r[0].deployment;
        if (first != nullptr && first->id != nullptr)
            host_.note(r.raw(), std::string("least-busy: ") + first->id + " (" + std::to_string(in_flight(r[0])) +
                                    " in flight)");
        return TG_OK;
    }

private:
    Host host_;
};

}  // namespace

TAILGATE_STRATEGY(LeastBusy, "least-busy")
