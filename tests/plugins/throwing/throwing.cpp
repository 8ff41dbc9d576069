// Test plugin: misbehaves at run time in the way selected by arg `mode`.
//   throw        (default) route() throws std::runtime_error, observe() throws an int;
//                the SDK trampolines turn these into TG_ERR_INTERNAL / nothing.
//   bad-status   route() returns 42, which is not a tg_status.
//   grow-count   route() increases route->count (breaks the contract).
//   bad-attempt  route() plans an attempt for a candidate index >= count.
// Events seen by observe() are counted and logged ("observed N") before throwing.
#include <tailgate/plugin.hpp>

#include <atomic>
#include <stdexcept>
#include <string>

namespace {

class Throwing final : public tailgate::sdk::Strategy {
public:
    Throwing(tailgate::sdk::Host host, tailgate::sdk::Args args) : host_(host), mode_(args.str("mode", "throw")) {
        if (mode_ != "throw" && mode_ != "bad-status" && mode_ != "grow-count" && mode_ != "bad-attempt")
            throw tailgate::sdk::ConfigError("mode: unknown '" + mode_ + "'");
    }
    tg_status route(const tg_request&, tailgate::sdk::Route& r) override {
        if (mode_ == "bad-status") return static_cast<tg_status>(42);
        if (mode_ == "grow-count") {
            r.raw()->count += 1;
            return TG_OK;
        }
        if (mode_ == "bad-attempt") {
            tg_route* raw = r.raw();
            raw->attempts[0] = tg_attempt{raw->count, TG_LAUNCH_AT_START, 0, 0};
            raw->attempt_count = 1;
            return TG_OK;
        }
        throw std::runtime_error("throwing: route() always throws");
    }
    void observe(const tg_event&) override {
        host_.log(TG_LOG_INFO, "observed " + std::to_string(++observed_));
        throw 7;  // not even a std::exception
    }

private:
    tailgate::sdk::Host host_;
    std::string mode_;
    std::atomic<int> observed_{0};
};

}  // namespace

TAILGATE_STRATEGY(Throwing, "throwing")
