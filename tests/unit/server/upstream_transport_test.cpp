// UpstreamTransport::build: the upstream request for one deployment — URL per
// provider, credentials only in their header, timeouts by precedence.
#include "server/upstream_transport.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace tailgate;
using namespace tailgate::server;
using namespace std::chrono_literals;

namespace {

constexpr const char* kSecret = "sk-SECRET-upstream-key";

config::Config load(const std::string& params, const std::string& model, const std::string& router = "") {
    const std::string yaml = "model_list:\n  - model_name: g\n    litellm_params:\n      model: " + model + "\n" +
                             params + "    model_info: {id: dep-1}\n" + router;
    return config::load_string(yaml, "transport_test.yaml");
}

std::string header(const upstream::Request& r, const std::string& name) {
    for (const auto& [k, v] : r.headers)
        if (k == name) return v;
    return "<absent>";
}

// Everything of a request that can reach a log line or an error message.
std::string logged_parts(const upstream::Request& r) {
    return r.label + " " + r.origin.host + ":" + r.origin.port + r.target;
}

}  // namespace

TEST(UpstreamTransport, OpenAICompatibleUrlAndBearer) {
    const auto cfg = load(std::string("      api_base: http://127.0.0.1:18001/v1\n      api_key: ") + kSecret + "\n",
                          "openai/gpt-4o");
    const auto& d = cfg.deployments[0];
    const upstream::Request chat = UpstreamTransport::build(d, cfg.router, Endpoint::Chat, false, "{}", {});
    EXPECT_EQ(chat.origin.host, "127.0.0.1");
    EXPECT_EQ(chat.origin.port, "18001");
    EXPECT_FALSE(chat.origin.tls);
    EXPECT_EQ(chat.target, "/v1/chat/completions");
    EXPECT_EQ(chat.method, "POST");
    EXPECT_EQ(chat.label, "dep-1");
    EXPECT_EQ(header(chat, "Authorization"), std::string("Bearer ") + kSecret);
    EXPECT_EQ(header(chat, "Accept"), "<absent>");
    EXPECT_EQ(chat.body, "{}");
    EXPECT_EQ(logged_parts(chat).find("SECRET"), std::string::npos) << logged_parts(chat);

    EXPECT_EQ(UpstreamTransport::build(d, cfg.router, Endpoint::Completions, false, "", {}).target, "/v1/completions");
    EXPECT_EQ(UpstreamTransport::build(d, cfg.router, Endpoint::Embeddings, false, "", {}).target, "/v1/embeddings");
    const upstream::Request stream = UpstreamTransport::build(d, cfg.router, Endpoint::Chat, true, "", {});
    EXPECT_EQ(header(stream, "Accept"), "text/event-stream");
}

TEST(UpstreamTransport, AzureDeploymentUrlAndApiKeyHeader) {
    const auto cfg = load(std::string("      api_base: https://res.openai.azure.com\n      api_version: 2024-10-21\n"
                                      "      api_key: ") + kSecret + "\n",
                          "azure/my-dep");
    const upstream::Request r =
        UpstreamTransport::build(cfg.deployments[0], cfg.router, Endpoint::Embeddings, false, "", {});
    EXPECT_EQ(r.origin.host, "res.openai.azure.com");
    EXPECT_EQ(r.origin.port, "443");
    EXPECT_TRUE(r.origin.tls);
    EXPECT_EQ(r.target, "/openai/deployments/my-dep/embeddings?api-version=2024-10-21");
    EXPECT_EQ(header(r, "api-key"), kSecret);
    EXPECT_EQ(header(r, "Authorization"), "<absent>");
    EXPECT_EQ(logged_parts(r).find("SECRET"), std::string::npos) << logged_parts(r);
}

TEST(UpstreamTransport, NoKeyNoCredentialHeader) {
    const auto cfg = load("      api_base: http://127.0.0.1:18001/v1\n", "hosted_vllm/llama");
    const upstream::Request r = UpstreamTransport::build(cfg.deployments[0], cfg.router, Endpoint::Chat, false, "", {});
    EXPECT_EQ(header(r, "Authorization"), "<absent>");
    EXPECT_EQ(header(r, "api-key"), "<absent>");
}

