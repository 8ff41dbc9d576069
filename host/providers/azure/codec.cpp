#include "providers/azure/codec.hpp"

namespace tailgate::providers::azure {

const providers::Codec& codec() {
    static const Codec instance;
    return instance;
}

std::string Codec::resolve(std::string& base_path, std::string& api_version, std::string_view model) const {
    for (char c : model) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                        c == '_' || c == '.';
        if (!ok) return "invalid Azure deployment name '" + std::string(model) + "' (letters, digits, '-', '_', '.')";
    }
    // LiteLLM users write the resource origin, with or without its /openai.
    constexpr std::string_view kOpenAI = "/openai";
    if (base_path.size() >= kOpenAI.size() && base_path.compare(base_path.size() - kOpenAI.size(), kOpenAI.size(), kOpenAI) == 0)
        base_path.resize(base_path.size() - kOpenAI.size());
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
    if (!call.target.api_key.empty()) out.headers.emplace_back("api-key", std::string(call.target.api_key));
}

}  // namespace tailgate::providers::azure
