// Request body validation and byte-preserving rewrite.
#include "server/request_body.hpp"

#include <gtest/gtest.h>

using namespace tailgate;
using namespace tailgate::server;

namespace {
ParsedBody ok(std::string_view body, Endpoint ep = Endpoint::Chat) {
    auto r = parse_body(body, ep);
    if (auto* e = std::get_if<ApiError>(&r)) ADD_FAILURE() << e->message;
    return std::holds_alternative<ParsedBody>(r) ? std::get<ParsedBody>(r) : ParsedBody{};
}
ApiError err(std::string_view body, Endpoint ep = Endpoint::Chat) {
    auto r = parse_body(body, ep);
    EXPECT_TRUE(std::holds_alternative<ApiError>(r)) << "expected an error for " << body;
    return std::holds_alternative<ApiError>(r) ? std::get<ApiError>(r) : ApiError{};
}
}  // namespace

TEST(RequestBody, ReplacesModelAndKeepsOtherBytesVerbatim) {
    auto p = ok(R"({ "model" : "gpt-3.5-turbo", "messages":[{"role":"user","content":"hi"}],
                   "temperature": 0.70, "tools":[{"type":"function","function":{"name":"f","parameters":{}}}],
                   "unknown_field": {"x": [1, 2.50]} })");
    EXPECT_EQ(p.model, "gpt-3.5-turbo");
    EXPECT_EQ(p.body_for("llama-3"),
              R"({"model":"llama-3","messages":[{"role":"user","content":"hi"}],"temperature": 0.70,"tools":[{"type":"function","function":{"name":"f","parameters":{}}}],"unknown_field": {"x": [1, 2.50]}})");
}

TEST(RequestBody, StripsGatewayFieldsIntoOverrides) {
    auto p = ok(R"({"messages":[],"model":"a,b","fastest_response":true,"num_retries":2,"timeout":1.5,)"
                R"("metadata":{"user_id":"u1"},"fallbacks":["gpt-4"],"stream":true,"n":2})");
    EXPECT_TRUE(p.fastest_response);
    EXPECT_TRUE(p.stream);
    EXPECT_EQ(p.num_retries, 2);
    EXPECT_DOUBLE_EQ(*p.timeout_s, 1.5);
    EXPECT_EQ(p.metadata_json, R"({"user_id":"u1"})");
    EXPECT_EQ(p.overrides_json,
              R"({"fastest_response":true,"num_retries":2,"timeout":1.5,"metadata":{"user_id":"u1"},"fallbacks":["gpt-4"]})");
    EXPECT_EQ(p.body_for("m"), R"({"model":"m","messages":[],"stream":true,"n":2})");
}

TEST(RequestBody, EscapesUpstreamModel) {
    auto p = ok(R"({"model":"x","messages":[]})");
    EXPECT_EQ(p.body_for("we\"ird"), R"({"model":"we\"ird","messages":[]})");
}

TEST(RequestBody, RejectsBadInputWithParam) {
    EXPECT_EQ(err("").status, 400);
    EXPECT_NE(err("{\"model\":").message.find("Invalid JSON"), std::string::npos);
    EXPECT_EQ(err("[1,2]").message, "Request body must be a JSON object");
    EXPECT_EQ(err(R"({"messages":[]})").param, "model");
    EXPECT_EQ(err(R"({"model":5,"messages":[]})").param, "model");
    EXPECT_EQ(err(R"({"model":"m"})").param, "messages");
    EXPECT_EQ(err(R"({"model":"m","messages":"hi"})").param, "messages");
    EXPECT_EQ(err(R"({"model":"m","messages":[],"stream":"yes"})").param, "stream");
    EXPECT_EQ(err(R"({"model":"m","messages":[],"num_retries":-1})").param, "num_retries");
    EXPECT_EQ(err(R"({"model":"m","messages":[]} trailing)").status, 400);
    EXPECT_EQ(err("{\"model\":\"m\",\"messages\":[\"\xff\"]}").status, 400) << "invalid UTF-8";
}

