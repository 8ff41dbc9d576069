// The upstream request of one attempt: the deployment's codec (from the config's
// provider registry) builds URL, auth and body; the transport adds timeouts.
#include "server/upstream_transport.hpp"

#include <gtest/gtest.h>

using namespace tailgate;
using namespace tailgate::server;
using namespace std::chrono_literals;

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

std::string header(const upstream::Request& r, std::string_view name) {
    for (const auto& [k, v] : r.headers)
        if (k == name) return v;
    return "<none>";
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
    EXPECT_EQ(header(req, "Accept"), "<none>") << "not a stream";
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
    EXPECT_EQ(header(req, "Authorization"), "<none>");
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
