// The mock's Amazon Bedrock: POST /model/{modelId}/converse and
// /model/{modelId}/converse-stream. Requests must carry a valid AWS SigV4
// signature by the configured key (403 otherwise), or the configured Bedrock
// API key as a Bearer token; bodies are checked the way Converse checks them
// (alternating roles, no blank text, toolConfig whenever the history holds tool
// blocks); answers are a JSON body or binary event-stream frames
// (application/vnd.amazon.eventstream). The timeline and the faults are the
// OpenAI side's (server.cpp plays the Reply the same way).
#pragma once

#include "behaviour.hpp"

#include <chrono>
#include <string>
#include <string_view>

namespace tailgate::mock::bedrock {

// The Converse path's model id (percent-decoded) and whether it streams; false
// for any other path.
bool match(std::string_view path, std::string& model_id, bool& stream);

// "" when the request is authorized, else why not (for the 403 body).
std::string check_auth(const Settings& s, std::string_view method, std::string_view target, const Headers& headers,
                       std::string_view body, std::chrono::system_clock::time_point now);

// The answer to a Converse request (a 400 in Bedrock's shape for a body it refuses).
Reply converse_reply(std::string_view body, std::string_view model_id, bool stream, const ReplyContext& ctx);

// {"message": ...}: Bedrock's error body.
std::string error_body(int status, std::string_view message);

// One event-stream message with string headers.
std::string frame(const std::vector<std::pair<std::string, std::string>>& headers, std::string_view payload);

}  // namespace tailgate::mock::bedrock
