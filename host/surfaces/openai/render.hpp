// Normalized events -> OpenAI wire bytes: chat.completion.chunk /
// text_completion SSE frames for a stream, or the whole chat.completion /
// text_completion object once Done arrives. Used only when the upstream's codec
// speaks another wire format; an OpenAI upstream's bytes pass through.
#pragma once

#include "providers/codec.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace tailgate::surfaces::openai {

class Renderer final : public providers::EventSink {
public:
    enum class Shape : uint8_t { Chat, Completion };
    Renderer(Shape shape, bool stream);

    void on_event(const providers::Event& e) override;
    void take(std::string& out) override;

private:
    struct Tool {
        uint32_t index = 0;
        std::string id, name, arguments;
    };
    struct Choice {
        std::string text;
        std::string reasoning;
        std::string finish_reason;
        std::vector<Tool> tools;
    };

    void frame_begin(std::string& out) const;  // `data: {"id":..,"object":..,"created":..,"model":..,`
    void stream_event(const providers::Event& e);
    void chat_delta(const providers::Event& e);
    void stream_end();
    void collect_event(const providers::Event& e);
    void write_body();
    Choice& choice(uint32_t index);
    void usage_json(std::string& out) const;

    Shape shape_;
    bool stream_;
    std::string id_ = "tailgate-translated";
    std::string model_;
    int64_t created_;
    providers::Usage usage_;
    bool usage_pending_ = false;  // streams: reported, not yet rendered
    std::vector<Choice> choices_;  // whole-body mode
    std::string out_;
};

}  // namespace tailgate::surfaces::openai
