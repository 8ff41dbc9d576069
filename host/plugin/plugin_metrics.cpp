#include "plugin/plugin_metrics.hpp"

#include "common/prometheus_text.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>

namespace tailgate::plugin {

namespace {

// Default histogram buckets, in ms: LLM latencies span milliseconds to a minute.
constexpr double kDefaultBuckets[] = {1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000};

std::string number(double v) {
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

}  // namespace

std::string metric_name_part(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') c = '_';
    return out;
}

struct PluginMetrics::Metric {
    uint32_t kind = TG_METRIC_COUNTER;
    std::string name, help, label;
    std::vector<std::string> values;  // label values; one series without a label
    std::vector<double> bounds;       // histogram upper bounds
    // Per series: the value (counter/gauge) or sum (histogram), then buckets and count.
    struct Series {
        std::atomic<double> value{0};
        std::unique_ptr<std::atomic<uint64_t>[]> buckets;  // bounds.size() + 1 (the +Inf one)
        std::atomic<uint64_t> count{0};
    };
    std::unique_ptr<Series[]> series;
    size_t series_count = 0;
};

// Same series when a reload's instance registers the same shape again.
static bool same_shape(const PluginMetrics::Metric& a, const PluginMetrics::Metric& b) {
    return a.kind == b.kind && a.label == b.label && a.values == b.values && a.bounds == b.bounds;
}

struct PluginMetrics::Store::Impl {
    std::mutex mu;
    std::map<std::string, std::shared_ptr<Metric>> metrics;  // by full name (prefix + metric)
    std::map<std::string, std::shared_ptr<std::atomic<uint64_t>>> failures;  // by strategy name
};

PluginMetrics::Store::Store() : impl_(std::make_unique<Impl>()) {}
PluginMetrics::Store::~Store() = default;

std::shared_ptr<std::atomic<uint64_t>> PluginMetrics::Store::failures(const std::string& strategy) {
    std::lock_guard lk(impl_->mu);
    auto& c = impl_->failures[strategy];
    if (!c) c = std::make_shared<std::atomic<uint64_t>>(0);
    return c;
}

PluginMetrics::PluginMetrics(std::string_view strategy, std::shared_ptr<Store> store)
    : prefix_("tailgate_plugin_" + metric_name_part(strategy) + "_"),
      store_(store ? std::move(store) : std::make_shared<Store>()) {}
PluginMetrics::~PluginMetrics() = default;

int32_t PluginMetrics::add(uint32_t kind, const char* name, const char* help, const char* label_name,
                           const char* const* label_values, uint32_t value_count, const double* buckets,
                           uint32_t bucket_count, std::string& why) {
    if (sealed_.load(std::memory_order_acquire)) return why = "metrics are registered in tg_plugin_create only", -1;
    if (kind > TG_METRIC_HISTOGRAM) return why = "unknown metric kind " + std::to_string(kind), -1;
    if (name == nullptr || *name == '\0') return why = "a metric needs a name", -1;
    if ((label_name == nullptr) != (value_count == 0) || (value_count > 0 && label_values == nullptr))
        return why = std::string("metric '") + name + "': a label needs its values, and values a label", -1;
    if (value_count > TG_MAX_PLUGIN_LABEL_VALUES)
        return why = std::string("metric '") + name + "': more than " + std::to_string(TG_MAX_PLUGIN_LABEL_VALUES) +
                     " label values",
               -1;
    if (bucket_count > TG_MAX_PLUGIN_BUCKETS || (bucket_count > 0 && buckets == nullptr) ||
        (buckets != nullptr && !std::is_sorted(buckets, buckets + bucket_count, std::less_equal<>()) &&
         bucket_count > 1))
        return why = std::string("metric '") + name + "': buckets must be at most " +
                     std::to_string(TG_MAX_PLUGIN_BUCKETS) + " ascending bounds",
               -1;
    std::lock_guard lk(mu_);
    const uint32_t n = count_.load(std::memory_order_relaxed);
    if (n >= TG_MAX_PLUGIN_METRICS)
        return why = "more than " + std::to_string(TG_MAX_PLUGIN_METRICS) + " metrics for one instance", -1;
    const std::string part = metric_name_part(name);
    for (uint32_t i = 0; i < n; ++i)
        if (metrics_[i]->name == part) return why = "metric '" + part + "' registered twice", -1;
    auto m = std::make_unique<Metric>();
    m->kind = kind;
    m->name = part;
    m->help = help ? help : "";
    if (label_name) m->label = metric_name_part(label_name);
    for (uint32_t i = 0; i < value_count; ++i) m->values.emplace_back(label_values[i] ? label_values[i] : "");
    if (kind == TG_METRIC_HISTOGRAM) {
        if (buckets) m->bounds.assign(buckets, buckets + bucket_count);
        else m->bounds.assign(std::begin(kDefaultBuckets), std::end(kDefaultBuckets));
    }
    {
        std::lock_guard store_lk(store_->impl_->mu);
        auto& kept = store_->impl_->metrics[prefix_ + part];
        if (kept && same_shape(*kept, *m)) {
            metrics_[n] = kept;  // its first help text stays: it is read unlocked while rendering
        } else {
            m->series_count = std::max<size_t>(1, m->values.size());
            m->series = std::make_unique<Metric::Series[]>(m->series_count);
            if (kind == TG_METRIC_HISTOGRAM)
                for (size_t s = 0; s < m->series_count; ++s)
                    m->series[s].buckets = std::make_unique<std::atomic<uint64_t>[]>(m->bounds.size() + 1);
            kept = std::shared_ptr<Metric>(std::move(m));
            metrics_[n] = kept;
        }
    }
    count_.store(n + 1, std::memory_order_release);
    return static_cast<int32_t>(n);
}

void PluginMetrics::update(int32_t id, uint32_t label_index, double value) noexcept {
    if (id < 0 || static_cast<uint32_t>(id) >= count_.load(std::memory_order_acquire) || !std::isfinite(value))
        return;
    Metric& m = *metrics_[id];
    if (label_index >= m.series_count) return;
    auto& s = m.series[label_index];
    switch (m.kind) {
        case TG_METRIC_COUNTER:
            if (value > 0) s.value.fetch_add(value, std::memory_order_relaxed);
            break;
        case TG_METRIC_GAUGE: s.value.store(value, std::memory_order_relaxed); break;
        default: {
            size_t b = std::lower_bound(m.bounds.begin(), m.bounds.end(), value) - m.bounds.begin();
            s.buckets[b].fetch_add(1, std::memory_order_relaxed);
            s.value.fetch_add(value, std::memory_order_relaxed);
            s.count.fetch_add(1, std::memory_order_relaxed);
        }
    }
}

void PluginMetrics::render(std::string& out) const {
    static const char* const kType[] = {"counter", "gauge", "histogram"};
    const uint32_t n = count_.load(std::memory_order_acquire);
    for (uint32_t i = 0; i < n; ++i) {
        const Metric& m = *metrics_[i];
        const std::string full = prefix_ + m.name + (m.kind == TG_METRIC_COUNTER ? "_total" : "");
        prometheus::family(out, full, kType[m.kind], m.help);
        for (size_t s = 0; s < m.series_count; ++s) {
            const std::string label =
                m.values.empty() ? "" : m.label + "=\"" + prometheus::escape_label_value(m.values[s]) + "\"";
            const auto& se = m.series[s];
            if (m.kind != TG_METRIC_HISTOGRAM) {
                prometheus::sample(out, full, label, number(se.value.load(std::memory_order_relaxed)));
                continue;
            }
            uint64_t cumulative = 0;
            const std::string sep = label.empty() ? "" : label + ",";
            for (size_t b = 0; b <= m.bounds.size(); ++b) {
                cumulative += se.buckets[b].load(std::memory_order_relaxed);
                const std::string le = b < m.bounds.size() ? number(m.bounds[b]) : "+Inf";
                prometheus::sample(out, full + "_bucket", sep + "le=\"" + le + "\"", std::to_string(cumulative));
            }
            prometheus::sample(out, full + "_sum", label, number(se.value.load(std::memory_order_relaxed)));
            prometheus::sample(out, full + "_count", label, std::to_string(se.count.load(std::memory_order_relaxed)));
        }
    }
}

}  // namespace tailgate::plugin
