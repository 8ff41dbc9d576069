// OpenAI's Responses API as a client surface: POST /v1/responses.
//
// Deployments that serve the Responses API (providers::Codec::wire_for) get the
// client's body (model rewritten, gateway fields and previous_response_id
// resolved) and their typed events pass through; the others get the chat form
// (request.hpp, translate.hpp) and their events are rendered back (render.hpp).
#pragma once

#include "surfaces/surface.hpp"

namespace tailgate::surfaces::responses {

class Surface final : public surfaces::Surface {
public:
    Endpoint operation() const override { return Endpoint::Responses; }
    providers::Wire wire() const override { return providers::Wire::OpenAIResponses; }
    std::variant<providers::ParsedBody, ApiError> parse(std::string_view body) const override;
    // Needs the request (its response id and echoed fields): see the overload.
    providers::EventSinkPtr renderer(bool) const override { return nullptr; }
    providers::EventSinkPtr renderer(const providers::ParsedBody& request, bool stream) const override;
    void stream_error(const ApiError& e, std::string& out) const override;
};

// The Responses API's `error` event for a failure after the stream started.
// `sequence_number` continues the stream's numbering.
void error_event(const ApiError& e, uint64_t sequence_number, std::string& out);

}  // namespace tailgate::surfaces::responses
