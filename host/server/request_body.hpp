// The server's names for the request parser, which lives with the OpenAI
// client surfaces (surfaces/openai/parse.hpp) and the internal request
// (providers/request.hpp).
#pragma once

#include "common/vocabulary.hpp"
#include "surfaces/openai/parse.hpp"
#include "surfaces/surface.hpp"

namespace tailgate::server {

using providers::ParsedBody;
using surfaces::openai::is_client_credential_field;
using surfaces::openai::is_gateway_field;

inline std::variant<ParsedBody, ApiError> parse_body(std::string_view body, Endpoint endpoint) {
    return surfaces::surface_for(endpoint).parse(body);
}

// Azure's paths name the model group (a deployment) in the path; they serve only
// OpenAI's surfaces, whose parser takes the group from there.
inline std::variant<ParsedBody, ApiError> parse_body(std::string_view body, Endpoint endpoint,
                                                     std::string_view path_group) {
    if (path_group.empty()) return parse_body(body, endpoint);
    return surfaces::openai::parse_body(body, endpoint, path_group);
}

}  // namespace tailgate::server
