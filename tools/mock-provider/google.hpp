// The mock's Google side, for vertex_ai/ deployments: an OAuth token endpoint
// (POST /token) that verifies a service account's RS256-signed JWT with the
// public key it was given (--google-public-key) and issues short-lived access
// tokens (token_ttl_s), and the check that Vertex's OpenAI-compatible paths
// (/v1/projects/{p}/locations/{l}/endpoints/openapi/...) carry one of them.
#pragma once

#include "behaviour.hpp"

#include <string>
#include <string_view>

namespace tailgate::mock::google {

bool is_token_path(std::string_view path);

// The token endpoint's answer: 200 with {"access_token","expires_in","token_type"},
// or 400 {"error":"invalid_grant","error_description"} for a bad assertion.
Reply token_reply(const Settings& s, std::string_view form_body);

// Vertex's path with its project/location prefix removed ("/chat/completions"), or
// the path unchanged when it is not one.
std::string_view strip_vertex_prefix(std::string_view path, bool& vertex);

// "" when the request's Bearer token is one this mock issued and unexpired (or
// no public key is configured: nothing to check), else why not.
std::string check_token(const Settings& s, const Headers& headers);

// Google's error body {"error":{"code","message","status"}}.
std::string error_body(int status, std::string_view message);

}  // namespace tailgate::mock::google
