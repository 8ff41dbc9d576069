// prefer-provider — example third-party strategy.
//
// Moves the candidates whose provider equals arg `provider` to the front,
// keeping the relative order of both groups (so it composes with a strategy
// that ran before it, e.g. simple-shuffle or latency). With `only: true` the
// others are dropped instead, unless none match.
//
//   router_settings:
//     strategies:
//       - name: prefer-provider
//         args: {provider: groq, only: false}
#include <tailgate/plugin.hpp>

#include <string>
#include <vector>

namespace {

class PreferProvider final : public tailgate::sdk::Strategy {
public:
    PreferProvider(tailgate::sdk::Host host, tailgate::sdk::Args args)
        : host_(host), provider_(args.str("provider", "")), only_(args.flag("only", false)) {
        if (provider_.empty()) throw tailgate::sdk::ConfigError("provider: required (e.g. provider: openai)");
    }

    tg_status route(const tg_request&, tailgate::sdk::Route& r) override {
        std::vector<tg_candidate> preferred, others;
        for (const tg_candidate& c : r) (matches(c) ? preferred : others).push_back(c);
        if (preferred.empty()) return TG_OK;  // nothing to prefer: leave the order alone

        if (only_) {
            r.filter([this](const tg_candidate& c) { return matches(c); });
        } else {
            uint32_t i = 0;
            for (const tg_candidate& c : preferred) r[i++] = c;
            for (const tg_candidate& c : others) r[i++] = c;
            r.clear_plan();  // candidate indices changed meaning
        }
        host_.note(r.raw(), "prefer-provider: " + provider_);
        return TG_OK;
    }

private:
    bool matches(const tg_candidate& c) const {
        return c.deployment != nullptr && c.deployment->provider != nullptr && provider_ == c.deployment->provider;
    }

    tailgate::sdk::Host host_;
    std::string provider_;
    bool only_;
};

}  // namespace

TAILGATE_STRATEGY(PreferProvider, "prefer-provider")
