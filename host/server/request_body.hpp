// Parsing and rewriting of a client's request body.
//
// The body is forwarded byte for byte except two changes: `model` becomes the
// deployment's upstream model, and the gateway-only fields (fastest_response,
// fallbacks, num_retries, timeout, metadata, ...) are dropped. So we do not
// build a DOM and re-serialize: one SAX pass validates the JSON and records
// where each top-level member lies; the forwarded body is spliced from those
// spans, once per request, with the model prepended per attempt.
#pragma once

#include "common/api_error.hpp"
#include "common/vocabulary.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace tailgate::server {

struct ParsedBody {
    std::string model;          // as sent (may be a comma list)
    bool stream = false;
    bool fastest_response = false;
    std::optional<int> num_retries;
    std::optional<double> timeout_s;
    std::optional<double> stream_timeout_s;
    std::optional<std::vector<std::string>> fallbacks;  // model groups, in order
    std::vector<std::string> strategies;                 // per-request chain
    std::string overrides_json = "{}";  // gateway-only fields, as a JSON object
    std::string metadata_json = "{}";
    // The first field naming an upstream or its credentials (api_key, api_base,
    // base_url, ...), top level or inside extra_body; "" when none. The gateway
    // refuses such a request unless general_settings.allow_client_side_credentials.
    std::string client_credential;
    // The forwarded members without `model`, comma-joined, no braces: `"messages":[...],"stream":true`.
    std::string members;
    // Where each of them lies in `members` (key, [begin, end)), for dropping some per deployment.
    struct Span {
        std::string key;
        size_t begin = 0, end = 0;
    };
    std::vector<Span> spans;

    // The upstream body for one deployment; top-level fields named in `drop`
    // are left out (LiteLLM's drop_params / additional_drop_params).
    std::string body_for(std::string_view upstream_model, const std::vector<std::string>& drop = {}) const;
};

// True for fields the gateway consumes and never forwards.
bool is_gateway_field(std::string_view key);

// True for fields that would point a request at another upstream or carry
// credentials for one (LiteLLM's client-side credentials).
bool is_client_credential_field(std::string_view key);

std::variant<ParsedBody, ApiError> parse_body(std::string_view body, Endpoint endpoint);

}  // namespace tailgate::server
