// Normalized events -> Anthropic Messages bytes: the event stream
// (message_start, content_block_start / _delta / _stop, message_delta,
// message_stop) or, once Done arrives, the whole message. Used when the
// upstream speaks another wire (OpenAI's); an Anthropic upstream's bytes pass
// through. Messages has one answer: events of choices other than 0 are dropped.
#pragma once

#include "providers/codec.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace tailgate::surfaces::anthropic {

class Renderer final : public providers::EventSink {
public:
    explicit Renderer(bool stream) : stream_(stream) {}

    void on_event(const providers::Event& e) override;
    void take(std::string& out) override;

private:
    enum class Open : uint8_t { None, Text, Tool, Thinking };
    // A content block of the whole message.
    struct Block {
        Open kind = Open::Text;
        std::string text;  // text, thinking, or a tool call's arguments (JSON text)
        std::string id, name;
    };

    // Streams.
    void message_start();
    void open_block(Open kind);  // a text or thinking block
    void open_tool(const providers::Event::ToolCall& t);
    void delta(std::string_view type, std::string_view field, std::string_view text);
    void close_block();
    void stream_event(const providers::Event& e);
    void message_end();
    // Whole bodies.
    void collect(const providers::Event& e);
    void write_message();
    void write_block(const Block& b);
    void usage_json(std::string& out, bool with_input) const;

    bool stream_;
    bool started_ = false;     // message_start written
    Open open_ = Open::None;   // the block being streamed
    uint32_t blocks_ = 0;      // content blocks started so far
    uint32_t open_tool_ = 0;   // the chat tool-call index of an open tool block
    std::string id_ = "msg_tailgate";
    std::string model_;
    std::string stop_reason_ = "end_turn";
    providers::Usage usage_;
    std::vector<Block> content_;  // whole-body mode
    std::string out_;
};

// The Anthropic error type for a gateway error (by status), e.g. "overloaded_error".
const char* error_type(int status);

}  // namespace tailgate::surfaces::anthropic
