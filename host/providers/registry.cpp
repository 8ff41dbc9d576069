#include "providers/registry.hpp"

#include "providers/anthropic/codec.hpp"
#include "providers/azure/codec.hpp"
#include "providers/openai/codec.hpp"

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
