// Flattens a JSON object the way plugin args are flattened (see tg_args):
// scalars as text, nested objects as dotted keys, arrays as JSON text.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tailgate {

using FlatPairs = std::vector<std::pair<std::string, std::string>>;

// Invalid JSON or a non-object gives an empty result.
FlatPairs flatten_json_object(std::string_view json);

}  // namespace tailgate
