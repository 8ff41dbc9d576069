// What each client operation (Endpoint) looks like on OpenAI's wire: its path,
// how its request is sent and its response read, and which deployments can
// serve it. One row per Endpoint, in enum order.
//
// Adding an OpenAI endpoint the gateway passes through (moderations, images,
// audio): append an Endpoint (common/vocabulary.hpp, and tg_endpoint), a row
// here, and a row in the server's endpoint table (server/gateway.cpp, kRoutes).
// The row is all the rest reads: the client surface (surfaces/passthrough/),
// the OpenAI codec's path and decoder, the spend log's call type, which
// providers refuse it, and how the client's response is written.
#pragma once

#include "common/vocabulary.hpp"

#include <span>
#include <string_view>

namespace tailgate::providers {

// How a client sends the request body.
enum class RequestForm : uint8_t {
    Json,       // a JSON object
    Multipart,  // multipart/form-data (audio files, images to edit); `model` is a form field
};

// How the upstream answers, and so how the gateway reads it.
enum class ResponseForm : uint8_t {
    Events,      // JSON, or SSE events with stream=true, decoded by the codec (chat, responses, ...)
    JsonBody,    // one JSON object, passed through (moderations, images); with stream=true, raw bytes
    AnyBody,     // any body (json, text, srt, vtt), passed through with its content type; stream=true: raw bytes
    BinaryStream,  // raw bytes streamed as they come (audio), content type passed through; always a stream
};

struct Operation {
    Endpoint op;
    std::string_view path;       // appended to the deployment's base on OpenAI's wire
    std::string_view call_type;  // the spend log's call_type
    RequestForm request = RequestForm::Json;
    ResponseForm response = ResponseForm::Events;
    // Pass-through endpoints: the member (or form part) every request must have, and the
    // model group a request without `model` goes to ("" = `model` is required). A form
    // part also counts in its array form, `name[]` (several images to edit).
    std::string_view required = {};
    std::string_view default_model = {};
    // Served by providers of another wire through chat translation (Anthropic, Bedrock);
    // false: only OpenAI-wire deployments serve it, the others are refused before sending.
    bool via_chat = false;

    // A pass-through endpoint: the client's bytes go to OpenAI-wire deployments
    // as they are (model rewritten) and the answer comes back as it is.
    bool pass_through() const { return response != ResponseForm::Events; }
    // A stream of this operation is relayed byte for byte (no SSE parsing,
    // content type passed through, committed at the first byte).
    bool raw_stream() const { return response != ResponseForm::Events; }
};

// The row of `op`.
const Operation& operation(Endpoint op);
// Every row, in Endpoint order.
std::span<const Operation> operations();

}  // namespace tailgate::providers
