#include "surfaces/surface.hpp"

#include "surfaces/openai/surfaces.hpp"

namespace tailgate::surfaces {

const Surface& surface_for(Endpoint op) {
    static const openai::Chat chat;
    static const openai::Completions completions;
    static const openai::Embeddings embeddings;
    switch (op) {
        case Endpoint::Completions: return completions;
        case Endpoint::Embeddings: return embeddings;
        default: return chat;
    }
}

providers::EventSinkPtr sink_for(const Surface& surface, const providers::Codec& codec, bool stream) {
    if (surface.wire() == codec.wire()) return nullptr;  // same wire: bytes pass through
    return surface.renderer(stream);
}

}  // namespace tailgate::surfaces
