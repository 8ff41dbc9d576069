#include "providers/operations.hpp"

#include <iterator>

namespace tailgate::providers {

namespace {

using RF = ResponseForm;

constexpr Operation kOperations[] = {
    {Endpoint::Chat, "/chat/completions", "chat", RequestForm::Json, RF::Events, {}, {}, true},
    {Endpoint::Completions, "/completions", "completions", RequestForm::Json, RF::Events, {}, {}, true},
    {Endpoint::Embeddings, "/embeddings", "embeddings", RequestForm::Json, RF::Events, {}, {}, false},
    {Endpoint::Responses, "/responses", "responses", RequestForm::Json, RF::Events, {}, {}, true},
    // Sent to OpenAI-wire deployments as chat (Surface::to_chat), never on this path.
    {Endpoint::Messages, "/chat/completions", "messages", RequestForm::Json, RF::Events, {}, {}, true},
    // OpenAI's default moderation model: what a request without `model` asks for, as with OpenAI.
    {Endpoint::Moderations, "/moderations", "moderation", RequestForm::Json, RF::JsonBody, "input",
     "omni-moderation-latest"},
    {Endpoint::ImageGenerations, "/images/generations", "image_generation", RequestForm::Json, RF::JsonBody,
     "prompt"},
    {Endpoint::AudioSpeech, "/audio/speech", "speech", RequestForm::Json, RF::BinaryStream, "input"},
    {Endpoint::AudioTranscriptions, "/audio/transcriptions", "transcription", RequestForm::Multipart, RF::AnyBody,
     "file"},
    {Endpoint::AudioTranslations, "/audio/translations", "translation", RequestForm::Multipart, RF::AnyBody, "file"},
    // Answered like generations (one JSON object, usage read for gpt-image-1's price). `model`
    // is required: OpenAI's default (dall-e-2) is no group name a gateway can assume.
    {Endpoint::ImageEdits, "/images/edits", "image_edit", RequestForm::Multipart, RF::JsonBody, "image"},
    {Endpoint::ImageVariations, "/images/variations", "image_variation", RequestForm::Multipart, RF::JsonBody,
     "image"},
};

constexpr bool in_enum_order() {
    for (size_t i = 0; i < std::size(kOperations); ++i)
        if (static_cast<size_t>(kOperations[i].op) != i) return false;
    return true;
}
static_assert(std::size(kOperations) == kEndpointCount, "one operation row per Endpoint");
static_assert(in_enum_order(), "operation rows in Endpoint order");

}  // namespace

const Operation& operation(Endpoint op) {
    const auto i = static_cast<size_t>(op);
    return kOperations[i < std::size(kOperations) ? i : 0];
}

std::span<const Operation> operations() { return kOperations; }

}  // namespace tailgate::providers
