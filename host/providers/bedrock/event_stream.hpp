// AWS event-stream framing (application/vnd.amazon.eventstream), in which
// Bedrock's ConverseStream sends its events. Each message is
//
//   total length (u32) | headers length (u32) | prelude CRC (u32)
//   headers | payload | message CRC (u32)
//
// big-endian; the prelude CRC covers the first 8 bytes, the message CRC every
// byte before it (CRC-32, the IEEE polynomial zlib uses). A header is a name
// (u8 length + bytes), a type byte and a value whose size the type gives.
//
// The reader splits a byte stream (cut anywhere) into messages and checks both
// CRCs; a message it cannot trust stops it for good, so a client never gets an
// event from a corrupted frame.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tailgate::providers::bedrock {

struct EventHeader {
    std::string_view name;
    uint8_t type = 0;        // 0..9: true, false, byte, short, int, long, bytes, string, timestamp, uuid
    std::string_view value;  // the raw value bytes (strings and byte arrays without their length)
};

// One decoded message; views into the reader's bytes, valid during the callback.
struct EventMessage {
    std::vector<EventHeader> headers;
    std::string_view payload;
    // A string header's value, "" when absent or not a string.
    std::string_view header(std::string_view name) const;
};

// Limits from the event-stream specification: a message of at most 16 MiB,
// headers of at most 128 KiB.
inline constexpr uint32_t kMaxEventMessage = 16u * 1024 * 1024;
inline constexpr uint32_t kMaxEventHeaders = 128u * 1024;

enum class FrameStatus : uint8_t { Complete, Incomplete, Malformed };

// Decodes the message at the start of `bytes`: Complete (sets `out` and
// `size`), Incomplete (more bytes needed), or Malformed (`error` says why).
FrameStatus decode_message(std::string_view bytes, EventMessage& out, size_t& size, std::string& error);

// CRC-32 (IEEE 802.3, reflected, as zlib's crc32).
uint32_t crc32(std::string_view bytes);

class EventStreamReader {
public:
    // Calls `on_message(const EventMessage&)` for each complete message; it
    // returns false to stop. Returns false once a message is malformed (see
    // error()) or the callback stopped; later feeds do nothing.
    template <class OnMessage>
    bool feed(std::string_view bytes, OnMessage&& on_message);

    size_t pending() const { return partial_.size(); }
    bool stopped() const { return stopped_; }
    const std::string& error() const { return error_; }

private:
    // Decodes the complete messages of `all`; returns the bytes consumed.
    template <class OnMessage>
    size_t scan(std::string_view all, OnMessage& on_message);

    std::string partial_;  // an incomplete message carried over between feeds
    std::string error_;
    EventMessage message_;  // reused: its header vector keeps its capacity
    bool stopped_ = false;
};

template <class OnMessage>
size_t EventStreamReader::scan(std::string_view all, OnMessage& on_message) {
    size_t used = 0;
    while (!stopped_) {
        size_t size = 0;
        const FrameStatus st = decode_message(all.substr(used), message_, size, error_);
        if (st == FrameStatus::Incomplete) break;
        if (st == FrameStatus::Malformed || !on_message(static_cast<const EventMessage&>(message_))) {
            stopped_ = true;
            break;
        }
        used += size;
    }
    return used;
}

template <class OnMessage>
bool EventStreamReader::feed(std::string_view bytes, OnMessage&& on_message) {
    if (stopped_) return false;
    if (partial_.empty()) {
        const size_t used = scan(bytes, on_message);  // the common case: no copy
        if (!stopped_) partial_.assign(bytes.substr(used));
    } else {
        partial_.append(bytes);
        const size_t used = scan(partial_, on_message);
        partial_.erase(0, used);
    }
    if (stopped_) partial_.clear();
    return !stopped_;
}

}  // namespace tailgate::providers::bedrock
