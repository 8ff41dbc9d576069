#include "common/redact.hpp"

#include <algorithm>
#include <atomic>
#include <memory>

namespace tailgate {

namespace {
// Replaced whole at a reload while other threads redact: an atomic pointer to an immutable list.
std::atomic<std::shared_ptr<const std::vector<std::string>>> g_secrets{
    std::make_shared<const std::vector<std::string>>()};
std::shared_ptr<const std::vector<std::string>> secrets() { return g_secrets.load(std::memory_order_acquire); }
}  // namespace

void set_redacted_secrets(std::vector<std::string> list) {
    std::erase_if(list, [](const std::string& s) { return s.size() < kMinRedactedSecret; });
    // Longest first, so a secret containing another is replaced whole.
    std::sort(list.begin(), list.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
    list.erase(std::unique(list.begin(), list.end()), list.end());
    g_secrets.store(std::make_shared<const std::vector<std::string>>(std::move(list)), std::memory_order_release);
}

std::string redact(std::string text) {
    const auto list = secrets();
    for (const auto& s : *list) {
        for (size_t pos = text.find(s); pos != std::string::npos; pos = text.find(s, pos + 3))
            text.replace(pos, s.size(), "***");
    }
    return text;
}

bool contains_secret(std::string_view text) {
    const auto list = secrets();
    for (const auto& s : *list)
        if (text.find(s) != std::string_view::npos) return true;
    return false;
}

}  // namespace tailgate
