// Incoming API surfaces: what a client speaks to the gateway. A surface turns a
// client request into the internal request (providers::ParsedBody) and, when
// the upstream's codec speaks another wire format, renders the normalized
// events back into the client's bytes. When both sides speak the same wire,
// the upstream's bytes pass through untouched and the events only feed the
// commit rule and metrics.
//
// A new surface (OpenAI Responses, Anthropic Messages) is a directory
// surfaces/<name>/ with a Surface subclass and a case in surface_for().
//
// The internal request is OpenAI chat: a surface of another wire keeps the
// client's members for codecs that speak its wire (native()), and gives them as
// chat (to_chat) for every other codec, once per request.
#pragma once

#include "common/api_error.hpp"
#include "providers/codec.hpp"
#include "providers/request.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <variant>

namespace tailgate::surfaces {

class Surface {
public:
    virtual ~Surface() = default;
    virtual Endpoint operation() const = 0;
    virtual providers::Wire wire() const = 0;
    // Client request -> internal request, or the client's 400.
    virtual std::variant<providers::ParsedBody, ApiError> parse(std::string_view body) const = 0;
    // The same with the request's Content-Type (a multipart form's boundary) and
    // the model group its path names (Azure's deployments; "" when none). What
    // the server calls; by default the body alone decides.
    virtual std::variant<providers::ParsedBody, ApiError> parse_client_request(std::string_view body,
                                                                        std::string_view content_type,
                                                                        std::string_view path_model) const {
        (void)content_type, (void)path_model;
        return parse(body);
    }
    // Normalized events -> client bytes: a stream's frames, or (stream = false)
    // the whole body once Done arrives. nullptr when the surface has no such response.
    virtual providers::EventSinkPtr renderer(bool stream) const = 0;
    // The same for one request, when the rendering depends on it (ids, echoed fields).
    virtual providers::EventSinkPtr renderer(const providers::ParsedBody& request, bool stream) const {
        (void)request;
        return renderer(stream);
    }
    // A failure after the commit point, as the client's stream reports it.
    virtual void stream_error(const ApiError& e, std::string& out) const = 0;
    // An error answer as the client's SDK reads it: its status and JSON body.
    virtual int error_status(const ApiError& e) const { return e.status; }
    virtual std::string error_body(const ApiError& e) const { return e.body(); }
    // The request as OpenAI chat, for the attempts whose codec does not speak the
    // surface's wire (OpenAI's forwards it, the others translate from chat); asked
    // once per request, only when its plan has such an attempt. By default the
    // form the parser made (ParsedBody::as_chat); a surface may make it here
    // instead, so that requests its own wire serves never pay for it. Null: none
    // (chat surfaces: their request is chat).
    virtual std::shared_ptr<const providers::ParsedBody> to_chat(const providers::ParsedBody& request) const {
        return request.as_chat;
    }
};

// Sees the bytes a client gets for one request, for a surface whose stream
// carries state of its own (numbering, a response id) or whose answers the
// gateway keeps (surfaces/responses/tap.hpp).
class ClientTap {
public:
    virtual ~ClientTap() = default;
    // Client bytes as they are written: stream frames, or the whole body.
    virtual void on_bytes(std::string_view bytes) = 0;
    // A failure after the commit point, continuing the stream the client reads.
    virtual void stream_error(const ApiError& e, std::string& out) = 0;
};

// The surface for an operation (shared, stateless instances).
const Surface& surface_for(Endpoint op);

// Whether a deployment's codec speaks the surface's wire for its operation.
bool native(const Surface& surface, const providers::Codec& codec);

// The sink one attempt's decoder gets: null when the codec speaks the surface's
// wire (pass-through), else the surface's renderer.
providers::EventSinkPtr sink_for(const Surface& surface, const providers::Codec& codec, bool stream);
providers::EventSinkPtr sink_for(const Surface& surface, const providers::Codec& codec,
                                 const providers::ParsedBody& request, bool stream);

}  // namespace tailgate::surfaces
