// swap: a strategy built twice (see CMakeLists.txt). The "first" build leaves the
// candidates in config order (the host then sends to the first deployment); the
// "last" build (SWAP_PICK_LAST) reverses them. Which one runs tells a test which
// library the host has loaded.
#include <tailgate/plugin.hpp>

#include <algorithm>

namespace {

class Swap final : public tailgate::sdk::Strategy {
public:
    Swap(tailgate::sdk::Host, tailgate::sdk::Args) {}

    tg_status route(const tg_request&, tailgate::sdk::Route& r) override {
        r.clear_plan();
#ifdef SWAP_PICK_LAST
        std::reverse(r.begin(), r.end());
#endif
        return TG_OK;
    }

    void observe(const tg_event&) override {}
};

}  // namespace

TAILGATE_STRATEGY(Swap, "swap")
