#include "providers/azure/codec.hpp"

namespace tailgate::providers::azure {

namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

void api_key_header(std::string_view key, upstream::Request& out) {
    if (!key.empty()) out.headers.emplace_back("api-key", std::string(key));
}

}  // namespace

const providers::Codec& codec() {
    static const Codec instance;
    return instance;
}

const providers::Codec& ai_codec() {
    static const AiCodec instance;
    return instance;
}

bool uses_api_key_header(std::string_view host) {
    return ends_with(host, ".services.ai.azure.com") || ends_with(host, ".openai.azure.com") ||
           ends_with(host, ".cognitiveservices.azure.com");
}

std::string Codec::resolve(std::string& base_path, std::string& api_version, std::string_view model) const {
    for (char c : model) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                        c == '_' || c == '.';
        if (!ok) return "invalid Azure deployment name '" + std::string(model) + "' (letters, digits, '-', '_', '.')";
    }
    // LiteLLM users write the resource origin, with or without its /openai.
    constexpr std::string_view kOpenAI = "/openai";
    if (ends_with(base_path, kOpenAI)) base_path.resize(base_path.size() - kOpenAI.size());
    base_path += "/openai/deployments/";
    base_path += model;
    if (api_version.empty()) api_version = "2024-02-01";
    return {};
}

void Codec::path(const CallSpec& call, upstream::Request& out) const {
    if (call.op != Endpoint::Responses) return openai::Codec::path(call, out);
    // resolve() made base_path "<prefix>/openai/deployments/<name>": the resource's API is above it.
    std::string_view base = call.target.base_path;
    base = base.substr(0, base.rfind("/deployments/"));
    out.target = base;
    out.target += path_for(call.op);
}

void Codec::address(const CallSpec& call, upstream::Request& out) const {
    std::string_view version = call.target.api_version;
    // Older versions (the default 2024-02-01 included) have no Responses API.
    if (call.op == Endpoint::Responses && version < std::string_view("2025-03-01")) version = kResponsesApiVersion;
    out.target += "?api-version=";
    out.target += version;
    api_key_header(call.target.api_key, out);
}

void AiCodec::address(const CallSpec& call, upstream::Request& out) const {
    if (!call.target.api_version.empty()) {
        out.target += "?api-version=";
        out.target += call.target.api_version;
    }
    if (uses_api_key_header(call.target.host)) api_key_header(call.target.api_key, out);
    else openai::Codec::address(call, out);
}

}  // namespace tailgate::providers::azure
