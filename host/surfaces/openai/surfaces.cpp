#include "surfaces/openai/surfaces.hpp"

#include "surfaces/openai/parse.hpp"
#include "surfaces/openai/render.hpp"

namespace tailgate::surfaces::openai {

std::variant<providers::ParsedBody, ApiError> OpenAISurface::parse(std::string_view body) const {
    return parse_body(body, op_);
}

// The OpenAI SDK raises APIError for a data event whose JSON has an "error" object.
void OpenAISurface::stream_error(const ApiError& e, std::string& out) const {
    out += "data: ";
    out += e.body();
    out += "\n\n";
}

providers::EventSinkPtr Chat::renderer(bool stream) const {
    return std::make_unique<Renderer>(Renderer::Shape::Chat, stream);
}

providers::EventSinkPtr Completions::renderer(bool stream) const {
    return std::make_unique<Renderer>(Renderer::Shape::Completion, stream);
}

}  // namespace tailgate::surfaces::openai
