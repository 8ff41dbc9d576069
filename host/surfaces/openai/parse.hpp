// The OpenAI request surfaces' parser: a client body (chat, completions,
// embeddings) to the internal request, validated in one SAX pass.
#pragma once

#include "common/api_error.hpp"
#include "providers/codec.hpp"
#include "providers/request.hpp"

#include <string_view>
#include <variant>

namespace tailgate::surfaces::openai {

using providers::ParsedBody;

// True for fields the gateway consumes and never forwards.
bool is_gateway_field(std::string_view key);

// True for fields that would point a request at another upstream or carry
// credentials for one (LiteLLM's client-side credentials).
bool is_client_credential_field(std::string_view key);

// `path_model`: the model group named by the path (Azure's /openai/deployments/{group}/...);
// it replaces any `model` in the body, which may then be absent.
std::variant<ParsedBody, ApiError> parse_body(std::string_view body, Endpoint op, std::string_view path_model = {});

// What differs between the request surfaces that share this scanner (the
// gateway-only fields, credentials and `stream` are read the same way).
struct BodyRules {
    std::string_view required;      // the member every request must have
    bool required_array = false;    // ... and it must be an array
    // `metadata` is an API field (Anthropic's): forwarded, and also the request's
    // metadata for strategies and logs. Otherwise it is LiteLLM's, gateway-only.
    bool forward_metadata = false;
    // The model group named by the path (Azure's deployments), or "".
    std::string_view path_model = {};
    // The model group of a request without `model` (ParsedBody::model_defaulted); "": `model` is required.
    std::string_view default_model = {};
    // An empty `required`: no member is.
};
std::variant<ParsedBody, ApiError> parse_members(std::string_view body, const BodyRules& rules);

}  // namespace tailgate::surfaces::openai
