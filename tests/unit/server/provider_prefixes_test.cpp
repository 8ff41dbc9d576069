// The OpenAI-compatible providers by prefix: each one's default base (when the
// deployment names no api_base), its API-key environment variables, and the
// upstream URL and auth its codec builds.
#include "server/upstream_transport.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

using namespace tailgate;
using namespace tailgate::server;

namespace {

std::map<std::string, std::string>& env_vars() {
    static std::map<std::string, std::string> vars;
    return vars;
}

std::optional<std::string> fake_env(const std::string& name) {
    auto it = env_vars().find(name);
    if (it == env_vars().end()) return std::nullopt;
    return it->second;
}

config::Config load(const std::string& model, const std::string& params = "") {
    const std::string yaml = "model_list:\n  - model_name: g\n    litellm_params:\n      model: " + model + "\n" +
                             params;
    return config::load_string(yaml, "prefixes_test.yaml", fake_env);
}

std::string header(const upstream::Request& r, const std::string& name) {
    for (const auto& [k, v] : r.headers)
        if (k == name) return v;
    return "<absent>";
}

std::string url_of(const upstream::Request& r) {
    return std::string(r.origin.tls ? "https://" : "http://") + r.origin.host + ":" + r.origin.port + r.target;
}

struct Row {
    const char* prefix;
    const char* chat_url;  // the default base + /chat/completions
    const char* env;       // the first key variable
    const char* env2;      // a later one ("" = none), used when the first is unset
};

const Row kRows[] = {
    {"mistral", "https://api.mistral.ai:443/v1/chat/completions", "MISTRAL_API_KEY", ""},
    {"xai", "https://api.x.ai:443/v1/chat/completions", "XAI_API_KEY", ""},
    {"fireworks_ai", "https://api.fireworks.ai:443/inference/v1/chat/completions", "FIREWORKS_AI_API_KEY",
     "FIREWORKS_API_KEY"},
    {"openrouter", "https://openrouter.ai:443/api/v1/chat/completions", "OPENROUTER_API_KEY", "OR_API_KEY"},
    {"perplexity", "https://api.perplexity.ai:443/chat/completions", "PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"},
    {"cerebras", "https://api.cerebras.ai:443/v1/chat/completions", "CEREBRAS_API_KEY", ""},
    {"deepinfra", "https://api.deepinfra.com:443/v1/openai/chat/completions", "DEEPINFRA_API_KEY", ""},
};

}  // namespace

TEST(ProviderPrefixes, DefaultBaseAndKeyFromTheEnvironment) {
    for (const Row& row : kRows) {
        SCOPED_TRACE(row.prefix);
        env_vars() = {{row.env, std::string("key-of-") + row.prefix}};
        const auto cfg = load(std::string(row.prefix) + "/some-org/some-model");
        const auto& d = cfg.deployments[0];
        EXPECT_EQ(d.upstream.provider, row.prefix);
        const auto chat = UpstreamTransport::build(d, cfg.router, Endpoint::Chat, true, ParsedBody{}, "some-org/some-model", {});
        EXPECT_EQ(url_of(chat), row.chat_url);
        EXPECT_EQ(header(chat, "Authorization"), std::string("Bearer key-of-") + row.prefix);
        EXPECT_EQ(chat.body, R"({"model":"some-org/some-model"})") << "the upstream model keeps its own slashes";
        if (*row.env2) {
            env_vars() = {{row.env2, "second"}};
            const auto cfg2 = load(std::string(row.prefix) + "/m");
            EXPECT_EQ(cfg2.deployments[0].upstream.api_key.reveal(), "second");
        }
    }
    env_vars().clear();
}

TEST(ProviderPrefixes, ApiBaseAndApiKeyWinOverDefaults) {
    env_vars() = {{"MISTRAL_API_KEY", "from-env"}};
    const auto cfg = load("mistral/mistral-small", "      api_base: http://127.0.0.1:9/v1\n      api_key: from-config\n");
    const auto& d = cfg.deployments[0];
    const auto emb = UpstreamTransport::build(d, cfg.router, Endpoint::Embeddings, false, ParsedBody{}, "mistral-small", {});
    EXPECT_EQ(url_of(emb), "http://127.0.0.1:9/v1/embeddings");
    EXPECT_EQ(header(emb, "Authorization"), "Bearer from-config");
    env_vars().clear();
}

TEST(ProviderPrefixes, AzureAiNeedsABaseAndPicksItsAuthHeaderByHost) {
    EXPECT_THROW(load("azure_ai/phi-4"), config::ConfigError) << "no default base: each resource has its own";
    env_vars() = {{"AZURE_AI_API_KEY", "az-ai-key"}};
    const auto foundry = load("azure_ai/phi-4", "      api_base: https://res.services.ai.azure.com/models\n"
                                                "      api_version: 2024-05-01-preview\n");
    const auto f = UpstreamTransport::build(foundry.deployments[0], foundry.router, Endpoint::Chat, false, ParsedBody{},
                                            "phi-4", {});
    EXPECT_EQ(url_of(f), "https://res.services.ai.azure.com:443/models/chat/completions?api-version=2024-05-01-preview");
    EXPECT_EQ(header(f, "api-key"), "az-ai-key");
    EXPECT_EQ(header(f, "Authorization"), "<absent>");
    EXPECT_EQ(f.body, R"({"model":"phi-4"})") << "the model goes in the body, not the path";

    const auto serverless = load("azure_ai/mistral-large", "      api_base: https://m.eastus2.models.ai.azure.com\n");
    const auto s = UpstreamTransport::build(serverless.deployments[0], serverless.router, Endpoint::Chat, false,
                                            ParsedBody{}, "mistral-large", {});
    EXPECT_EQ(url_of(s), "https://m.eastus2.models.ai.azure.com:443/chat/completions");
    EXPECT_EQ(header(s, "Authorization"), "Bearer az-ai-key");
    EXPECT_EQ(header(s, "api-key"), "<absent>");
    env_vars().clear();
}
