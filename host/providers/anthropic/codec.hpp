// Anthropic's Messages API (`anthropic/` in the config): POST <base>/messages
// with `x-api-key` and `anthropic-version` headers.
//
// A request that came in as Messages is forwarded as it is, `model` rewritten;
// a chat (or legacy completions) request is translated (chat_to_messages.cpp),
// and so is any other surface's, in its chat form (ParsedBody::as_chat). Responses are read by a decoder of the
// Messages event stream (decoder.cpp): it finds the commit point (the first
// content_block_delta), the end (message_stop), usage and error events, and,
// for a client of another wire, hands on normalized Events to its renderer.
#pragma once

#include "providers/codec.hpp"
#include "providers/operations.hpp"

#include <string>
#include <string_view>

namespace tailgate::providers::anthropic {

// Sent when the deployment sets no api_version.
inline constexpr std::string_view kDefaultVersion = "2023-06-01";
// Messages requires max_tokens; chat requests often leave it out.
inline constexpr int64_t kDefaultMaxTokens = 4096;

class Codec final : public providers::Codec {
public:
    std::string_view name() const override { return "anthropic"; }
    Wire wire() const override { return Wire::Anthropic; }
    // What it can answer through chat translation (no embeddings, no pass-through endpoints).
    bool serves(Endpoint op) const override { return operation(op).via_chat; }
    // api_base may name the origin (LiteLLM's habit), `.../v1` or `.../v1/messages`.
    std::string resolve(std::string& base_path, std::string& api_version,
                        std::string_view upstream_model) const override;
    void build(const CallSpec& call, upstream::Request& out) const override;
    ResponseDecoderPtr decoder(EventSinkPtr sink) const override;
    UpstreamError decode_error(const upstream::ResponseHead& head, std::string_view body) const override;
};

const providers::Codec& codec();

// A chat (or completions: `prompt`) request as a Messages body for `model`.
// Fields named in `dropped` are left out; fields Messages has no word for are
// too (n, logprobs, penalties, seed, ...). response_format (JSON schema or
// object) and reasoning_effort become output_config's format and effort.
std::string messages_body(const ParsedBody& chat, std::string_view model, bool stream,
                          const std::vector<std::string>& dropped);

// Anthropic's error type (`error.type`) and status as the gateway's class.
ErrorClass classify(int status, std::string_view error_type, std::string_view message);

// Messages' stop_reason as a chat finish_reason, and back.
std::string_view finish_reason(std::string_view stop_reason);
std::string_view stop_reason(std::string_view finish_reason);

}  // namespace tailgate::providers::anthropic
