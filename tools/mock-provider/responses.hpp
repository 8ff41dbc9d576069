// The mock's OpenAI Responses API (POST /v1/responses, and Azure's
// /openai/responses): a Response object, or its typed event stream on the same
// timeline as chat (created + in_progress with the headers, one output delta per
// step, the closing events and response.completed in the tail), so every
// latency and fault knob applies unchanged.
#pragma once

#include "behaviour.hpp"

#include <rapidjson/document.h>

namespace tailgate::mock {

Reply responses_reply(const rapidjson::Document& doc, const Route& r, const ReplyContext& ctx);

// True for the tail event that ends a Responses stream (the `no_done` garbage mode drops it).
bool is_responses_end(std::string_view event);

}  // namespace tailgate::mock
