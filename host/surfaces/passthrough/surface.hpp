// OpenAI's pass-through endpoints as a client surface: /v1/moderations,
// /v1/images/generations, /v1/audio/speech, /v1/audio/transcriptions and
// /v1/audio/translations. One class, configured by the endpoint's row of
// providers/operations.hpp: the body is checked only as far as routing needs
// (JSON: valid, `model` and the required member; multipart: a well-formed form
// with its `model` and `file` parts) and is forwarded to OpenAI-wire
// deployments as it came, model rewritten. Nothing is rendered: the answer's
// bytes are the upstream's.
#pragma once

#include "providers/operations.hpp"
#include "surfaces/surface.hpp"

namespace tailgate::surfaces::passthrough {

class Surface final : public surfaces::Surface {
public:
    explicit Surface(const providers::Operation& op) : op_(op) {}
    Endpoint operation() const override { return op_.op; }
    providers::Wire wire() const override { return providers::Wire::OpenAI; }
    std::variant<providers::ParsedBody, ApiError> parse(std::string_view body) const override {
        return parse_client_request(body, {}, {});
    }
    std::variant<providers::ParsedBody, ApiError> parse_client_request(std::string_view body, std::string_view content_type,
                                                                std::string_view path_model) const override;
    providers::EventSinkPtr renderer(bool) const override { return nullptr; }
    // A raw stream has no error event: the exchange ends it by closing the connection.
    void stream_error(const ApiError&, std::string&) const override {}
    int error_status(const ApiError& e) const override { return e.status == 529 ? 503 : e.status; }

private:
    const providers::Operation& op_;
};

// The surface of a pass-through operation; null for the others.
const surfaces::Surface* surface_for(Endpoint op);

// A multipart request's form -> the internal request (model, stream, the form kept whole).
std::variant<providers::ParsedBody, ApiError> parse_form(std::string_view body, std::string_view content_type,
                                                         const providers::Operation& op,
                                                         std::string_view path_model = {});

}  // namespace tailgate::surfaces::passthrough
