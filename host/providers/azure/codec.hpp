// Azure OpenAI: OpenAI's wire format under `<base>/openai/deployments/<name>`,
// versioned by an `api-version` query, authenticated by an `api-key` header.
#pragma once

#include "providers/openai/codec.hpp"

namespace tailgate::providers::azure {

class Codec final : public openai::Codec {
public:
    std::string_view name() const override { return "azure"; }
    std::string resolve(std::string& base_path, std::string& api_version,
                        std::string_view upstream_model) const override;

protected:
    void address(const CallSpec& call, upstream::Request& out) const override;
};

const providers::Codec& codec();

}  // namespace tailgate::providers::azure
