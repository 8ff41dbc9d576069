// The Responses API request (POST /v1/responses): parsed into the internal
// request twice over: as itself, forwarded to deployments that speak the
// Responses API, and as a chat completions body (ParsedBody::as_chat) for the
// others. What the renderer and the response store need of it is the
// request's Context.
#pragma once

#include "common/api_error.hpp"
#include "providers/request.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>

namespace tailgate::surfaces::responses {

struct Context final : providers::SurfaceContext {
    std::string id;               // "resp_…": the id a translated answer gets (native ones keep the upstream's)
    int64_t created_at = 0;       // seconds since the epoch
    std::string model;            // as requested
    bool store = true;            // keep the response (OpenAI's default)
    bool stream = false;
    std::string previous_response_id;
    std::string input_items;      // this request's own input as a JSON array of items (what input_items lists)
    // The request fields a Response object repeats, as JSON members without
    // braces: "instructions":…,"max_output_tokens":…,…,"user":….
    std::string echo;
};

// One earlier turn of a conversation (previous_response_id), oldest first: the
// turn's own input items and the output items it produced, as JSON arrays.
struct Turn {
    std::string input_items;
    std::string output;
};

// Client body -> internal request. `history` holds the turns before this
// request when it names a previous_response_id (the gateway keeps the
// conversation: every deployment gets it in full, whoever produced it).
std::variant<providers::ParsedBody, ApiError> parse_request(std::string_view body,
                                                            std::span<const Turn> history = {});

// The context of a request parse_request() accepted.
const Context& context_of(const providers::ParsedBody& body);

// A new id with the given prefix ("resp_", "msg_"): 24 random hex digits.
std::string new_id(std::string_view prefix);

}  // namespace tailgate::surfaces::responses
