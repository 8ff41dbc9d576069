#include "providers/bedrock/event_stream.hpp"

#include <boost/crc.hpp>

namespace tailgate::providers::bedrock {

namespace {

uint32_t be32(const char* p) {
    const auto* u = reinterpret_cast<const unsigned char*>(p);
    return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}

uint16_t be16(const char* p) {
    const auto* u = reinterpret_cast<const unsigned char*>(p);
    return static_cast<uint16_t>((u[0] << 8) | u[1]);
}

// The value size of a fixed-size header type; -1 for the length-prefixed ones
// (6 bytes, 7 string), -2 for an unknown type.
int fixed_size(uint8_t type) {
    static constexpr int kSizes[] = {0, 0, 1, 2, 4, 8, -1, -1, 8, 16};
    return type < std::size(kSizes) ? kSizes[type] : -2;
}

FrameStatus malformed(std::string& error, const char* why) {
    error = why;
    return FrameStatus::Malformed;
}

// The headers block [p, end) into `out`.
bool decode_headers(const char* p, const char* end, std::vector<EventHeader>& out, std::string& error) {
    out.clear();
    while (p < end) {
        const size_t name_len = static_cast<unsigned char>(*p++);
        if (name_len == 0 || static_cast<size_t>(end - p) < name_len + 1) {
            error = "event-stream header name runs past the headers";
            return false;
        }
        EventHeader h;
        h.name = std::string_view(p, name_len);
        p += name_len;
        h.type = static_cast<uint8_t>(*p++);
        int size = fixed_size(h.type);
        if (size == -2) {
            error = "event-stream header of an unknown type";
            return false;
        }
        if (size == -1) {
            if (end - p < 2) {
                error = "event-stream header value length runs past the headers";
                return false;
            }
            size = be16(p);
            p += 2;
        }
        if (end - p < size) {
            error = "event-stream header value runs past the headers";
            return false;
        }
        h.value = std::string_view(p, static_cast<size_t>(size));
        p += size;
        out.push_back(h);
    }
    return true;
}

}  // namespace

uint32_t crc32(std::string_view bytes) {
    boost::crc_32_type c;
    c.process_bytes(bytes.data(), bytes.size());
    return c.checksum();
}

std::string_view EventMessage::header(std::string_view name) const {
    for (const auto& h : headers)
        if (h.name == name && h.type == 7) return h.value;
    return {};
}

FrameStatus decode_message(std::string_view bytes, EventMessage& out, size_t& size, std::string& error) {
    constexpr size_t kPrelude = 12, kOverhead = 16;  // prelude + message CRC
    if (bytes.size() < kPrelude) return FrameStatus::Incomplete;
    const uint32_t total = be32(bytes.data()), headers_len = be32(bytes.data() + 4);
    if (crc32(bytes.substr(0, 8)) != be32(bytes.data() + 8)) return malformed(error, "event-stream prelude CRC mismatch");
    if (total < kOverhead || total > kMaxEventMessage) return malformed(error, "event-stream message length out of range");
    if (headers_len > kMaxEventHeaders || headers_len > total - kOverhead)
        return malformed(error, "event-stream headers length out of range");
    if (bytes.size() < total) return FrameStatus::Incomplete;
    if (crc32(bytes.substr(0, total - 4)) != be32(bytes.data() + total - 4))
        return malformed(error, "event-stream message CRC mismatch");
    const char* headers = bytes.data() + kPrelude;
    if (!decode_headers(headers, headers + headers_len, out.headers, error)) return FrameStatus::Malformed;
    out.payload = bytes.substr(kPrelude + headers_len, total - kOverhead - headers_len);
    size = total;
    return FrameStatus::Complete;
}

}  // namespace tailgate::providers::bedrock
