// test-reverse: a small, valid strategy for loader, executor and e2e tests.
//
// route(): reverses the candidate order and clears any earlier plan. args:
//   plan: default   (default) leave the plan to the host (candidate 0, then
//                   ON_FAILURE retries down the list)
//   plan: race      every candidate launched AT_START (up to TG_MAX_ATTEMPTS)
//   refuse: true    return TG_ERR_NO_CANDIDATE instead
// create() logs every arg as "arg <key>=<value>" (INFO), so tests can check
// that args arrive; observe() logs "observe <type> <deployment id> attempt=<n>"
// (DEBUG) for each event.
#include <tailgate/plugin.hpp>

#include <algorithm>
#include <string>

namespace {

class TestReverse final : public tailgate::sdk::Strategy {
public:
    TestReverse(tailgate::sdk::Host host, tailgate::sdk::Args args) : host_(host) {
        if (const tg_args* raw = args.raw())
            for (uint32_t i = 0; i < raw->count; ++i)
                host_.log(TG_LOG_INFO, std::string("arg ") + raw->items[i].key + "=" + raw->items[i].value);
        const std::string plan = args.str("plan", "default");
        if (plan == "race")
            race_ = true;
        else if (plan != "default")
            throw tailgate::sdk::ConfigError("plan: expected 'default' or 'race', got '" + plan + "'");
        refuse_ = args.flag("refuse", false);
    }

    tg_status route(const tg_request&, tailgate::sdk::Route& r) override {
        r.clear_plan();
        if (refuse_) return TG_ERR_NO_CANDIDATE;
        std::reverse(r.begin(), r.end());
        if (race_)
            for (uint32_t i = 0; i < r.size() && i < TG_MAX_ATTEMPTS; ++i) r.add_attempt(i, TG_LAUNCH_AT_START);
        host_.note(r.raw(), race_ ? "test-reverse: race" : "test-reverse: reversed");
        return TG_OK;
    }

    void observe(const tg_event& ev) override {
        const char* id = ev.deployment && ev.deployment->id ? ev.deployment->id : "?";
        host_.log(TG_LOG_DEBUG, "observe " + std::to_string(ev.type) + " " + id + " attempt=" +
                                    std::to_string(ev.attempt));
    }

private:
    tailgate::sdk::Host host_;
    bool race_ = false;
    bool refuse_ = false;
};

}  // namespace

TAILGATE_STRATEGY(TestReverse, "test-reverse")
