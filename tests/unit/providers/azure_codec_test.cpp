// The Azure codec: deployment URL, api-version, api-key header; config-time resolve.
#include "providers/azure/codec.hpp"
#include "providers/registry.hpp"

#include <gtest/gtest.h>

using namespace tailgate;
using namespace tailgate::providers;

TEST(AzureCodec, ResolvesTheDeploymentPathAndDefaultVersion) {
    const Codec& c = azure::codec();
    std::string path = "/openai", version;
    EXPECT_EQ(c.resolve(path, version, "gpt4-prod"), "");
    EXPECT_EQ(path, "/openai/deployments/gpt4-prod");
    EXPECT_EQ(version, "2024-02-01");

    std::string bare = "", pinned = "2025-01-01";
    EXPECT_EQ(c.resolve(bare, pinned, "d.1_x"), "");
    EXPECT_EQ(bare, "/openai/deployments/d.1_x");
    EXPECT_EQ(pinned, "2025-01-01") << "a configured api_version wins";

    std::string p2, v2;
    EXPECT_NE(c.resolve(p2, v2, "bad/name").find("invalid Azure deployment name 'bad/name'"), std::string::npos);
}

TEST(AzureCodec, BuildsApiKeyRequestWithTheVersionQuery) {
    ParsedBody body;
    body.members = R"("input":"x")";
    const std::vector<std::string> none;
    Target t{true, "r.openai.azure.com", "443", "/openai/deployments/emb", "2024-02-01", "azkey-123", true};
    tailgate::upstream::Request req;
    azure::codec().build(CallSpec{t, Endpoint::Embeddings, false, "emb", body, none}, req);
    EXPECT_EQ(req.target, "/openai/deployments/emb/embeddings?api-version=2024-02-01");
    ASSERT_EQ(req.headers.size(), 1u);
    EXPECT_EQ(req.headers[0].first, "api-key");
    EXPECT_EQ(req.headers[0].second, "azkey-123");
    EXPECT_EQ(req.body, R"({"model":"emb","input":"x"})");
    EXPECT_EQ(azure::codec().wire(), Wire::OpenAI) << "Azure speaks OpenAI's wire: bytes pass through";
}

TEST(AzureCodec, ReadsErrorsLikeOpenAI) {
    tailgate::upstream::ResponseHead h;
    h.status = 429;
    h.headers = {{"retry-after", "2"}};
    auto e = azure::codec().decode_error(h, R"({"error":{"message":"quota"}})");
    EXPECT_EQ(e.error_class, ErrorClass::RateLimit);
    EXPECT_EQ(e.retry_after_ms, 2000);
    EXPECT_EQ(e.message, "quota");
}
