// sticky-user's own tests, run against the built .so through the SDK's loader
// harness (tailgate::sdk::testing::LoadedPlugin), exactly as the host drives it.
#include <tailgate/testing.hpp>

#include <cstdio>
#include <map>
#include <set>
#include <string>

using namespace tailgate::sdk::testing;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            std::fprintf(stderr, "check failed: %s (line %d)\n", #cond, __LINE__); \
            return 1;                                                            \
        }                                                                        \
    } while (0)

// The deployment `user` lands on.
static std::string pick(LoadedPlugin& p, Deployments& d, FakeHost& host, const std::string& user) {
    Request req;
    req.user(user);
    auto res = p.route(req.raw, d.route(&host));
    if (res.status != TG_OK || !res.error.empty()) return "error: " + res.error;
    return d.order().front();
}

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    LoadedPlugin p(argv[1]);
    CHECK(p.name() == "sticky-user");
    FakeHost host;

    Args bad{{"key", "cookie"}};
    CHECK(p.create(host.api(), bad.raw()).find("key: expected") != std::string::npos);
    Args unknown{{"keyy", "user"}};
    CHECK(p.create(host.api(), unknown.raw()).find("unknown arg 'keyy'") != std::string::npos);
    Args args;
    CHECK(p.create(host.api(), args.raw()) == "");

    Deployments d;
    for (const char* id : {"d0", "d1", "d2", "d3"}) d.add(id);

    // Same user, same deployment, every time; users spread over deployments.
    std::map<std::string, std::string> first;
    std::set<std::string> used;
    for (int u = 0; u < 200; ++u) {
        const std::string user = "user-" + std::to_string(u);
        first[user] = pick(p, d, host, user);
        CHECK(first[user].rfind("d", 0) == 0);
        CHECK(pick(p, d, host, user) == first[user]);
        used.insert(first[user]);
    }
    CHECK(used.size() == 4);

    // No user: the order is left alone.
    Request anon;
    CHECK(p.route(anon.raw, d.route(&host)).status == TG_OK);
    CHECK(d.order() == (std::vector<std::string>{"d0", "d1", "d2", "d3"}));

    // A cooling winner is skipped; its users come back once it recovers.
    std::string victim = first["user-1"];
    uint32_t vi = static_cast<uint32_t>(victim[1] - '0');
    d.stats(vi).health = TG_HEALTH_COOLING;
    CHECK(pick(p, d, host, "user-1") != victim);
    d.stats(vi).health = TG_HEALTH_HEALTHY;
    CHECK(pick(p, d, host, "user-1") == victim);

    // Removing a deployment moves only its own users (rendezvous property).
    Deployments three;
    for (const char* id : {"d0", "d1", "d2"}) three.add(id);
    int moved = 0;
    for (const auto& [user, dep] : first) {
        const std::string now = pick(p, three, host, user);
        if (dep != "d3") CHECK(now == dep);
        moved += now != dep;
    }
    CHECK(moved > 0 && moved < 100);
    std::puts("sticky-user: all checks passed");
    return 0;
}
