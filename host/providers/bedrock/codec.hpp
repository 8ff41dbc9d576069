// Amazon Bedrock through its Converse and ConverseStream APIs: chat completions
// translated to Converse (to_converse.cpp), answers translated back into
// normalized events (decoder.cpp: a JSON body, or the binary event stream),
// requests signed with AWS SigV4 (sigv4.hpp) or, with an api_key, a Bedrock
// API key as a Bearer token.
//
// Address: <base>/model/<model id, URI-encoded>/converse[-stream], the base by
// default https://bedrock-runtime.<region>.amazonaws.com. Credentials: LiteLLM's
// aws_access_key_id / aws_secret_access_key / aws_session_token /
// aws_region_name (os.environ/ works), else AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION_NAME / AWS_REGION /
// AWS_DEFAULT_REGION.
#pragma once

#include "providers/bedrock/sigv4.hpp"
#include "providers/codec.hpp"
#include "providers/operations.hpp"

#include <stdexcept>

namespace tailgate::providers::bedrock {

// A deployment's AWS identity: keys (unless it uses an api_key) and region.
class AwsCredentials final : public Credentials {
public:
    AwsCredentials(AwsKeys keys, std::string region) : keys_(std::move(keys)), region_(std::move(region)) {}
    const AwsKeys& keys() const { return keys_; }
    const std::string& region() const { return region_; }
    bool signs() const { return !keys_.access_key_id.empty(); }
    std::vector<std::string> secrets() const override { return {keys_.secret_access_key, keys_.session_token}; }

private:
    AwsKeys keys_;
    std::string region_;
};

class Codec final : public providers::Codec {
public:
    std::string_view name() const override { return "bedrock"; }
    Wire wire() const override { return Wire::Bedrock; }
    // Converse is chat: chat, legacy completions and the surfaces with a chat
    // form (Responses, Messages); never embeddings or the pass-through endpoints.
    // What it can answer through chat translation (no embeddings, no pass-through endpoints).
    bool serves(Endpoint op) const override { return operation(op).via_chat; }
    std::string default_base(const DeploymentParams& p) const override;
    CredentialsPtr credentials(const DeploymentParams& p, std::string& error) const override;
    void build(const CallSpec& call, upstream::Request& out) const override;
    ResponseDecoderPtr decoder(EventSinkPtr sink) const override;
    ResponseDecoderPtr decoder_for(Endpoint op, EventSinkPtr sink, std::string_view model) const override;
    UpstreamError decode_error(const upstream::ResponseHead& head, std::string_view body) const override;
};

const providers::Codec& codec();

// The Converse request body for a chat (or legacy completions) request.
// Throws RequestRefused for what Converse cannot express (n > 1, image URLs
// that are not data: URLs, ...).
std::string to_converse(const ParsedBody& request, Endpoint op, const std::vector<std::string>& dropped);

// The model id a config names: LiteLLM's route hints ("converse/", "invoke/") removed.
std::string_view model_id(std::string_view upstream_model);

// Converse's stopReason as OpenAI's finish_reason.
std::string_view finish_reason(std::string_view stop_reason);

// An exception or error event of the stream (its :exception-type), classified.
ErrorClass exception_class(std::string_view type);

}  // namespace tailgate::providers::bedrock
