// Builds AWS event-stream messages for tests (string headers only).
#pragma once

#include "providers/bedrock/event_stream.hpp"

#include <string>
#include <utility>
#include <vector>

namespace tailgate::providers::testing {

inline void put_be32(std::string& out, uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
}

inline std::string event_frame(const std::vector<std::pair<std::string, std::string>>& headers,
                               std::string_view payload) {
    std::string h;
    for (const auto& [name, value] : headers) {
        h += static_cast<char>(name.size());
        h += name;
        h += '\x07';
        h += static_cast<char>((value.size() >> 8) & 0xff);
        h += static_cast<char>(value.size() & 0xff);
        h += value;
    }
    std::string out;
    put_be32(out, static_cast<uint32_t>(12 + h.size() + payload.size() + 4));
    put_be32(out, static_cast<uint32_t>(h.size()));
    put_be32(out, bedrock::crc32(out));
    out += h;
    out += payload;
    put_be32(out, bedrock::crc32(out));
    return out;
}

// A ConverseStream event: `:event-type` type, JSON payload.
inline std::string converse_event(const std::string& type, std::string_view json) {
    return event_frame({{":event-type", type}, {":content-type", "application/json"}, {":message-type", "event"}}, json);
}

inline std::string converse_exception(const std::string& type, std::string_view json) {
    return event_frame({{":exception-type", type}, {":content-type", "application/json"}, {":message-type", "exception"}},
                       json);
}

}  // namespace tailgate::providers::testing
