// Anthropic's Messages API as a client surface: POST /v1/messages.
//
// Routed like chat by `model` (a model group); the gateway-only fields
// (fastest_response, fallbacks, num_retries, ...) are read as on the OpenAI
// surfaces, `metadata` is Messages' own and is forwarded. To an anthropic/
// deployment the body goes as it came (model rewritten) and its bytes come back
// as they are; to any other deployment it is translated to chat (to_chat.cpp)
// and the answer rendered back as Messages (render.cpp). Errors have
// Anthropic's shape: {"type":"error","error":{"type","message"}}.
#pragma once

#include "surfaces/surface.hpp"

namespace tailgate::surfaces::anthropic {

class Messages final : public Surface {
public:
    Endpoint operation() const override { return Endpoint::Messages; }
    providers::Wire wire() const override { return providers::Wire::Anthropic; }
    std::variant<providers::ParsedBody, ApiError> parse(std::string_view body) const override;
    providers::EventSinkPtr renderer(bool stream) const override;
    void stream_error(const ApiError& e, std::string& out) const override;
    std::string error_body(const ApiError& e) const override;
    std::shared_ptr<const providers::ParsedBody> to_chat(const providers::ParsedBody& request) const override;
};

// The translation itself (to_chat.cpp): Messages members -> chat members.
// system -> a system message; tool_use blocks -> tool_calls; tool_result blocks
// -> tool messages (ahead of the rest of their user turn); image and PDF
// document blocks -> image_url / file parts; tools, tool_choice, stop_sequences,
// metadata.user_id -> their chat names; output_config's format and effort ->
// response_format and reasoning_effort. Not carried: thinking (and thinking
// blocks), top_k, server tools, citations.
providers::ParsedBody messages_to_chat(const providers::ParsedBody& messages);

}  // namespace tailgate::surfaces::anthropic
