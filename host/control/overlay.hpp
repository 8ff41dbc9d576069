// Admin changes applied over the config file: the effective config of a
// generation is the file's, then every change of the revision log in order.
// Each change is parsed and validated by the same loader as the file (a
// deployment is a one-entry model_list; a router_settings patch is a
// router_settings section), so the API accepts exactly what the file would.
#pragma once

#include "config/config.hpp"
#include "control/store.hpp"

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace tailgate::control {

struct Effective {
    std::shared_ptr<const config::Config> config;
    std::set<std::string> drained;                    // deployment ids
    std::map<std::string, uint64_t> deployment_rev;   // id -> revision that last set it (absent: the file)
    std::map<std::string, uint64_t> router_key_rev;   // router_settings key -> revision that set it
};

// Throws config::ConfigError ("where:line: key.path: message") on the first
// change that does not apply (a replayed log: the caller decides to skip it).
Effective apply_changes(const config::Config& file, const std::vector<Change>& changes);

// One change over `base` (validation of an admin request). Throws ConfigError.
Effective apply_change(const Effective& base, const Change& c);

// A model_list entry (JSON object text) parsed as the file would parse it;
// drop_params: the file's litellm_settings.drop_params (the entry's own wins).
config::Deployment parse_entry(const std::string& json, const std::string& where, bool drop_params = false);

// A deployment as a LiteLLM model_list entry; api_key as "***" unless `secrets`.
std::string entry_json(const config::Deployment& d, bool secrets);

// router_settings keys an admin patch may set (plugin_paths may not: loading
// code from a new directory is a file change).
const std::vector<std::string>& patchable_router_keys();

}  // namespace tailgate::control
