// Azure OpenAI: OpenAI's wire format under `<base>/openai/deployments/<name>`,
// versioned by an `api-version` query, authenticated by an `api-key` header.
// The Responses API lives beside the deployments: `<base>/openai/responses`.
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

const providers::Codec& codec();

}  // namespace tailgate::providers::azure
