// The Prometheus text format (0.0.4) as every /metrics renderer writes it: the
// metrics, keys, plugin, router and fleet layers each render their own families into
// one scrape, so they share these pieces. Numbers stay each renderer's own
// (their formats differ), hence sample() takes the value as text.
#pragma once

#include <string>
#include <string_view>

namespace tailgate::prometheus {

// A label value escaped: backslash, double quote and newline.
std::string escape_label_value(std::string_view v);

// The "# HELP" and "# TYPE" lines that open a metric family.
void family(std::string& out, std::string_view name, std::string_view type, std::string_view help);

// One sample line, `name{labels} value` (`name value` without labels).
void sample(std::string& out, std::string_view name, std::string_view labels, std::string_view value);

}  // namespace tailgate::prometheus
