// GET /ui: a self-contained HTML dashboard (inline CSS and JS, no external
// assets) that polls /stats/strategies and /metrics from the browser.
#pragma once

#include <string_view>

namespace tailgate::server {

std::string_view dashboard_html() noexcept;

}  // namespace tailgate::server
