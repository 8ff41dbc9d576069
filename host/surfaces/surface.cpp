#include "surfaces/surface.hpp"

#include "surfaces/anthropic/messages.hpp"
#include "surfaces/openai/surfaces.hpp"

namespace tailgate::surfaces {

const Surface& surface_for(Endpoint op) {
    static const openai::Chat chat;
    static const openai::Completions completions;
    static const openai::Embeddings embeddings;
    static const anthropic::Messages messages;
    switch (op) {
        case Endpoint::Completions: return completions;
        case Endpoint::Embeddings: return embeddings;
        case Endpoint::Messages: return messages;
        default: return chat;
    }
}

providers::EventSinkPtr sink_for(const Surface& surface, const providers::Codec& codec, bool stream) {
    if (surface.wire() == codec.wire()) return nullptr;  // same wire: bytes pass through
    return surface.renderer(stream);
}

}  // namespace tailgate::surfaces
