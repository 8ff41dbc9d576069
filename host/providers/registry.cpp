#include "providers/registry.hpp"

#include "providers/anthropic/codec.hpp"
#include "providers/azure/codec.hpp"
#include "providers/bedrock/codec.hpp"
#include "providers/openai/codec.hpp"
#include "providers/vertex/codec.hpp"

namespace tailgate::providers {

namespace {

constexpr std::string_view kGroqRejects[] = {"logprobs", "top_logprobs", "logit_bias"};

const Provider kProviders[] = {
    {"openai", openai::native_codec, "https://api.openai.com/v1", {"OPENAI_API_KEY", nullptr}},
    {"groq", openai::codec, "https://api.groq.com/openai/v1", {"GROQ_API_KEY", nullptr}, nullptr, kGroqRejects},
    {"together_ai", openai::codec, "https://api.together.xyz/v1", {"TOGETHERAI_API_KEY", "TOGETHER_API_KEY"}},
    {"deepseek", openai::codec, "https://api.deepseek.com/v1", {"DEEPSEEK_API_KEY", nullptr}},
    {"hosted_vllm", openai::codec, nullptr, {"HOSTED_VLLM_API_KEY", nullptr}},
    {"ollama", openai::codec, "http://localhost:11434/v1", {nullptr, nullptr}, "/v1"},
    {"azure", azure::codec, nullptr, {"AZURE_API_KEY", nullptr}},
    {"anthropic", anthropic::codec, "https://api.anthropic.com", {"ANTHROPIC_API_KEY", nullptr}},
    {"azure_ai", azure::ai_codec, nullptr, {"AZURE_AI_API_KEY", nullptr}},
    {"mistral", openai::codec, "https://api.mistral.ai/v1", {"MISTRAL_API_KEY", nullptr}},
    {"xai", openai::codec, "https://api.x.ai/v1", {"XAI_API_KEY", nullptr}},
    {"fireworks_ai", openai::codec, "https://api.fireworks.ai/inference/v1",
     {"FIREWORKS_AI_API_KEY", "FIREWORKS_API_KEY", "FIREWORKSAI_API_KEY"}},
    {"openrouter", openai::codec, "https://openrouter.ai/api/v1", {"OPENROUTER_API_KEY", "OR_API_KEY"}},
    {"perplexity", openai::codec, "https://api.perplexity.ai", {"PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"}},
    {"cerebras", openai::codec, "https://api.cerebras.ai/v1", {"CEREBRAS_API_KEY", nullptr}},
    {"deepinfra", openai::codec, "https://api.deepinfra.com/v1/openai", {"DEEPINFRA_API_KEY", nullptr}},
    // Google AI Studio through its OpenAI-compatible endpoint.
    {"gemini", openai::codec, "https://generativelanguage.googleapis.com/v1beta/openai", {"GEMINI_API_KEY", nullptr}},
    // Base from vertex_project / vertex_location, a service account's tokens (vertex/codec.hpp).
    {"vertex_ai", vertex::codec, nullptr, {nullptr, nullptr}},
    // Base from the region, SigV4 or a Bedrock API key (bedrock/codec.hpp).
    {"bedrock", bedrock::codec, nullptr, {"AWS_BEARER_TOKEN_BEDROCK", nullptr}},
};

}  // namespace

const Provider* find_provider(std::string_view name) {
    for (const auto& p : kProviders)
        if (name == p.name) return &p;
    return nullptr;
}

const std::vector<std::string>& provider_names() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> v;
        for (const auto& p : kProviders) v.emplace_back(p.name);
        return v;
    }();
    return names;
}

}  // namespace tailgate::providers
