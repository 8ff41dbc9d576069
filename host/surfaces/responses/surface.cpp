#include "surfaces/responses/surface.hpp"

#include "surfaces/responses/render.hpp"
#include "surfaces/responses/request.hpp"

namespace tailgate::surfaces::responses {

std::variant<providers::ParsedBody, ApiError> Surface::parse(std::string_view body) const {
    return parse_request(body);
}

providers::EventSinkPtr Surface::renderer(const providers::ParsedBody& request, bool stream) const {
    if (!request.context) return nullptr;
    return std::make_unique<Renderer>(std::static_pointer_cast<const Context>(request.context), stream);
}

void error_event(const ApiError& e, uint64_t sequence_number, std::string& out) {
    out += "event: error\ndata: {\"type\":\"error\",\"code\":";
    out += json_quote(e.code.empty() ? e.type : e.code);
    out += ",\"message\":";
    out += json_quote(e.message);
    out += ",\"param\":";
    out += e.param.empty() ? std::string("null") : json_quote(e.param);
    out += ",\"sequence_number\":";
    out += std::to_string(sequence_number);
    out += "}\n\n";
}

void Surface::stream_error(const ApiError& e, std::string& out) const { error_event(e, 0, out); }

}  // namespace tailgate::surfaces::responses
