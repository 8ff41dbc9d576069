// Azure OpenAI: OpenAI's wire format under `<base>/openai/deployments/<name>`,
// versioned by an `api-version` query, authenticated by an `api-key` header.
// The Responses API lives beside the deployments: `<base>/openai/responses`.
//
// Azure AI (`azure_ai/`, Foundry / AI model inference): OpenAI's wire under the
// configured base, the model named in the body; `api-key` on Azure's own hosts
// (*.services.ai.azure.com, *.openai.azure.com, *.cognitiveservices.azure.com),
// Bearer elsewhere (serverless *.models.ai.azure.com); `api-version` only when set.
#pragma once

#include "providers/openai/codec.hpp"

namespace tailgate::providers::azure {

class Codec final : public openai::Codec {
public:
    Codec() : openai::Codec(true) {}
    std::string_view name() const override { return "azure"; }
    std::string resolve(std::string& base_path, std::string& api_version,
                        std::string_view upstream_model) const override;

    // Azure serves the Responses API per resource (`<base>/openai/responses`, the
    // deployment named by `model`) from api-version 2025-03-01-preview on.
    static constexpr std::string_view kResponsesApiVersion = "2025-04-01-preview";

protected:
    void address(const CallSpec& call, upstream::Request& out) const override;
    void path(const CallSpec& call, upstream::Request& out) const override;
};

class AiCodec final : public openai::Codec {
public:
    std::string_view name() const override { return "azure_ai"; }

protected:
    void address(const CallSpec& call, upstream::Request& out) const override;
};

const providers::Codec& codec();
const providers::Codec& ai_codec();

// True for hosts that take Azure's `api-key` header rather than a Bearer token.
bool uses_api_key_header(std::string_view host);

}  // namespace tailgate::providers::azure
