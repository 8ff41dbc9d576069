// A Responses API request as a chat completions body, for deployments that do
// not serve the Responses API: instructions and input items become messages,
// function tools and their calls/results map one to one, text.format becomes
// response_format, reasoning.effort reasoning_effort, max_output_tokens
// max_tokens. What has no chat equivalent (built-in tools, item references,
// file ids for images) is refused with the reason, never dropped silently.
#pragma once

#include "providers/request.hpp"

#include <rapidjson/document.h>

#include <string>
#include <variant>

namespace tailgate::surfaces::responses {

// `request`: the client's body (an object); `items`: the whole conversation
// as input items (previous turns included). Returns the chat body's members,
// or why the request cannot be put as chat completions.
std::variant<providers::ParsedBody, std::string> to_chat(const rapidjson::Value& request,
                                                          const rapidjson::Value& items, bool stream);

}  // namespace tailgate::surfaces::responses
