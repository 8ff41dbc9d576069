// sticky-user — example third-party strategy: every request of one user goes to
// the same deployment (prompt caches stay warm, a user's conversation stays on
// one provider), without a table of users.
//
// Rendezvous (highest-random-weight) hashing: each candidate scores
// hash(user, deployment id) and the highest score goes first; the others keep
// their order behind it (failover). Adding or removing a deployment moves only
// the users whose winner changed — about 1/n of them. Cooling deployments are
// skipped while any other is left, so a user moves away during a cooldown and
// comes back after it.
//
//   router_settings:
//     strategy_request_headers: [x-session-id]   # only for key: header
//     strategies:
//       - name: sticky-user
//         args: {key: user}          # user (default) | caller | header:<name>
//
// Requests without the key are left as the previous strategy ordered them.
#include <tailgate/plugin.hpp>

#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

// FNV-1a over both strings, finished with a 64-bit mixer (splitmix64): stable
// across builds and platforms, which std::hash is not.
uint64_t score(std::string_view key, std::string_view deployment) {
    uint64_t h = 14695981039346656037ull;
    auto feed = [&h](std::string_view s) {
        for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    };
    feed(key);
    feed(std::string_view("\0", 1));
    feed(deployment);
    h += 0x9e3779b97f4a7c15ull;
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

class StickyUser final : public tailgate::sdk::Strategy {
public:
    StickyUser(tailgate::sdk::Host host, tailgate::sdk::Args args) : host_(host) {
        args.allow_only({"key"});
        const std::string key = args.str("key", "user");
        if (key == "user") {
            source_ = Source::User;
        } else if (key == "caller") {
            source_ = Source::Caller;
        } else if (key.rfind("header:", 0) == 0 && key.size() > 7) {
            source_ = Source::Header;
            header_ = key.substr(7);
            for (char& c : header_) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        } else {
            throw tailgate::sdk::ConfigError("key: expected user, caller or header:<name>, got '" + key + "'");
        }
    }

    tg_status route(const tg_request& req, tailgate::sdk::Route& r) override {
        const auto key = key_of(req);
        if (!key || key->empty() || r.size() == 0) return TG_OK;
        const bool any_warm = r.cooling_last() > 0;
        uint32_t best = r.size();
        uint64_t best_score = 0;
        for (uint32_t i = 0; i < r.size(); ++i) {
            if (any_warm && tailgate::sdk::Route::is_cooling(r[i])) continue;
            const uint64_t s = score(*key, r[i].deployment->id ? r[i].deployment->id : "");
            if (best == r.size() || s > best_score) best = i, best_score = s;
        }
        r.move_to_front(best);
        r.clear_plan();  // positions moved: let the host plan over the new order
        if (host_.log_enabled(TG_LOG_DEBUG))
            host_.log(TG_LOG_DEBUG, "sticky-user: pinned to " + std::string(r[0].deployment->id));
        host_.note(r.raw(), "sticky-user: " + std::string(r[0].deployment->id));
        return TG_OK;
    }

private:
    enum class Source { User, Caller, Header };
    std::optional<std::string_view> key_of(const tg_request& req) const {
        switch (source_) {
            case Source::User: return tailgate::sdk::request_user(req);
            case Source::Caller: return tailgate::sdk::request_caller(req);
            default: return tailgate::sdk::request_header(req, header_);
        }
    }

    tailgate::sdk::Host host_;
    Source source_ = Source::User;
    std::string header_;
};

}  // namespace

TAILGATE_STRATEGY(StickyUser, "sticky-user")