TEST(UpstreamTransport, TimeoutsRequestThenDeploymentThenRouter) {
    const auto cfg = load("      api_base: http://127.0.0.1:18001/v1\n      timeout: 20\n      stream_timeout: 4\n",
                          "openai/m", "router_settings:\n  timeout: 60\n  connect_timeout: 30\n");
    const auto& d = cfg.deployments[0];
    const upstream::Request dep = UpstreamTransport::build(d, cfg.router, Endpoint::Chat, true, "", {});
    EXPECT_EQ(dep.total_timeout, 20000ms);
    EXPECT_EQ(dep.idle_timeout, 20000ms);
    EXPECT_EQ(dep.header_timeout, 4000ms) << "a stream's first byte: stream_timeout";
    EXPECT_EQ(dep.connect_timeout, 20000ms) << "never longer than the total";

    RequestTimeouts t;
    t.timeout = 2000ms;
    t.stream_timeout = 1000ms;
    const upstream::Request req = UpstreamTransport::build(d, cfg.router, Endpoint::Chat, true, "", t);
    EXPECT_EQ(req.total_timeout, 2000ms);
    EXPECT_EQ(req.header_timeout, 1000ms);
    EXPECT_EQ(req.connect_timeout, 2000ms);

    const upstream::Request plain = UpstreamTransport::build(d, cfg.router, Endpoint::Chat, false, "", t);
    EXPECT_EQ(plain.header_timeout, 2000ms) << "non-stream: the head may take the whole total";
}

// The codec seam: the deployment's provider codec builds the body from the
// internal request (model rewritten, refused params dropped).
namespace {

const char* kYaml = R"(
model_list:
  - model_name: chat
    litellm_params:
      model: groq/llama-3
      api_base: http://127.0.0.1:9001/openai/v1
      api_key: gsk-test-key
      drop_params: true
      timeout: 30
  - model_name: chat
    litellm_params:
      model: azure/gpt4-prod
      api_base: https://res.openai.azure.com
      api_key: az-test-key
      stream_timeout: 5
)";

ParsedBody body_of(std::string_view json) {
    auto r = parse_body(json, Endpoint::Chat);
    return std::get<ParsedBody>(r);
}

}  // namespace

TEST(UpstreamTransport, OpenAICompatibleDeploymentGetsBearerPathAndDroppedParams) {
    const auto cfg = config::load_string(kYaml, "test.yaml");
    const auto body = body_of(R"({"model":"chat","messages":[],"logprobs":true,"temperature":1})");
    const auto& d = cfg.deployments[0];
    ASSERT_NE(d.upstream.codec, nullptr) << "the loader sets the codec from the registry";
    auto req = UpstreamTransport::build(d, cfg.router, Endpoint::Chat, false, body, "llama-3", {});
    EXPECT_EQ(req.origin.host, "127.0.0.1");
    EXPECT_EQ(req.origin.port, "9001");
    EXPECT_FALSE(req.origin.tls);
    EXPECT_EQ(req.target, "/openai/v1/chat/completions");
    EXPECT_EQ(header(req, "Authorization"), "Bearer gsk-test-key");
    EXPECT_EQ(header(req, "Accept"), "<absent>") << "not a stream";
    EXPECT_EQ(req.body, R"({"model":"llama-3","messages":[],"temperature":1})") << "groq refuses logprobs";
    EXPECT_EQ(req.label, d.id);
    EXPECT_EQ(req.total_timeout, 30000ms);
    EXPECT_EQ(req.header_timeout, 30000ms);
}

TEST(UpstreamTransport, AzureDeploymentGetsItsPathVersionAndApiKey) {
    const auto cfg = config::load_string(kYaml, "test.yaml");
    const auto body = body_of(R"({"model":"chat","messages":[],"stream":true})");
    const auto& d = cfg.deployments[1];
    auto req = UpstreamTransport::build(d, cfg.router, Endpoint::Chat, true, body, "gpt4-prod", {});
    EXPECT_EQ(req.target, "/openai/deployments/gpt4-prod/chat/completions?api-version=2024-02-01");
    EXPECT_EQ(header(req, "api-key"), "az-test-key");
    EXPECT_EQ(header(req, "Authorization"), "<absent>");
    EXPECT_EQ(header(req, "Accept"), "text/event-stream");
    EXPECT_EQ(req.header_timeout, 5000ms) << "a stream's first byte: stream_timeout";
    RequestTimeouts per_request{2000ms, std::nullopt};
    EXPECT_EQ(UpstreamTransport::build(d, cfg.router, Endpoint::Chat, true, body, "gpt4-prod", per_request)
                  .header_timeout,
              2000ms)
        << "capped by the request's total timeout";
}

TEST(UpstreamTransport, AHandBuiltUpstreamFallsBackToItsKindsCodec) {
    config::Upstream u;
    u.kind = config::ProviderKind::Azure;
    EXPECT_EQ(config::codec_of(u).name(), "azure");
    u.kind = config::ProviderKind::OpenAICompatible;
    EXPECT_EQ(config::codec_of(u).name(), "openai");
}
