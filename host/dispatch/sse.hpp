// The OpenAI stream decoder under its earlier name and interface, for the SSE
// unit tests and fuzzers. The executor no longer uses it: it reads every
// response through the attempt's providers::ResponseDecoder.
#pragma once

#include "providers/codec.hpp"

#include <rapidjson/document.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace tailgate::dispatch {

class SseScanner {
public:
    struct Result {
        bool content = false;    // an event in this feed carried content / a tool call
        bool done = false;       // `data: [DONE]` seen
        bool error = false;      // an event with a top-level "error" object
        bool malformed = false;  // an event whose data is neither JSON nor [DONE]; scanning stopped there
        std::string_view ready;  // the complete events of this feed, byte for byte (see Decoded::client)
    };

    SseScanner();
    Result feed(std::string_view bytes);

    bool saw_done() const { return decoder_->saw_done(); }
    bool saw_error() const { return decoder_->stream_error() != nullptr; }
    // The error event's message.
    const std::string& error_event() const;
    bool saw_malformed() const { return malformed_; }
    const std::string& malformed_data() const { return decoder_->malformed_excerpt(); }
    size_t pending() const { return decoder_->pending(); }
    int64_t prompt_tokens() const { return decoder_->usage().prompt_tokens; }
    int64_t completion_tokens() const { return decoder_->usage().completion_tokens; }

    // True when the JSON `data` of one event carries generated content.
    static bool has_content(std::string_view json);

private:
    providers::ResponseDecoderPtr decoder_;
    bool malformed_ = false;
};

// Reads usage.{prompt,completion}_tokens from a JSON body; -1 when absent.
void read_usage(std::string_view json, int64_t& prompt, int64_t& completion);
void read_usage(const rapidjson::Value& doc, int64_t& prompt, int64_t& completion);

}  // namespace tailgate::dispatch
