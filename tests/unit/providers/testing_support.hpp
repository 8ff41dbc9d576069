// Helpers shared by the codec and surface tests.
#pragma once

#include "providers/codec.hpp"

#include <string>
#include <vector>

namespace tailgate::providers::testing {

// Records every event it is given, with its views copied.
class RecordingSink final : public EventSink {
public:
    struct Seen {
        Event::Kind kind;
        uint32_t choice = 0;
        std::string text, tool_id, tool_name, tool_args;
        Usage usage;
        ErrorClass error_class = ErrorClass::None;
        uint32_t tool_index = 0;
    };
    explicit RecordingSink(std::vector<Seen>& out) : out_(out) {}
    void on_event(const Event& e) override {
        Seen s{e.kind, e.choice, std::string(e.text), std::string(e.tool.id), std::string(e.tool.name),
               std::string(e.tool.arguments), e.usage, e.error ? e.error->error_class : ErrorClass::None, e.tool.index};
        out_.push_back(std::move(s));
        rendered_ += "<" + std::to_string(static_cast<int>(e.kind)) + ">";
    }
    // "Renders" one marker per event, so tests can see the client bytes come from the sink.
    void take(std::string& out) override {
        out += rendered_;
        rendered_.clear();
    }

private:
    std::vector<Seen>& out_;
    std::string rendered_;
};

inline upstream::ResponseHead head(int status, upstream::Headers headers = {}) {
    upstream::ResponseHead h;
    h.status = status;
    h.headers = std::move(headers);
    return h;
}

}  // namespace tailgate::providers::testing
