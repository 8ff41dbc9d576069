// Vertex AI through its OpenAI-compatible endpoint
// (<base>/chat/completions, base by default
// https://<location>-aiplatform.googleapis.com/v1/projects/<project>/locations/<location>/endpoints/openapi),
// authenticated by a service account's OAuth access token (token_source.hpp).
// Google's models are named "google/<model>" there; a bare model name gets that
// prefix. LiteLLM's keys: vertex_credentials (the key file's path or its JSON;
// else GOOGLE_APPLICATION_CREDENTIALS), vertex_project (else the key's
// project_id), vertex_location (else us-central1).
#pragma once

#include "providers/openai/codec.hpp"
#include "providers/operations.hpp"

namespace tailgate::providers::vertex {

class Codec final : public openai::Codec {
public:
    std::string_view name() const override { return "vertex_ai"; }
    std::string default_base(const DeploymentParams& p) const override;
    CredentialsPtr credentials(const DeploymentParams& p, std::string& error) const override;
    // Vertex's OpenAI-compatible endpoint has no moderations, images or audio.
    bool serves(Endpoint op) const override { return !operation(op).pass_through(); }
    void build(const CallSpec& call, upstream::Request& out) const override;

protected:
    void address(const CallSpec& call, upstream::Request& out) const override;
};

const providers::Codec& codec();

}  // namespace tailgate::providers::vertex
