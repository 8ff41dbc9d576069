// Fuzz target: the YAML config loader (config/config.cpp) on arbitrary text.
// Any rejection must be a ConfigError with a "name:line: ..." message; any other
// exception escaping the loader is a defect.
#include "config/config.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

namespace {

// os.environ/VAR resolves for a few names only, so both paths are reachable.
std::optional<std::string> fake_env(const std::string& name) {
    if (name.size() <= 3) return "env-" + name;
    return std::nullopt;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    try {
        auto cfg = tailgate::config::load_string(text, "fuzz.yaml", fake_env);
        (void)cfg.model_groups();
    } catch (const tailgate::config::ConfigError& e) {
        if (std::strncmp(e.what(), "fuzz.yaml", 9) != 0) {
            std::fprintf(stderr, "config error without the file name: %s\n", e.what());
            std::abort();
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "non-ConfigError escaped the loader: %s\n", e.what());
        std::abort();
    }
    return 0;
}
