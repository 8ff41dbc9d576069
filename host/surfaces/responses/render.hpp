// Normalized events (from a chat completions deployment) -> the Responses API:
// a stream of typed events (response.created, response.in_progress,
// response.output_item.added, response.content_part.added,
// response.output_text.delta/.done, response.function_call_arguments.delta/
// .done, response.output_item.done, response.completed or
// response.incomplete), numbered from 0 as the SDK's stream helper expects, or
// the whole Response object once Done arrives.
#pragma once

#include "providers/codec.hpp"
#include "surfaces/responses/request.hpp"

#include <memory>
#include <string>
#include <vector>

namespace tailgate::surfaces::responses {

class Renderer final : public providers::EventSink {
public:
    Renderer(std::shared_ptr<const Context> ctx, bool stream);

    void on_event(const providers::Event& e) override;
    void take(std::string& out) override;

private:
    struct Item {
        bool call = false;      // a function_call, else an assistant message
        std::string id;         // msg_… / fc_…
        std::string text;       // the message's text, or the call's arguments
        std::string call_id, name;
        uint32_t tool_index = 0;
        bool done = false;
    };

    void begin();
    void text_delta(std::string_view delta);
    void tool_delta(const providers::Event::ToolCall& t);
    void close(Item& item);
    void close_all();  // in output order
    void end();

    // `event: <type>` + `data: {"type":…,"sequence_number":…,<body>}`.
    void event(std::string_view type, const std::string& body);
    std::string response_json(std::string_view status) const;
    std::string item_json(const Item& item) const;
    std::string status() const;  // completed / incomplete, from the finish reason
    uint32_t output_index(const Item& item) const { return static_cast<uint32_t>(&item - items_.data()); }

    std::shared_ptr<const Context> ctx_;
    bool stream_;
    bool begun_ = false;
    uint64_t seq_ = 0;
    std::string model_;
    std::string finish_;
    providers::Usage usage_;
    std::vector<Item> items_;
    std::string out_;
};

}  // namespace tailgate::surfaces::responses
