// UTF-8 validation shared by the JSON writers.
#pragma once

#include <cstddef>
#include <string_view>

namespace tailgate {

// Length of the valid UTF-8 sequence starting at s[i] (1 for ASCII), or 0 when
// it is invalid (overlong, surrogate, beyond U+10FFFF, cut short).
size_t utf8_sequence_length(std::string_view s, size_t i);

}  // namespace tailgate
