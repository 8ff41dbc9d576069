#include "common/redact.hpp"

#include <algorithm>

namespace tailgate {

namespace {
std::vector<std::string>& secrets() {
    static std::vector<std::string> s;
    return s;
}
}  // namespace

void set_redacted_secrets(std::vector<std::string> list) {
    std::erase_if(list, [](const std::string& s) { return s.size() < kMinRedactedSecret; });
    // Longest first, so a secret containing another is replaced whole.
    std::sort(list.begin(), list.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
    list.erase(std::unique(list.begin(), list.end()), list.end());
    secrets() = std::move(list);
}

std::string redact(std::string text) {
    for (const auto& s : secrets()) {
        for (size_t pos = text.find(s); pos != std::string::npos; pos = text.find(s, pos + 3))
            text.replace(pos, s.size(), "***");
    }
    return text;
}

bool contains_secret(std::string_view text) {
    for (const auto& s : secrets())
        if (text.find(s) != std::string_view::npos) return true;
    return false;
}

}  // namespace tailgate
