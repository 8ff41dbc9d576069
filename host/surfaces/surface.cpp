#include "surfaces/surface.hpp"

#include "surfaces/openai/surfaces.hpp"

namespace tailgate::surfaces {

const Surface& surface_for(providers::Operation op) {
    static const openai::Chat chat;
    static const openai::Completions completions;
    static const openai::Embeddings embeddings;
    switch (op) {
        case providers::Operation::Completions: return completions;
        case providers::Operation::Embeddings: return embeddings;
        default: return chat;
    }
}

providers::EventSinkPtr sink_for(const Surface& surface, const providers::Codec& codec, bool stream) {
    if (surface.wire() == codec.wire()) return nullptr;  // same wire: bytes pass through
    return surface.renderer(stream);
}

}  // namespace tailgate::surfaces
