// Test plugin: a valid strategy, but installed as wrong-name.so while it calls
// itself "right-name"; the host must refuse the mismatch.
#include <tailgate/plugin.hpp>

namespace {
class RightName final : public tailgate::sdk::Strategy {
public:
    RightName(tailgate::sdk::Host, tailgate::sdk::Args) {}
    tg_status route(const tg_request&, tailgate::sdk::Route&) override { return TG_OK; }
};
}  // namespace

TAILGATE_STRATEGY(RightName, "right-name")
