// Where strategy plugins are looked for, in order (the first match wins):
//   1. router_settings.plugin_paths (the config loader makes them absolute,
//      relative to the config file's directory),
//   2. absolute entries of $TAILGATE_PLUGIN_PATH (relative ones are ignored
//      with a warning: they would depend on the working directory),
//   3. <exe>/../lib/tailgate/plugins (the build tree, or an install prefix),
//   4. the install directory chosen at build time.
#pragma once

#include <string>
#include <vector>

namespace tailgate::plugin {

// `env_path`: the value of TAILGATE_PLUGIN_PATH, null when unset. Duplicates
// are removed (the first stays).
std::vector<std::string> search_path(const std::vector<std::string>& configured, const char* env_path);

}  // namespace tailgate::plugin
