// race — fan a request out to the top `max_parallel` candidates at once.
//
// Runs after the strategies that order the candidates (health, latency,
// simple-shuffle, ...). Over the candidates the chain hands over:
//  1. The pool: candidates whose stats say TG_HEALTH_COOLING are left out,
//     unless every candidate is cooling (then all are used: refusing is the
//     health strategy's job).
//  2. The first min(max_parallel, pool size) of the pool, in the order the
//     earlier strategies left, launch AT_START together (attempt 0 is the
//     first). The executor commits the first to answer (first content byte of
//     a stream, complete response otherwise) and cancels the others: they are
//     reported as TG_EVENT_CANCELLED, never as failures.
//  3. With `failover: true` the rest of the pool follows as ON_FAILURE
//     attempts without backoff (tried one after another once every racer has
//     failed retryably), up to TG_MAX_ATTEMPTS attempts in all.
// The candidates are reordered so that attempt k runs candidate k (racers,
// then failovers, then the cooling ones left out); an earlier plan is replaced.
//
// args:
//   max_parallel: 2          racers (1..TG_MAX_ATTEMPTS)
//   failover: true           false = race only, no attempt after the racers
//   max_parallel_limit: 16   upper bound for a per-request race.max_parallel
// Per request (extra_body, flattened): race.max_parallel (integer),
// race.enabled or race ("false" = leave this request alone, "true" = race).
// Unknown router.* args are ignored; other unknown args are refused.
#include <tailgate/plugin.hpp>

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

using tailgate::sdk::Args;
using tailgate::sdk::ConfigError;
using tailgate::sdk::Host;
using tailgate::sdk::Route;
using tailgate::sdk::Strategy;

constexpr uint32_t kMaxParallel = TG_MAX_ATTEMPTS;

// Whole number in [lo, hi] ("3", also "3.0" as JSON may render it); nullopt otherwise.
std::optional<uint32_t> parse_count(std::string_view text, uint32_t lo, uint32_t hi) {
    std::string s(text);
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (s.empty() || end == s.c_str() || *end != '\0' || !(d >= lo) || !(d <= hi) ||
        d != static_cast<double>(static_cast<uint32_t>(d)))
        return std::nullopt;
    return static_cast<uint32_t>(d);
}

std::optional<bool> parse_bool(std::string_view v) {
    if (v == "true" || v == "1" || v == "yes") return true;
    if (v == "false" || v == "0" || v == "no") return false;
    return std::nullopt;
}

void append_decimal(std::string& out, uint32_t v) {
    char buf[12];
    auto res = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, static_cast<size_t>(res.ptr - buf));
}

class Race final : public Strategy {
public:
    Race(Host host, Args args) : host_(host) {
        args.allow_only({"max_parallel", "failover", "max_parallel_limit"});
        auto count_arg = [&](const char* key, uint32_t def) {
            auto v = args.get(key);
            if (!v) return def;
            auto n = parse_count(*v, 1, kMaxParallel);
            if (!n)
                throw ConfigError(std::string(key) + ": expected an integer from 1 to " +
                                  std::to_string(kMaxParallel) + ", got '" + std::string(*v) + "'");
            return *n;
        };
        max_parallel_ = count_arg("max_parallel", 2);
        limit_ = count_arg("max_parallel_limit", kMaxParallel);
        if (max_parallel_ > limit_)
            throw ConfigError("max_parallel (" + std::to_string(max_parallel_) + ") exceeds max_parallel_limit (" +
                              std::to_string(limit_) + ")");
        failover_ = args.flag("failover", true);
    }

    tg_status route(const tg_request& req, Route& r) override {
        if (r.size() == 0) return TG_ERR_NO_CANDIDATE;

        // Per-request switches; invalid values are ignored and noted.
        uint32_t want = max_parallel_;
        std::string_view bad[2];
        uint32_t nbad = 0;
        const char* enabled_key = "race.enabled";
        auto enabled_text = tailgate::sdk::request_override(req, enabled_key);
        if (!enabled_text) enabled_text = tailgate::sdk::request_override(req, enabled_key = "race");
        if (enabled_text) {
            auto enabled = parse_bool(*enabled_text);
            if (!enabled) bad[nbad++] = enabled_key;
            else if (!*enabled) {
                host_.note(r.raw(), "race off (request)");
                return TG_OK;  // the plan stays whatever the chain made so far
            }
        }
        if (auto v = tailgate::sdk::request_override(req, "race.max_parallel")) {
            if (auto n = parse_count(*v, 1, limit_)) want = *n;
            else bad[nbad++] = "race.max_parallel";
        }

        // Pool: everything not cooling (all, if everything is cooling), racers first.
        const uint32_t n = r.size();
        const uint32_t warm = r.cooling_last();
        const uint32_t pool = warm > 0 ? warm : n;
        const uint32_t racers = want < pool ? want : pool;

        r.clear_plan();
        for (uint32_t i = 0; i < racers; ++i) r.add_attempt(i, TG_LAUNCH_AT_START);
        uint32_t failovers = 0;
        if (failover_)
            for (uint32_t i = racers; i < pool && r.attempt_count() < TG_MAX_ATTEMPTS; ++i, ++failovers)
                r.add_attempt(i, TG_LAUNCH_ON_FAILURE);

        thread_local std::string note;
        note.assign("race x");
        append_decimal(note, racers);
        if (failovers > 0) {
            note += " (+";
            append_decimal(note, failovers);
            note += " failover)";
        }
        for (uint32_t i = 0; i < nbad; ++i) {
            note += i == 0 ? "; ignored invalid " : ", ";
            note += bad[i];
        }
        host_.note(r.raw(), note);
        return TG_OK;
    }

private:
    Host host_;
    uint32_t max_parallel_ = 2;
    uint32_t limit_ = kMaxParallel;
    bool failover_ = true;
};

}  // namespace

TAILGATE_STRATEGY(Race, "race")
