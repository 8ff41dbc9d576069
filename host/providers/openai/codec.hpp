// OpenAI's wire format, and every provider that speaks it (groq, together_ai,
// deepseek, hosted_vllm, ollama: see registry.cpp): Bearer auth, `<base>/chat/
// completions` etc., the client's body forwarded with `model` rewritten, SSE
// chunks relayed as they are.
#pragma once

#include "providers/codec.hpp"

#include <rapidjson/document.h>

namespace tailgate::providers::openai {

class Codec : public providers::Codec {
public:
    // responses_api: the upstream serves OpenAI's Responses API too (OpenAI, Azure);
    // other OpenAI-compatible providers get Responses requests as chat completions.
    explicit Codec(bool responses_api = false) : responses_api_(responses_api) {}
    std::string_view name() const override { return "openai"; }
    Wire wire() const override { return Wire::OpenAI; }
    Wire wire_for(Endpoint op) const override {
        return op == Endpoint::Responses && responses_api_ ? Wire::OpenAIResponses : Wire::OpenAI;
    }
    void build(const CallSpec& call, upstream::Request& out) const override;
    ResponseDecoderPtr decoder(EventSinkPtr sink) const override;
    ResponseDecoderPtr decoder(Endpoint op, EventSinkPtr sink) const override;
    UpstreamError decode_error(const upstream::ResponseHead& head, std::string_view body) const override;

    // Path suffix per operation, e.g. "/chat/completions" (providers/operations.hpp).
    static const char* path_for(Endpoint op);

protected:
    // The request target's query and the auth header: what OpenAI-compatible
    // providers differ in.
    virtual void address(const CallSpec& call, upstream::Request& out) const;
    // The request target's path: base path + path_for(op).
    virtual void path(const CallSpec& call, upstream::Request& out) const;

private:
    bool responses_api_;
};

// The shared instances (codecs are stateless): OpenAI-compatible providers, and
// OpenAI itself (with the Responses API).
const providers::Codec& codec();
const providers::Codec& native_codec();
// A decoder of Responses API streams and bodies, passed through to the client.
ResponseDecoderPtr responses_decoder();
// A decoder of the pass-through endpoints' answers (passthrough_decoder.cpp):
// streams byte for byte; whole bodies must be a JSON object when `json_body`.
ResponseDecoderPtr passthrough_decoder(bool json_body);

// An error status's class; `body` is searched for context-length wording.
ErrorClass classify_status(int status, std::string_view body);
// The upstream's own error message when its body is OpenAI-shaped, else the
// body's start; scrubbed of credentials.
std::string upstream_message(std::string_view body);
// Reads usage.{prompt,completion}_tokens; leaves `u` alone where absent.
void read_usage(const rapidjson::Value& doc, Usage& u);
// Reads usage.{input,output}_tokens (a Response object's, the image API's);
// leaves `u` alone where absent.
void read_response_usage(const rapidjson::Value& doc, Usage& u);
// A whole 2xx body that must be one JSON object, parsed into `d`: out.ok and
// its usage (read_usage) when it is, else out.problem. Returns out.ok.
bool read_object_body(std::string_view body, rapidjson::Document& d, BodyDecoded& out);
// True when a chunk carries generated content: chat delta content / refusal /
// reasoning / tool_calls / function_call, or completion text.
bool has_content(const rapidjson::Value& chunk);

}  // namespace tailgate::providers::openai
