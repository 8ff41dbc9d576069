// Scrubbing configured secrets (master key, upstream api keys) out of text
// that came from elsewhere: an upstream's error message may quote the key it
// was sent ("Incorrect API key provided: sk-..."), and that message reaches the
// client and the logs.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tailgate {

// Values shorter than this are not scrubbed: replacing "none" or "x" would
// mangle ordinary words, and such values protect nothing anyway.
inline constexpr size_t kMinRedactedSecret = 8;

// Sets the process's secrets; call once at startup, before any thread uses redact().
void set_redacted_secrets(std::vector<std::string> secrets);

// `text` with every occurrence of a secret replaced by "***".
std::string redact(std::string text);

// True when `text` holds a secret (a few memchr-speed scans: cheap enough for
// relayed stream bytes). A secret split across two calls is not seen.
bool contains_secret(std::string_view text);

}  // namespace tailgate
