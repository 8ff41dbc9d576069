// request_info(): every per-request field of the body reaches routing, whichever
// path routes it (issue 15: a second path once dropped overrides and fallbacks).
#include "server/request_info.hpp"
#include "server/request_body.hpp"

#include <gtest/gtest.h>

#include <string>
#include <variant>

using namespace tailgate;
using namespace tailgate::server;
using namespace std::chrono_literals;

namespace {

ParsedBody parse(std::string_view json, Endpoint ep = Endpoint::Chat) {
    auto r = parse_body(json, ep);
    if (auto* e = std::get_if<ApiError>(&r)) ADD_FAILURE() << e->message;
    return std::get<ParsedBody>(std::move(r));
}

std::string flat_value(const router::RequestInfo& info, const std::string& key) {
    for (const auto& [k, v] : info.overrides)
        if (k == key) return v;
    return "<absent>";
}

}  // namespace

TEST(RequestInfo, CarriesEveryPerRequestField) {
    const ParsedBody body = parse(R"({"model":"a,b","messages":[],"stream":true,"num_retries":2,
        "fallbacks":["f1","f2"],"strategies":["latency"],"hedge":{"delay":"p99"},
        "metadata":{"team":"x"},"timeout":30})");
    RequestTimeouts t;
    t.timeout = 30000ms;
    const router::RequestInfo info = request_info(body, Endpoint::Chat, "req_1", t);
    EXPECT_EQ(info.request_id, "req_1");
    EXPECT_EQ(info.model_group, "a,b");  // callers split lists themselves
    EXPECT_EQ(info.endpoint, Endpoint::Chat);
    EXPECT_TRUE(info.stream);
    EXPECT_EQ(info.num_retries, 2);
    ASSERT_TRUE(info.fallbacks.has_value());
    EXPECT_EQ(*info.fallbacks, (std::vector<std::string>{"f1", "f2"}));
    EXPECT_EQ(info.strategies, (std::vector<std::string>{"latency"}));
    EXPECT_EQ(info.timeout, 30000ms);
    EXPECT_EQ(info.overrides_json, body.overrides_json);
    EXPECT_EQ(flat_value(info, "hedge.delay"), "p99") << body.overrides_json;
    EXPECT_EQ(info.metadata_json, body.metadata_json);
    EXPECT_NE(info.metadata_json.find("team"), std::string::npos);
    EXPECT_TRUE(info.race_groups.empty());
}

TEST(RequestInfo, PlainRequestHasNoOverrides) {
    const ParsedBody body = parse(R"({"model":"m","input":"hi"})", Endpoint::Embeddings);
    const router::RequestInfo info = request_info(body, Endpoint::Embeddings, "req_2", RequestTimeouts{});
    EXPECT_EQ(info.endpoint, Endpoint::Embeddings);
    EXPECT_FALSE(info.stream);
    EXPECT_EQ(info.overrides_json, "{}");
    EXPECT_TRUE(info.overrides.empty());
    EXPECT_FALSE(info.num_retries.has_value());
    EXPECT_FALSE(info.fallbacks.has_value());
    EXPECT_FALSE(info.timeout.has_value());
    EXPECT_TRUE(info.strategies.empty());
}

TEST(RequestInfo, MessagesFieldsReachStrategiesToo) {
    const std::string system(400, 's');
    const ParsedBody body = parse(R"({"model":"claude","max_tokens":64,"system":")" + system +
                                      R"(","messages":[{"role":"user","content":"hi"}],"metadata":{"user_id":"u-9"},)"
                                      R"("tools":[{"name":"f","input_schema":{"type":"object"}}],)"
                                      R"("output_config":{"format":{"type":"json_schema","schema":{}}}})",
                                  Endpoint::Messages);
    const router::RequestInfo info = request_info(body, Endpoint::Messages, "req_3", RequestTimeouts{});
    EXPECT_EQ(info.endpoint, Endpoint::Messages);
    EXPECT_EQ(info.user, "u-9") << "metadata.user_id is Messages' user";
    EXPECT_EQ(info.max_tokens, 64);
    EXPECT_TRUE(info.has_tools);
    EXPECT_TRUE(info.has_response_format);
    EXPECT_GT(info.prompt_tokens_estimate, 100) << "the system prompt counts";
    EXPECT_EQ(info.metadata_json, R"({"user_id":"u-9"})");
}
