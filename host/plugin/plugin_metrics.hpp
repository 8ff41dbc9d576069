// Metrics a plugin instance registers through tg_host_api.metric_register,
// rendered in /metrics as tailgate_plugin_<strategy>_<name>. Registration
// happens while the instance is created; updates are lock-free atomics, so a
// plugin may count on its request path.
//
// The series live in a PluginMetrics::Store that outlives generations: the
// instance a reload creates registers the same names and gets the same series
// back (when their shape — kind, label, values, buckets — is unchanged), so
// its counters continue where the previous instance's stopped.
#pragma once

#include <tailgate/plugin_abi.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace tailgate::plugin {

class PluginMetrics {
public:
    // Series by full name, and route() failures by strategy name, for the life
    // of the process. Thread-safe.
    class Store {
    public:
        Store();
        ~Store();
        // tailgate_plugin_failures_total{plugin=<name>}: shared by every instance of that name.
        std::shared_ptr<std::atomic<uint64_t>> failures(const std::string& strategy);

    private:
        friend class PluginMetrics;
        struct Impl;
        std::unique_ptr<Impl> impl_;
    };

    // `strategy` names the series: tailgate_plugin_<strategy>_<metric>. Series
    // come from `store` (a private one when null).
    explicit PluginMetrics(std::string_view strategy, std::shared_ptr<Store> store = nullptr);
    ~PluginMetrics();
    PluginMetrics(const PluginMetrics&) = delete;
    PluginMetrics& operator=(const PluginMetrics&) = delete;

    // The metric's id, or -1 with `why` set. See tg_host_api.metric_register.
    int32_t add(uint32_t kind, const char* name, const char* help, const char* label_name,
                const char* const* label_values, uint32_t value_count, const double* buckets, uint32_t bucket_count,
                std::string& why);
    void update(int32_t id, uint32_t label_index, double value) noexcept;
    // Called once the instance is created: later add() calls are refused.
    void seal() { sealed_.store(true, std::memory_order_release); }

    // Prometheus text of every registered metric.
    void render(std::string& out) const;

    const std::string& prefix() const { return prefix_; }

    struct Metric;  // one registered metric and its series (plugin_metrics.cpp)

private:
    std::string prefix_;  // tailgate_plugin_<strategy>_
    std::shared_ptr<Store> store_;
    std::mutex mu_;       // registration only
    std::array<std::shared_ptr<Metric>, TG_MAX_PLUGIN_METRICS> metrics_;
    std::atomic<uint32_t> count_{0};
    std::atomic<bool> sealed_{false};
};

// A metric or strategy name as a Prometheus name part: [a-zA-Z0-9_], others '_'.
std::string metric_name_part(std::string_view s);

}  // namespace tailgate::plugin
