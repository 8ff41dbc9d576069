// Incremental Server-Sent-Events framing for relayed upstream streams.
//
// The executor needs three facts from an upstream SSE stream without delaying
// the bytes: when the first event carrying content arrives (the commit point
// of a race/hedge), whether the stream ended with `data: [DONE]`, and whether
// the upstream sent an in-stream error object. It also frames the stream for
// the relay: only complete, well-formed events are handed on (`Result::ready`),
// so a client never sees a half event or a data line that is not JSON (the
// OpenAI SDK would raise a JSON decode error instead of an APIError).
#pragma once

#include <rapidjson/document.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace tailgate::dispatch {

class SseScanner {
public:
    struct Result {
        bool content = false;  // an event in this feed carried content / a tool call
        bool done = false;     // `data: [DONE]` seen
        bool error = false;    // an event with a top-level "error" object
        bool malformed = false;  // an event whose data is neither JSON nor [DONE]; scanning stopped there
        // The complete events of this feed (and earlier partial ones) up to a
        // malformed one, byte for byte. Views the fed bytes or the scanner's own
        // buffer: valid until the next feed and while the fed bytes live.
        std::string_view ready;
    };

    // Feeds the next bytes; events may be split anywhere. Once an event was
    // malformed, later feeds are ignored.
    Result feed(std::string_view bytes);

    bool saw_done() const { return done_; }
    bool saw_error() const { return error_; }
    const std::string& error_event() const { return error_data_; }
    bool saw_malformed() const { return malformed_; }
    // The start of the malformed event's data (for error messages).
    const std::string& malformed_data() const { return malformed_data_; }
    // Bytes of an incomplete event held back (not in any `ready` yet).
    size_t pending() const { return partial_.size(); }
    // Tokens from the last "usage" object seen, -1 when none.
    int64_t prompt_tokens() const { return prompt_tokens_; }
    int64_t completion_tokens() const { return completion_tokens_; }

    // True when the JSON `data` of one event carries generated content:
    // chat delta content/refusal/tool_calls/function_call, or completion text.
    static bool has_content(std::string_view json);

private:
    // False when the event is malformed.
    bool on_event(std::string_view event, Result& r);
    // Scans the events of `all` from `from`; returns the end of the last good one.
    size_t scan(std::string_view all, size_t from, Result& r);

    std::string partial_;  // an incomplete event carried over between feeds
    std::string ready_;    // `ready` when it spans a carried-over event
    bool done_ = false;
    bool error_ = false;
    bool malformed_ = false;
    std::string error_data_;
    std::string malformed_data_;
    int64_t prompt_tokens_ = -1;
    int64_t completion_tokens_ = -1;
};

// Reads usage.{prompt,completion}_tokens from a JSON body; -1 when absent.
void read_usage(std::string_view json, int64_t& prompt, int64_t& completion);
void read_usage(const rapidjson::Value& doc, int64_t& prompt, int64_t& completion);

}  // namespace tailgate::dispatch
