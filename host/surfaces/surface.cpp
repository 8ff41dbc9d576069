#include "surfaces/surface.hpp"

#include "surfaces/anthropic/messages.hpp"
#include "surfaces/openai/surfaces.hpp"
#include "surfaces/passthrough/surface.hpp"
#include "surfaces/responses/surface.hpp"

namespace tailgate::surfaces {

const Surface& surface_for(Endpoint op) {
    static const openai::Chat chat;
    static const openai::Completions completions;
    static const openai::Embeddings embeddings;
    static const responses::Surface responses;
    static const anthropic::Messages messages;
    if (const Surface* s = passthrough::surface_for(op)) return *s;  // one per providers/operations.hpp row
    switch (op) {
        case Endpoint::Responses: return responses;
        case Endpoint::Completions: return completions;
        case Endpoint::Embeddings: return embeddings;
        case Endpoint::Messages: return messages;
        default: return chat;
    }
}

bool native(const Surface& surface, const providers::Codec& codec) {
    return surface.wire() == codec.wire_for(surface.operation());
}

providers::EventSinkPtr sink_for(const Surface& surface, const providers::Codec& codec, bool stream) {
    if (native(surface, codec)) return nullptr;  // same wire: bytes pass through
    return surface.renderer(stream);
}

providers::EventSinkPtr sink_for(const Surface& surface, const providers::Codec& codec,
                                 const providers::ParsedBody& request, bool stream) {
    if (native(surface, codec)) return nullptr;
    return surface.renderer(request, stream);
}

}  // namespace tailgate::surfaces
