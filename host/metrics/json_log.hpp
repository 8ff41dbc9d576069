// Log formats: human-readable text (default) or one JSON object per line.
//
// JSON mode uses a custom spdlog pattern flag that writes the message
// JSON-escaped (valid UTF-8 guaranteed: invalid bytes become U+FFFD), so any
// text a log call formats — quotes, newlines, client-supplied names — stays
// inside one valid object:
//   {"ts":"2024-05-01T12:00:00.123+00:00","level":"info","msg":"..."}
// A structured record (the per-request line) is a message built with
// `Fields` and passed through `structured()`: its members are spliced into the
// object instead of "msg", e.g. {"ts":..,"level":"info","msg":"request","request_id":..}.
#pragma once

#include <spdlog/formatter.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace tailgate::logfmt {

// First byte of a structured message; never the start of an ordinary one.
inline constexpr char kStructuredMarker = '\x1e';

// The formatter for the default logger: text or JSON lines.
std::unique_ptr<spdlog::formatter> make_formatter(bool json);

// Appends `s` with every byte outside printable ASCII and valid, non-control
// UTF-8 written as \xNN (what text-mode log lines do to their messages).
void append_printable(std::string& out, std::string_view s);

// Re-serialises a JSON value compactly (no newlines); nullopt if it does not
// parse or is not valid UTF-8.
std::optional<std::string> compact_json(std::string_view json);

// Comma-separated "key":value members of a JSON object, in insertion order.
class Fields {
public:
    Fields& str(std::string_view key, std::string_view value);
    Fields& num(std::string_view key, double value, int decimals = 1);  // non-finite -> null
    Fields& integer(std::string_view key, int64_t value);
    Fields& boolean(std::string_view key, bool value);
    Fields& null(std::string_view key);
    Fields& raw(std::string_view key, std::string_view json);  // caller guarantees compact valid JSON
    std::string object() const { return "{" + s_ + "}"; }
    const std::string& members() const { return s_; }
    bool empty() const { return s_.empty(); }

private:
    void key(std::string_view k);
    std::string s_;
};

// The message to log for a structured record (JSON mode only).
std::string structured(const Fields& f);

}  // namespace tailgate::logfmt
