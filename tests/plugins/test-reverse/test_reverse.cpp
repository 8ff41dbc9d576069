// test-reverse: a small, valid strategy for loader, executor and e2e tests.
//
// route(): reverses the candidate order and clears any earlier plan. args:
//   plan: default   (default) leave the plan to the host (candidate 0, then
//                   ON_FAILURE retries down the list)
//   plan: race      every candidate launched AT_START (up to TG_MAX_ATTEMPTS)
//   refuse: true    return TG_ERR_NO_CANDIDATE instead
//   echo: true      also note what it sees of the request (1.1 fields):
//                   "echo user=<u> max_tokens=<n> flags=<f> prompt_est=<n>
//                   x-tenant=<h> caller=<hash>" ('-' for absent)
// It counts the requests it routed ("routed N" in the note when echo is on);
// adopt_state() takes over the previous instance's count (reload handover).
// create() logs every arg as "arg <key>=<value>" (INFO), so tests can check
// that args arrive; observe() logs "observe <type> <deployment id> attempt=<n>"
// (DEBUG) for each event.
#include <tailgate/plugin.hpp>

#include <algorithm>
#include <atomic>
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
        echo_ = args.flag("echo", false);
    }

    bool adopt_state(tailgate::sdk::Strategy& previous) override {
        routed_ += static_cast<TestReverse&>(previous).routed_.exchange(0);
        return true;
    }

    tg_status route(const tg_request& req, tailgate::sdk::Route& r) override {
        r.clear_plan();
        if (refuse_) return TG_ERR_NO_CANDIDATE;
        std::reverse(r.begin(), r.end());
        if (race_)
            for (uint32_t i = 0; i < r.size() && i < TG_MAX_ATTEMPTS; ++i) r.add_attempt(i, TG_LAUNCH_AT_START);
        host_.note(r.raw(), race_ ? "test-reverse: race" : "test-reverse: reversed");
        const long n = ++routed_;
        if (echo_) host_.note(r.raw(), echo(req) + " routed " + std::to_string(n));
        return TG_OK;
    }

    void observe(const tg_event& ev) override {
        const char* id = ev.deployment && ev.deployment->id ? ev.deployment->id : "?";
        host_.log(TG_LOG_DEBUG, "observe " + std::to_string(ev.type) + " " + id + " attempt=" +
                                    std::to_string(ev.attempt));
    }

private:
    static std::string echo(const tg_request& req) {
        namespace sdk = tailgate::sdk;
        auto text = [](std::optional<std::string_view> v) { return v ? std::string(*v) : std::string("-"); };
        auto num = [](std::optional<int64_t> v) { return v ? std::to_string(*v) : std::string("-"); };
        return "echo user=" + text(sdk::request_user(req)) + " max_tokens=" + num(sdk::request_max_tokens(req)) +
               " flags=" + std::to_string(TG_HAS_MEMBER(&req, tg_request, flags) ? req.flags : 0) +
               " prompt_est=" + num(sdk::request_prompt_tokens_estimate(req)) +
               " x-tenant=" + text(sdk::request_header(req, "x-tenant")) + " caller=" + text(sdk::request_caller(req));
    }

    tailgate::sdk::Host host_;
    bool race_ = false;
    bool refuse_ = false;
    bool echo_ = false;
    std::atomic<long> routed_{0};
};

}  // namespace

TAILGATE_STRATEGY(TestReverse, "test-reverse")
