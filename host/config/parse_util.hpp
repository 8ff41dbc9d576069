// Small, YAML-independent text parsers used by the config loader.
// Internal to host/config; kept separate so they can be tested directly.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tailgate::config::detail {

// Strict integer: optional sign and decimal digits only ("12", "-3"; not "1.0", "0x1").
std::optional<int64_t> parse_int(std::string_view text);

// Finite decimal number ("0.5", "1e-6", "3").
std::optional<double> parse_double(std::string_view text);

// true/false, also True/TRUE/yes/no/on/off (YAML 1.1 spellings LiteLLM users write).
std::optional<bool> parse_bool(std::string_view text);

// An api_base URL split into what the upstream client needs.
struct Url {
    bool tls = true;
    std::string host;       // IPv6 literal without brackets
    std::string port;       // explicit or the scheme's default
    std::string path;       // "" or "/..." without trailing '/'
    bool had_userinfo = false;
    std::string display;    // scheme://authority(path), credentials removed
};

// Parses an http(s) URL. On failure returns nullopt and sets `error` to a
// message that never repeats credentials embedded in the URL.
std::optional<Url> parse_url(std::string_view text, std::string& error);

// `text` with any "user:password@" replaced by "***@" (for messages).
std::string redact_url(std::string_view text);

// 64-bit FNV-1a: a stable hash (same value on every platform and run).
uint64_t fnv1a64(std::string_view data, uint64_t seed = 0xcbf29ce484222325ull);
std::string hex64(uint64_t v);

// JSON string literal (with quotes) for `s`.
std::string json_quote(std::string_view s);

// True if `s` is written exactly as a JSON number (RFC 8259 grammar).
bool is_json_number(std::string_view s);

std::string to_lower(std::string_view s);
std::string_view trim(std::string_view s);

}  // namespace tailgate::config::detail