TEST(RequestBody, StrategiesListIsBoundedWhileParsing) {
    auto with = [](const std::string& list) { return R"({"model":"m","messages":[],"strategies":)" + list + "}"; };
    EXPECT_EQ(ok(with(R"(["health","latency"])")).strategies, (std::vector<std::string>{"health", "latency"}));
    // Names are kept as sent: whether they are allowed is the router's call.
    EXPECT_EQ(ok(with(R"(["/tmp/evil"])")).strategies, (std::vector<std::string>{"/tmp/evil"}));

    for (const char* bad : {"[]", R"("health")", R"([1])", R"([["health"]])", R"([{"name":"health"}])", "null"}) {
        auto e = err(with(bad));
        EXPECT_EQ(e.param, "strategies") << bad;
        EXPECT_EQ(e.code, "invalid_type") << bad;
        EXPECT_EQ(e.message, "'strategies' must be a non-empty list of strategy names") << bad;
    }

    std::string eight = "[", nine;
    for (int i = 0; i < 8; ++i) eight += std::string(i ? "," : "") + "\"s" + std::to_string(i) + "\"";
    nine = eight + ",\"s8\"]";
    eight += "]";
    EXPECT_EQ(ok(with(eight)).strategies.size(), 8u);
    auto too_many = err(with(nine));
    EXPECT_EQ(too_many.code, "too_many_strategies");
    EXPECT_EQ(too_many.param, "strategies");
    EXPECT_EQ(too_many.message, "'strategies' may name at most 8 strategies");

    EXPECT_EQ(ok(with("[\"" + std::string(128, 'x') + "\"]")).strategies.front().size(), 128u);
    auto too_long = err(with("[\"" + std::string(129, 'x') + "\"]"));
    EXPECT_EQ(too_long.code, "invalid_value");
    EXPECT_EQ(too_long.message, "'strategies' entries must be at most 128 bytes long");

    // A 10 MiB list is refused at its ninth entry, not built.
    std::string huge = "[";
    while (huge.size() < 10u * 1024 * 1024) huge += "\"health\",";
    huge += "\"health\"]";
    EXPECT_EQ(err(with(huge)).code, "too_many_strategies");
}

TEST(RequestBody, DeepNestingIsAnErrorNotACrash) {
    std::string deep = R"({"model":"m","messages":[)" + std::string(200000, '[');
    EXPECT_EQ(err(deep).status, 400);
}

TEST(RequestBody, EndpointSpecificRequiredFields) {
    EXPECT_EQ(ok(R"({"model":"e","input":["a","b"]})", Endpoint::Embeddings).body_for("x"),
              R"({"model":"x","input":["a","b"]})");
    EXPECT_EQ(err(R"({"model":"e"})", Endpoint::Embeddings).param, "input");
    EXPECT_EQ(ok(R"({"model":"c","prompt":"once"})", Endpoint::Completions).model, "c");
}

TEST(RequestBody, CredentialFieldsGoByPrefix) {
    for (const char* f : {"user_config", "aws_bedrock_runtime_endpoint", "vertex_ai_project", "azure_ad_token_provider",
                          "api_type", "api_key", "litellm_params", "model_list", "base_url"}) {
        EXPECT_TRUE(is_client_credential_field(f)) << f;
        auto p = ok(std::string(R"({"model":"m","messages":[],")") + f + R"(":"x"})");
        EXPECT_EQ(p.client_credential, f);
        auto q = ok(std::string(R"({"model":"m","messages":[],"extra_body":{")") + f + R"(":"x"}})");
        EXPECT_EQ(q.client_credential, std::string("extra_body.") + f);
    }
    for (const char* f : {"messages", "user", "tools", "response_format", "max_tokens", "apikey", "seed"})
        EXPECT_FALSE(is_client_credential_field(f)) << f;
}

TEST(RequestBody, DropsNamedFieldsForOneDeployment) {
    auto p = ok(R"({"model":"m","messages":[],"logprobs":true,"top_logprobs": 2,"temperature":0.5,"x":{"y":1}})");
    EXPECT_EQ(p.body_for("up"), R"({"model":"up","messages":[],"logprobs":true,"top_logprobs": 2,"temperature":0.5,"x":{"y":1}})");
    EXPECT_EQ(p.body_for("up", {"logprobs", "top_logprobs"}), R"({"model":"up","messages":[],"temperature":0.5,"x":{"y":1}})");
    EXPECT_EQ(p.body_for("up", {"messages", "temperature", "x", "logprobs", "top_logprobs"}), R"({"model":"up"})");
    EXPECT_EQ(p.body_for("up", {"absent"}), p.body_for("up"));
}
