// general_settings on a reload. The keys a running gateway can apply at once
// (auth, admission caps, logging level, request-time switches) take effect
// with the new generation; those bound at start (the listener, thread pools,
// the client front end's limits, the upstream pool, metrics collection, the
// log format, and turning authentication on or off) keep their running value
// and are reported as "requires restart: general_settings.<key>": never
// silently ignored.
#pragma once

#include "config/config.hpp"

#include <string>
#include <vector>

namespace tailgate::control {

struct GeneralChanges {
    std::vector<std::string> live;              // "general_settings.<key>": applied by this reload
    std::vector<std::string> requires_restart;  // "general_settings.<key>": the running value stays
};

// Compares the file's general_settings (`next`) with the running ones; puts
// the running value back into `next` for every restart-only key that differs.
GeneralChanges reconcile_general(const config::GeneralSettings& running, config::GeneralSettings& next);

}  // namespace tailgate::control
