/* Built-in list prices of common models, shared by the cost strategy
 * (plugins/cost) and the host's spend accounting, so a request is priced the
 * same way it was routed. Header-only C++17, no ABI types; a deployment's
 * input_cost_per_token / output_cost_per_token in the config wins over it. */
#pragma once

#include <cctype>
#include <string>
#include <string_view>

namespace tailgate::prices {

// Built-in prices in USD per token, keyed by upstream model name.
// APPROXIMATE: list prices as publicly posted by the providers at the time of
// writing (standard tier, no caching/batch discounts, short-context rates).
// They change; set input_cost_per_token / output_cost_per_token in the config
// for anything that matters. Embedding models have no output price.
struct TablePrice {
    const char* model;
    double in;
    double out;
};
inline constexpr TablePrice kPriceTable[] = {
    // OpenAI
    {"gpt-4o", 2.5e-6, 10e-6},
    {"gpt-4o-mini", 0.15e-6, 0.6e-6},
    {"gpt-4-turbo", 10e-6, 30e-6},
    {"gpt-4", 30e-6, 60e-6},
    {"gpt-4.1", 2e-6, 8e-6},
    {"gpt-4.1-mini", 0.4e-6, 1.6e-6},
    {"gpt-4.1-nano", 0.1e-6, 0.4e-6},
    {"gpt-3.5-turbo", 0.5e-6, 1.5e-6},
    {"o1", 15e-6, 60e-6},
    {"o3-mini", 1.1e-6, 4.4e-6},
    {"text-embedding-3-small", 0.02e-6, 0},
    {"text-embedding-3-large", 0.13e-6, 0},
    {"text-embedding-ada-002", 0.1e-6, 0},
    // Groq
    {"llama-3.1-8b-instant", 0.05e-6, 0.08e-6},
    {"llama-3.1-70b-versatile", 0.59e-6, 0.79e-6},
    {"llama-3.3-70b-versatile", 0.59e-6, 0.79e-6},
    {"mixtral-8x7b-32768", 0.24e-6, 0.24e-6},
    // DeepSeek
    {"deepseek-chat", 0.27e-6, 1.1e-6},
    {"deepseek-reasoner", 0.55e-6, 2.19e-6},
    // Anthropic
    {"claude-3-5-sonnet", 3e-6, 15e-6},
    {"claude-3-7-sonnet", 3e-6, 15e-6},
    {"claude-3-5-haiku", 0.8e-6, 4e-6},
    {"claude-3-haiku", 0.25e-6, 1.25e-6},
    {"claude-3-opus", 15e-6, 75e-6},
    // Google
    {"gemini-1.5-pro", 1.25e-6, 5e-6},
    {"gemini-1.5-flash", 0.075e-6, 0.3e-6},
    {"gemini-2.0-flash", 0.1e-6, 0.4e-6},
    // Mistral
    {"mistral-large", 2e-6, 6e-6},
    {"mistral-small", 0.2e-6, 0.6e-6},
};

// "-2024-08-06", "-0613", "-20241022", "-latest": a dated/versioned snapshot
// of the model named by the prefix.
inline bool is_snapshot_suffix(std::string_view s) {
    if (s == "-latest") return true;
    if (s.empty()) return false;
    size_t i = 0;
    while (i < s.size()) {
        if (s[i] != '-' || i + 1 >= s.size() || !std::isdigit(static_cast<unsigned char>(s[i + 1]))) return false;
        ++i;
        while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    }
    return true;
}

// Table entry for an upstream model name: exact (case-insensitive, after any
// "provider/" prefix), else the longest entry the name extends by a snapshot suffix.
inline const TablePrice* lookup(const char* upstream) {
    if (upstream == nullptr) return nullptr;
    std::string name(upstream);
    if (auto slash = name.rfind('/'); slash != std::string::npos) name.erase(0, slash + 1);
    for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    const TablePrice* best = nullptr;
    size_t best_len = 0;
    for (const TablePrice& p : kPriceTable) {
        std::string_view key(p.model);
        if (name == key) return &p;
        if (name.size() > key.size() && name.compare(0, key.size(), key) == 0 &&
            is_snapshot_suffix(std::string_view(name).substr(key.size())) && key.size() > best_len) {
            best = &p;
            best_len = key.size();
        }
    }
    return best;
}

}  // namespace tailgate::prices
