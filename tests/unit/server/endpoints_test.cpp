// The endpoint table and the pure steps of dispatching to it (server/endpoints.hpp):
// the real rows of gateway.cpp, looked up as a request would be.
#include "server/endpoints.hpp"
#include "providers/operations.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace tailgate;
using namespace tailgate::server;

namespace {

RouteMatch lookup(std::string_view method, std::string_view uri, bool metrics_on = true) {
    return find_route(endpoint_routes(), method, route_path(uri), metrics_on);
}

}  // namespace

TEST(EndpointTable, ApiRoutesNameTheirEndpointUnderBothPrefixes) {
    struct Case {
        const char* uri;
        Endpoint api;
    } cases[] = {{"/chat/completions", Endpoint::Chat},  {"/v1/chat/completions", Endpoint::Chat},
                 {"/completions", Endpoint::Completions}, {"/v1/completions/", Endpoint::Completions},
                 {"/embeddings", Endpoint::Embeddings},   {"/v1/embeddings?x=1", Endpoint::Embeddings}};
    for (const auto& c : cases) {
        const RouteMatch m = lookup("POST", c.uri);
        ASSERT_NE(m.route, nullptr) << c.uri;
        EXPECT_EQ(m.route->api, c.api) << c.uri;
        EXPECT_EQ(m.route->access, Access::Key) << c.uri;
        EXPECT_TRUE(m.allowed.empty());
    }
    // Chat and the other API routes share one handler; the row's api tells them apart.
    EXPECT_EQ(lookup("POST", "/chat/completions").route->handler, lookup("POST", "/embeddings").route->handler);
}

// Every pass-through operation (providers/operations.hpp) has its row, under /v1 too, behind the key.
TEST(EndpointTable, PassThroughOperationsHaveTheirRoutes) {
    for (const auto& op : providers::operations()) {
        if (!op.pass_through()) continue;
        for (const std::string& uri : {std::string(op.path), "/v1" + std::string(op.path)}) {
            const RouteMatch m = lookup("POST", uri);
            ASSERT_NE(m.route, nullptr) << uri;
            EXPECT_EQ(m.route->api, op.op) << uri;
            EXPECT_EQ(m.route->access, Access::Key) << uri;
            EXPECT_EQ(m.route->handler, lookup("POST", "/v1/chat/completions").route->handler) << uri;
            EXPECT_FALSE(lookup("GET", uri).allowed.empty()) << uri;  // 405, not 404
        }
    }
    // Azure's client paths for images and audio, the group in the path.
    const RouteMatch az = lookup("POST", "/openai/deployments/tts/audio/speech?api-version=2025-03-01-preview");
    ASSERT_NE(az.route, nullptr);
    EXPECT_EQ(az.route->api, Endpoint::AudioSpeech);
    EXPECT_EQ(az.arg, "tts");
}

TEST(EndpointTable, ProbesAreOpenAndOnlyAtTheRoot) {
    for (const char* uri : {"/health", "/health/liveliness", "/health/liveness", "/health/readiness"}) {
        const RouteMatch m = lookup("GET", uri);
        ASSERT_NE(m.route, nullptr) << uri;
        EXPECT_EQ(m.route->access, Access::Open) << uri;
    }
    EXPECT_EQ(lookup("GET", "/v1/health").route, nullptr);  // LiteLLM has no /v1 probes either
    EXPECT_NE(lookup("GET", "/health").route->handler, lookup("GET", "/health/liveness").route->handler);
}

TEST(EndpointTable, ObservabilityPagesExistOnlyWithMetrics) {
    // /metrics: key with metrics_auth; /stats/*: key whenever one is set; /ui: a login page.
    const std::pair<const char*, Access> pages[] = {
        {"/metrics", Access::Observability}, {"/stats/strategies", Access::Dashboard}, {"/ui", Access::Open}};
    for (const auto& [uri, access] : pages) {
        const RouteMatch on = lookup("GET", uri, true);
        ASSERT_NE(on.route, nullptr) << uri;
        EXPECT_EQ(on.route->access, access) << uri;
        const RouteMatch off = lookup("GET", uri, false);
        EXPECT_EQ(off.route, nullptr) << uri;
        EXPECT_TRUE(off.allowed.empty()) << "an unknown path, not a wrong method";
    }
}

