// Server-Sent-Events framing, shared by every codec whose upstream streams SSE.
//
// Splits the byte stream into events (split anywhere between feeds), joins each
// event's data lines, and hands the data to the codec. Only complete events up
// to the first one the codec rejects are returned, so a client never sees half
// an event. What a data payload means is the codec's business.
#pragma once

#include <string>
#include <string_view>

namespace tailgate::providers {

class SseFramer {
public:
    // Calls `on_data(data)` for each complete event with at least one data line
    // (comments and keep-alives are passed over); `on_data` returns false to
    // reject the event, which stops framing for good. Returns the bytes of the
    // complete events before the rejected one: a view of `bytes` when nothing was
    // carried over (the common case: no copy), else of the framer's own buffer.
    // Valid until the next feed and while `bytes` lives.
    template <class OnData>
    std::string_view feed(std::string_view bytes, OnData&& on_data);

    // Bytes of an incomplete (or rejected) event held back.
    size_t pending() const { return partial_.size(); }
    bool stopped() const { return stopped_; }

private:
    template <class OnData>
    size_t scan(std::string_view all, size_t from, OnData& on_data);

    static size_t event_end(std::string_view s, size_t from);
    // The event's data lines joined by '\n'; `scratch` holds a join of several.
    // Returns false when the event has no data line.
    static bool data_of(std::string_view event, std::string& scratch, std::string_view& data);

    std::string partial_;  // an incomplete event carried over between feeds
    std::string ready_;    // the result when it spans a carried-over event
    std::string joined_;   // scratch for multi-line data
    bool stopped_ = false;
};

template <class OnData>
size_t SseFramer::scan(std::string_view all, size_t from, OnData& on_data) {
    size_t start = 0;
    for (size_t end = event_end(all, from); end != std::string_view::npos; end = event_end(all, start)) {
        std::string_view data;
        if (data_of(all.substr(start, end - start), joined_, data) && !on_data(data)) {
            stopped_ = true;
            break;
        }
        start = end;
    }
    return start;
}

template <class OnData>
std::string_view SseFramer::feed(std::string_view bytes, OnData&& on_data) {
    if (stopped_) return {};
    if (!partial_.empty()) {
        // Only re-scan from a little before the old end: the terminator may straddle the join.
        const size_t from = partial_.size() >= 2 ? partial_.size() - 2 : 0;
        partial_.append(bytes);
        const size_t start = scan(partial_, from, on_data);
        ready_.assign(partial_, 0, start);
        partial_.erase(0, start);
        return ready_;
    }
    const size_t start = scan(bytes, 0, on_data);
    partial_.assign(bytes.substr(start));
    return bytes.substr(0, start);
}

}  // namespace tailgate::providers
