// Per-request options read from the body, turned into bounded values before
// anything is built from them: the model list and the request's timeouts.
#pragma once

#include "common/api_error.hpp"
#include "config/config.hpp"
#include "server/request_body.hpp"
#include "server/upstream_transport.hpp"

#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace tailgate::server {

// LiteLLM's model lists ("a, b"): at most kMaxAttempts entries, counted
// before any is built; each entry trimmed of spaces in one pass; an empty
// entry is a 400.
std::variant<std::vector<std::string>, ApiError> split_model_list(std::string_view model);

// A request's timeout / stream_timeout (seconds, > 0 and finite: parse_body
// refuses the rest) as whole milliseconds in [1 ms, max]. The clamp happens
// before the conversion, so no value overflows it and none means "no deadline".
RequestTimeouts request_timeouts(const ParsedBody& body, config::Millis max);

}  // namespace tailgate::server