TEST(EndpointTable, AdminRoutesAlwaysNeedTheKey) {
    const RouteMatch drain = lookup("POST", "/admin/deployments/a1/drain");
    ASSERT_NE(drain.route, nullptr);
    EXPECT_EQ(drain.route->access, Access::Admin);
    EXPECT_EQ(drain.arg, "a1/drain");
    EXPECT_NE(drain.route->admin, nullptr);
    EXPECT_TRUE(needs_key(Access::Admin, false));
    EXPECT_NE(lookup("GET", "/v1/model/info").route, nullptr);
}

TEST(EndpointTable, ModelRoutesCaptureTheName) {
    const RouteMatch list = lookup("GET", "/v1/models");
    ASSERT_NE(list.route, nullptr);
    EXPECT_TRUE(list.arg.empty());
    const RouteMatch one = lookup("GET", "/v1/models/openai/gpt-4o");
    ASSERT_NE(one.route, nullptr);
    EXPECT_EQ(one.arg, "openai/gpt-4o");
    EXPECT_NE(one.route->handler, list.route->handler);
    EXPECT_EQ(lookup("GET", "/models/").route, list.route) << "a trailing '/' is the list, not an empty name";
}

TEST(EndpointTable, WrongMethodIs405WithAllow) {
    const RouteMatch m = lookup("GET", "/v1/chat/completions");
    EXPECT_EQ(m.route, nullptr);
    EXPECT_EQ(m.allowed, "POST");
    const ApiError e = unmatched_route(m, "GET", "/v1/chat/completions");
    EXPECT_EQ(e.status, 405);
    EXPECT_EQ(e.message, "Method GET is not allowed on this path; use POST");
    EXPECT_NE(e.body().find("\"error\""), std::string::npos) << e.body();

    const RouteMatch d = lookup("DELETE", "/models/x");
    EXPECT_EQ(d.allowed, "GET");
}

TEST(EndpointTable, UnknownPathIs404InOpenAIShape) {
    const RouteMatch m = lookup("POST", "/v2/chat/completions");
    EXPECT_EQ(m.route, nullptr);
    EXPECT_TRUE(m.allowed.empty());
    const std::string long_uri = "/nope/" + std::string(500, 'x');
    const ApiError e = unmatched_route(m, "POST", long_uri);
    EXPECT_EQ(e.status, 404);
    EXPECT_EQ(e.code, "unknown_url");
    EXPECT_EQ(e.message, "Unknown path " + long_uri.substr(0, 200));
    EXPECT_NE(e.body().find("\"error\""), std::string::npos);
}

TEST(EndpointTable, RoutePathStripsQueryAndTrailingSlashes) {
    EXPECT_EQ(route_path("/v1/models?limit=2"), "/v1/models");
    EXPECT_EQ(route_path("/v1/models///"), "/v1/models");
    EXPECT_EQ(route_path("/"), "/");
    EXPECT_EQ(route_path("/?a=/"), "/");
    EXPECT_EQ(path_only("/x/?q"), "/x/");
}

TEST(EndpointAccess, WhoNeedsTheKey) {
    EXPECT_FALSE(needs_key(Access::Open, true));
    EXPECT_TRUE(needs_key(Access::Key, false));
    EXPECT_TRUE(needs_key(Access::Observability, true));
    EXPECT_FALSE(needs_key(Access::Observability, false));
}

