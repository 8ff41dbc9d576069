// One generation of the running gateway: a validated config with everything
// built from it (plugin libraries and instances, router, metrics). Immutable
// once published; requests hold a shared_ptr to the generation they started
// with, so an old generation (and its plugin libraries) goes away after its
// last request, not when a reload replaces it.
#pragma once

#include "config/config.hpp"
#include "fleet/link.hpp"
#include "metrics/metrics.hpp"
#include "metrics/strategy_stats.hpp"
#include "plugin/loader.hpp"
#include "router/router.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace tailgate::control {

// Series storage that outlives generations: a reload keeps every counter
// (metrics/metric_store.hpp, plugin/plugin_metrics.hpp).
struct MetricStores {
    std::shared_ptr<metrics::MetricStore> metrics = std::make_shared<metrics::MetricStore>();
    std::shared_ptr<plugin::PluginMetrics::Store> plugins = std::make_shared<plugin::PluginMetrics::Store>();
};

struct Generation {
    uint64_t revision = 0;
    std::shared_ptr<const config::Config> config;
    std::vector<std::string> plugin_dirs;
    // Plugin files this generation loaded (path as found -> identity: device,
    // inode, mtime, size), and those loaded from a private copy (see generation.cpp).
    std::map<std::string, std::string> plugin_files;
    std::set<std::string> copied;
    // Declaration order is destruction order reversed: the router (plugin
    // instances, health listener into the metrics) goes first, the registry last.
    std::unique_ptr<plugin::Registry> registry;    // this generation's loaded libraries
    std::unique_ptr<metrics::Metrics> prom;         // null when general_settings.metrics is false
    std::unique_ptr<metrics::StrategyStats> strat;  // with prom
    std::unique_ptr<router::Router> router;
};
using GenerationPtr = std::shared_ptr<const Generation>;

// Builds and validates a complete generation: loads every plugin and creates
// every instance with its args (throws plugin::PluginError / config::ConfigError
// on any refusal, leaving nothing behind). With `previous`, deployments whose
// identity is unchanged take over its state; `drained` ids start drained.
// Metrics come from `series`, the same for every generation of the process.
// `fleet` (may be null) is handed to the router (Router::set_fleet).
GenerationPtr build_generation(std::shared_ptr<const config::Config> cfg, uint64_t revision,
                               const Generation* previous, const std::set<std::string>& drained,
                               const MetricStores& series, fleet::LinkPtr fleet = nullptr);

}  // namespace tailgate::control
