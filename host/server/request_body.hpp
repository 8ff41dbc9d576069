// The server's names for the request parser, which lives with the OpenAI
// client surfaces (surfaces/openai/parse.hpp) and the internal request
// (providers/request.hpp).
#pragma once

#include "surfaces/openai/parse.hpp"
#include "surfaces/surface.hpp"

#include <tailgate/plugin_abi.h>

namespace tailgate::server {

using providers::ParsedBody;
using surfaces::openai::is_client_credential_field;
using surfaces::openai::is_gateway_field;

// The plugin ABI's endpoint as the host's operation.
inline providers::Operation operation_of(tg_endpoint e) {
    switch (e) {
        case TG_ENDPOINT_COMPLETIONS: return providers::Operation::Completions;
        case TG_ENDPOINT_EMBEDDINGS: return providers::Operation::Embeddings;
        default: return providers::Operation::Chat;
    }
}

inline std::variant<ParsedBody, ApiError> parse_body(std::string_view body, tg_endpoint endpoint) {
    return surfaces::surface_for(operation_of(endpoint)).parse(body);
}

}  // namespace tailgate::server
