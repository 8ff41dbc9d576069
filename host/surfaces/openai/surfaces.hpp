// OpenAI's client surfaces: /v1/chat/completions, /v1/completions, /v1/embeddings.
#pragma once

#include "surfaces/surface.hpp"

namespace tailgate::surfaces::openai {

class OpenAISurface : public Surface {
public:
    explicit OpenAISurface(Endpoint op) : op_(op) {}
    Endpoint operation() const override { return op_; }
    providers::Wire wire() const override { return providers::Wire::OpenAI; }
    std::variant<providers::ParsedBody, ApiError> parse(std::string_view body) const override;
    void stream_error(const ApiError& e, std::string& out) const override;
    // Statuses OpenAI's clients do not know, as the nearest they do (Anthropic's 529 overloaded: 503).
    int error_status(const ApiError& e) const override { return e.status == 529 ? 503 : e.status; }

private:
    Endpoint op_;
};

class Chat final : public OpenAISurface {
public:
    Chat() : OpenAISurface(Endpoint::Chat) {}
    providers::EventSinkPtr renderer(bool stream) const override;
};

class Completions final : public OpenAISurface {
public:
    Completions() : OpenAISurface(Endpoint::Completions) {}
    providers::EventSinkPtr renderer(bool stream) const override;
};

// Embeddings are a single vector body, never a stream; a translating codec
// returns them already in OpenAI's shape, so there is nothing to render.
class Embeddings final : public OpenAISurface {
public:
    Embeddings() : OpenAISurface(Endpoint::Embeddings) {}
    providers::EventSinkPtr renderer(bool) const override { return nullptr; }
};

}  // namespace tailgate::surfaces::openai
