#include "plugin/search_path.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <string_view>
#include <system_error>

namespace tailgate::plugin {

std::vector<std::string> search_path(const std::vector<std::string>& configured, const char* env_path) {
    namespace fs = std::filesystem;
    std::vector<std::string> dirs = configured;
    if (env_path != nullptr) {
        std::string_view rest(env_path);
        while (!rest.empty()) {
            const size_t colon = rest.find(':');
            const std::string part(rest.substr(0, colon));
            rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
            if (part.empty()) continue;
            if (!fs::path(part).is_absolute()) {
                spdlog::warn("TAILGATE_PLUGIN_PATH: ignoring relative directory '{}' (use an absolute path)", part);
                continue;
            }
            dirs.push_back(part);
        }
    }
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) dirs.push_back((exe.parent_path().parent_path() / "lib" / "tailgate" / "plugins").string());
    dirs.push_back(TAILGATE_INSTALLED_PLUGIN_DIR);

    std::vector<std::string> unique;
    for (const auto& d : dirs) {
        std::string norm = fs::path(d).lexically_normal().string();
        if (std::find(unique.begin(), unique.end(), norm) == unique.end()) unique.push_back(std::move(norm));
    }
    return unique;
}

}  // namespace tailgate::plugin
