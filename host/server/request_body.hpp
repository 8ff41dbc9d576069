// The server's names for the request parser, which lives with the OpenAI
// client surfaces (surfaces/openai/parse.hpp) and the internal request
// (providers/request.hpp).
#pragma once

#include "common/vocabulary.hpp"
#include "providers/operations.hpp"
#include "surfaces/openai/parse.hpp"
#include "surfaces/surface.hpp"

namespace tailgate::server {

using providers::ParsedBody;
using surfaces::openai::is_client_credential_field;
using surfaces::openai::is_gateway_field;

inline std::variant<ParsedBody, ApiError> parse_body(std::string_view body, Endpoint endpoint) {
    return surfaces::surface_for(endpoint).parse(body);
}

// Azure's paths name the model group (a deployment) in the path; for OpenAI's
// chat surfaces the shared parser takes the group from there, the others'
// surfaces (the pass-through endpoints) from parse_client_request. `content_type`:
// the request's header (a multipart form's boundary).
inline std::variant<ParsedBody, ApiError> parse_body(std::string_view body, Endpoint endpoint,
                                                     std::string_view path_group,
                                                     std::string_view content_type = {}) {
    const surfaces::Surface& surface = surfaces::surface_for(endpoint);
    if (!path_group.empty() && !providers::operation(endpoint).pass_through())
        return surfaces::openai::parse_body(body, endpoint, path_group);
    return surface.parse_client_request(body, content_type, path_group);
}

}  // namespace tailgate::server
