// The mock's Anthropic Messages API: POST /v1/messages (and /messages), whole
// bodies and the SSE event stream, tools, Anthropic's error shapes, and the
// checks of the x-api-key and anthropic-version headers. The timeline and the
// faults are the OpenAI side's (server.cpp plays the Reply the same way).
#pragma once

#include "behaviour.hpp"

#include <rapidjson/document.h>

#include <string>
#include <string_view>

namespace tailgate::mock {

// Builds the answer to a Messages request: 401/400 for missing or wrong
// headers, 400 for a body the real API refuses, else the reply to play.
Reply messages_reply(const rapidjson::Document& doc, const ReplyContext& ctx);

// {"type":"error","error":{"type","message"}}, its type following the status
// (529 overloaded_error, 429 rate_limit_error, ...).
std::string anthropic_error_body(int status, std::string_view message);

}  // namespace tailgate::mock
