// plan-then-fail: rewrites the plan through the SDK (clear_plan, add_attempt),
// drops the last candidate, sets a request context, then throws. The host must
// put back the whole route as the previous strategy left it (a race plan stays
// a race plan), log the exception's text, and still release the context.
// observe() logs "plan-then-fail ctx=<n>" with the context it gets back;
// release_request() logs "plan-then-fail released <n>".
#include <tailgate/plugin.hpp>

#include <atomic>
#include <stdexcept>
#include <string>

namespace {

class PlanThenFail final : public tailgate::sdk::Strategy {
public:
    PlanThenFail(tailgate::sdk::Host host, tailgate::sdk::Args) : host_(host) {}

    tg_status route(const tg_request&, tailgate::sdk::Route& r) override {
        if (r.context() == nullptr) r.set_context(new int(++requests_));
        r.clear_plan();
        r.add_attempt(0, TG_LAUNCH_ON_FAILURE, 5000);
        r.raw()->count -= r.size() > 1 ? 1 : 0;
        throw std::runtime_error("plan-then-fail: gave up after rewriting the plan");
    }
    void observe(const tg_event& ev) override {
        const int* ctx = static_cast<const int*>(tailgate::sdk::event_context(ev));
        host_.log(TG_LOG_INFO, "plan-then-fail ctx=" + (ctx ? std::to_string(*ctx) : std::string("none")));
    }
    void release_request(void* ctx) noexcept override {
        int* n = static_cast<int*>(ctx);
        host_.log(TG_LOG_INFO, "plan-then-fail released " + std::to_string(*n));
        delete n;
    }

private:
    tailgate::sdk::Host host_;
    std::atomic<int> requests_{0};
};

}  // namespace

TAILGATE_STRATEGY(PlanThenFail, "plan-then-fail")
