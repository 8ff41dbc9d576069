// Incremental Server-Sent-Events framing for relayed upstream streams.
//
// The executor needs three facts from an upstream SSE stream without delaying
// the bytes: when the first event carrying content arrives (the commit point
// of a race/hedge), whether the stream ended with `data: [DONE]`, and whether
// the upstream sent an in-stream error object. Bytes are relayed raw; this
// class only looks at them.
#pragma once

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
    };

    // Feeds the next bytes; events may be split anywhere.
    Result feed(std::string_view bytes);

    bool saw_done() const { return done_; }
    bool saw_error() const { return error_; }
    const std::string& error_event() const { return error_data_; }
    // Tokens from the last "usage" object seen, -1 when none.
    int64_t prompt_tokens() const { return prompt_tokens_; }
    int64_t completion_tokens() const { return completion_tokens_; }

    // True when the JSON `data` of one event carries generated content:
    // chat delta content/refusal/tool_calls/function_call, or completion text.
    static bool has_content(std::string_view json);

private:
    void on_event(std::string_view event, Result& r);

    std::string partial_;  // an incomplete event carried over between feeds
    bool done_ = false;
    bool error_ = false;
    std::string error_data_;
    int64_t prompt_tokens_ = -1;
    int64_t completion_tokens_ = -1;
};

// Reads usage.{prompt,completion}_tokens from a JSON body; -1 when absent.
void read_usage(std::string_view json, int64_t& prompt, int64_t& completion);

}  // namespace tailgate::dispatch