TEST(EndpointAccess, PresentedKeyFollowsLiteLLMsOrder) {
    EXPECT_EQ(presented_key("Bearer sk-1", true, "sk-2", "sk-3"), "sk-1");
    EXPECT_EQ(presented_key("bearer sk-1", false, "", ""), "sk-1");
    // Not a bearer token: the LiteLLM header, with or without its own "Bearer ".
    EXPECT_EQ(presented_key("Basic dXNlcg==", true, "Bearer sk-2", "sk-3"), "sk-2");
    EXPECT_EQ(presented_key("", true, "sk-2", "sk-3"), "sk-2");
    // Present but empty still wins over api-key (as before: the header was asked for).
    EXPECT_EQ(presented_key("", true, "", "sk-3"), "");
    EXPECT_EQ(presented_key("", false, "", "sk-3"), "sk-3");
    EXPECT_EQ(presented_key("Bearer ", false, "", "sk-3"), "sk-3") << "\"Bearer \" alone carries no key";
}

TEST(EndpointAccess, KeyComparison) {
    EXPECT_TRUE(constant_time_equal("sk-master", "sk-master"));
    EXPECT_FALSE(constant_time_equal("sk-maste", "sk-master"));
    EXPECT_FALSE(constant_time_equal("sk-masterr", "sk-master"));
    EXPECT_FALSE(constant_time_equal("sk-mastex", "sk-master"));
    EXPECT_FALSE(constant_time_equal("", ""));  // no key configured matches nothing here
    EXPECT_FALSE(constant_time_equal("sk-mastersk-master", "sk-master"));
}

TEST(EndpointTable, AzurePathsNameTheGroupInTheirMiddleSegment) {
    struct Case {
        const char* uri;
        Endpoint api;
        const char* group;
    } cases[] = {
        {"/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21", Endpoint::Chat, "gpt-4o"},
        {"/openai/deployments/my.dep_1/completions?api-version=x", Endpoint::Completions, "my.dep_1"},
        {"/openai/deployments/emb/embeddings/", Endpoint::Embeddings, "emb"},
    };
    for (const auto& c : cases) {
        const RouteMatch m = lookup("POST", c.uri);
        ASSERT_NE(m.route, nullptr) << c.uri;
        EXPECT_EQ(m.route->api, c.api) << c.uri;
        EXPECT_EQ(m.route->access, Access::Key);
        EXPECT_EQ(m.arg, c.group) << c.uri;
    }
    // The segment is one, non-empty; the rest of the path must match exactly.
    EXPECT_EQ(lookup("POST", "/openai/deployments//chat/completions").route, nullptr);
    EXPECT_EQ(lookup("POST", "/openai/deployments/a/b/chat/completions").route, nullptr);
    EXPECT_EQ(lookup("POST", "/openai/deployments/a/chat/completionsX").route, nullptr);
    EXPECT_EQ(lookup("POST", "/openai/deployments/a").route, nullptr);
    EXPECT_EQ(lookup("POST", "/v1/openai/deployments/a/chat/completions").route, nullptr) << "no /v1 alias";
    const RouteMatch get = lookup("GET", "/openai/deployments/a/chat/completions");
    EXPECT_EQ(get.route, nullptr);
    EXPECT_EQ(get.allowed, "POST");
}

TEST(EndpointTable, PercentDecodedSegment) {
    EXPECT_EQ(percent_decoded_segment("gpt-4o"), "gpt-4o");
    EXPECT_EQ(percent_decoded_segment("a%20b%2Ec"), "a b.c");
    EXPECT_EQ(percent_decoded_segment(""), "");
    EXPECT_EQ(percent_decoded_segment("a%2Fb"), std::nullopt) << "a '/' would name another path";
    EXPECT_EQ(percent_decoded_segment("a%0Ab"), std::nullopt) << "control characters reach logs";
    EXPECT_EQ(percent_decoded_segment("a%2"), std::nullopt);
    EXPECT_EQ(percent_decoded_segment("a%"), std::nullopt);
    EXPECT_EQ(percent_decoded_segment("a%zz"), std::nullopt);
}
