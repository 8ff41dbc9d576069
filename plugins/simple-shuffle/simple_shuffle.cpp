// simple-shuffle — weighted random choice among the candidates, the way
// LiteLLM's default `simple-shuffle` routing strategy chooses a deployment.
//
// Per request, over the candidates the chain hands over:
//  1. Candidates whose stats say TG_HEALTH_COOLING are dropped, unless that
//     would drop all of them (then all are kept: refusing is the health
//     strategy's job, not this one's).
//  2. The weight source is chosen from the remaining candidates, as LiteLLM
//     does: `weight` if any candidate has weight > 0, else `rpm` if any has
//     rpm > 0, else `tpm` if any has tpm > 0, else all equal.
//     A candidate lacking the chosen field (0 / unset) gets weight 0, as in
//     LiteLLM: it is never picked first while a weighted one is available,
//     but it still follows them in the order, so retries can reach it.
//  3. The candidates are reordered into a weighted random order without
//     replacement: candidate i comes first with probability w_i / sum(w),
//     the next is drawn the same way among the rest, and so on. The host's
//     default plan (candidate 0, then ON_FAILURE retries down the list) thus
//     retries elsewhere, again by weight.
// It never writes attempts; a plan set by an earlier strategy is cleared,
// since its candidate indices no longer name the same deployments.
//
// args:
//   seed: <unsigned integer>   deterministic sequence (tests); without it every
//                              host thread uses its own randomly seeded engine.
#include <tailgate/plugin.hpp>

#include "thread_rng.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using tailgate::sdk::Args;
using tailgate::sdk::ConfigError;
using tailgate::sdk::Host;
using tailgate::sdk::Route;
using tailgate::sdk::Strategy;

enum class Source { Weight, Rpm, Tpm, Uniform };

const char* source_name(Source s) {
    switch (s) {
        case Source::Weight: return "weight";
        case Source::Rpm: return "rpm";
        case Source::Tpm: return "tpm";
        case Source::Uniform: return "uniform";
    }
    return "?";
}

double weight_of(const tg_candidate& c, Source s) {
    const tg_deployment* d = c.deployment;
    if (d == nullptr) return 0;
    switch (s) {
        case Source::Weight:
            return TG_HAS_MEMBER(d, tg_deployment, weight) && d->weight > 0 && std::isfinite(d->weight)
                       ? d->weight
                       : 0;
        case Source::Rpm:
            return TG_HAS_MEMBER(d, tg_deployment, rpm) && d->rpm > 0 ? static_cast<double>(d->rpm) : 0;
        case Source::Tpm:
            return TG_HAS_MEMBER(d, tg_deployment, tpm) && d->tpm > 0 ? static_cast<double>(d->tpm) : 0;
        case Source::Uniform:
            return 1;
    }
    return 0;
}

// Uniform double in [0, 1) from the top 53 bits (same on every standard library).
using tailgate::plugins::thread_rng;
using tailgate::plugins::unit;

struct Keyed {
    int group;   // 0: weight > 0, 1: weight 0 (after all weighted ones)
    double key;  // ascending = earlier
    tg_candidate c;
};

class SimpleShuffle final : public Strategy {
public:
    SimpleShuffle(Host host, Args args) : host_(host) {
        args.allow_only({"seed"});
        if (auto s = args.get("seed")) {
            std::string text(*s);
            char* end = nullptr;
            errno = 0;
            unsigned long long v = std::strtoull(text.c_str(), &end, 10);
            if (text.empty() || text[0] == '-' || end == text.c_str() || *end != '\0' || errno == ERANGE)
                throw ConfigError("seed: expected a non-negative integer, got '" + text + "'");
            seeded_ = true;
            seeded_rng_.seed(static_cast<uint64_t>(v));
        }
    }

    tg_status route(const tg_request&, Route& r) override {
        r.clear_plan();
        if (r.size() == 0) return TG_ERR_NO_CANDIDATE;

        // 1. Skip cooling candidates while others remain.
        uint32_t warm = 0;
        for (const auto& c : r) warm += Route::is_cooling(c) ? 0 : 1;
        if (warm > 0 && warm < r.size()) r.filter([](const tg_candidate& c) { return !Route::is_cooling(c); });

        // 2. Weight source, chosen over this request's candidates.
        Source src = Source::Uniform;
        for (Source s : {Source::Weight, Source::Rpm, Source::Tpm}) {
            bool any = false;
            for (const auto& c : r) any = any || weight_of(c, s) > 0;
            if (any) {
                src = s;
                break;
            }
        }

        // 3. Weighted order without replacement: key_i = Exp(1) / w_i, ascending
        //    (the minimum of independent Exp(w_i) is i with probability w_i/sum).
        if (r.size() > 1) {
            if (seeded_) {
                std::lock_guard<std::mutex> lock(mu_);
                shuffle(r, src, seeded_rng_);
            } else {
                shuffle(r, src, thread_rng());
            }
        }

        const tg_deployment* first = r[0].deployment;
        if (first != nullptr && first->id != nullptr)
            host_.note(r.raw(), std::string("simple-shuffle: ") + first->id + " by " + source_name(src));
        return TG_OK;
    }

private:
    static void shuffle(Route& r, Source src, std::mt19937_64& rng) {
        thread_local std::vector<Keyed> items;
        items.clear();
        for (const auto& c : r) {
            const double w = weight_of(c, src);
            const double u = unit(rng);
            if (w > 0)
                items.push_back(Keyed{0, -std::log1p(-u) / w, c});
            else
                items.push_back(Keyed{1, u, c});
        }
        std::sort(items.begin(), items.end(), [](const Keyed& a, const Keyed& b) {
            return a.group != b.group ? a.group < b.group : a.key < b.key;
        });
        for (uint32_t i = 0; i < r.size(); ++i) r[i] = items[i].c;
    }

    Host host_;
    bool seeded_ = false;
    std::mutex mu_;
    std::mt19937_64 seeded_rng_;
};

}  // namespace

TAILGATE_STRATEGY(SimpleShuffle, "simple-shuffle")
