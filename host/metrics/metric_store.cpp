#include "metrics/metric_store.hpp"

#include <algorithm>

namespace tailgate::metrics {

namespace {
constexpr std::memory_order relaxed = std::memory_order_relaxed;
}  // namespace

void FloatCounter::add(double x) noexcept {
    double cur = v_.load(relaxed);
    while (!v_.compare_exchange_weak(cur, cur + x, relaxed, relaxed)) {
    }
}

Histogram::Histogram(std::span<const double> upper_bounds)
    : bounds_(upper_bounds), counts_(std::make_unique<std::atomic<uint64_t>[]>(upper_bounds.size() + 1)) {
    for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, relaxed);
}

size_t Histogram::bucket_for(double seconds) const noexcept {
    if (!(seconds > 0)) seconds = 0;  // negative and NaN
    // Few bounds: a linear scan beats a binary search and is branch-predictable.
    size_t i = 0;
    while (i < bounds_.size() && seconds > bounds_[i]) ++i;
    return i;
}

void Histogram::observe(double seconds) noexcept {
    if (!(seconds > 0)) seconds = 0;
    counts_[bucket_for(seconds)].fetch_add(1, relaxed);
    // Capped at ~292 years per observation so a garbage value cannot wrap the sum.
    double ns = std::min(seconds * 1e9, 9.2e18);
    sum_ns_.fetch_add(static_cast<uint64_t>(ns), relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
    Snapshot s;
    s.cumulative.resize(bounds_.size() + 1);
    uint64_t acc = 0;
    for (size_t i = 0; i <= bounds_.size(); ++i) {
        acc += counts_[i].load(relaxed);
        s.cumulative[i] = acc;
    }
    s.sum = static_cast<double>(sum_ns_.load(relaxed)) / 1e9;
    return s;
}

std::shared_ptr<DeploymentSeries> MetricStore::deployment(const std::string& full_labels, const std::string& dep_label,
                                                        bool priced) {
    std::lock_guard lk(mu_);
    auto& e = deps_[full_labels];
    if (!e.series) e.series = std::make_shared<DeploymentSeries>();
    e.last_used = ++seq_;
    e.dep_label = dep_label;
    e.priced = e.priced || priced;
    return e.series;
}

std::shared_ptr<GroupSeries> MetricStore::group(const std::string& name) {
    std::lock_guard lk(mu_);
    auto& e = groups_[name];
    if (!e.series) e.series = std::make_shared<GroupSeries>();
    e.last_used = ++seq_;
    return e.series;
}

Counter& MetricStore::fallback(const std::string& from, const std::string& to) {
    std::lock_guard lk(mu_);
    auto& c = fallbacks_[{from, to}];
    if (!c) c = std::make_unique<Counter>();
    return *c;
}

// An entry is unused when the store holds its only reference (no generation has it).
template <class T>
void MetricStore::prune(std::map<std::string, Entry<T>>& m) {
    std::vector<typename std::map<std::string, Entry<T>>::iterator> unused;
    for (auto it = m.begin(); it != m.end(); ++it)
        if (it->second.series.use_count() == 1) unused.push_back(it);
    if (unused.size() <= kMaxRetired) return;
    std::sort(unused.begin(), unused.end(),
              [](const auto& a, const auto& b) { return a->second.last_used < b->second.last_used; });
    for (size_t i = 0; i + kMaxRetired < unused.size(); ++i) m.erase(unused[i]);
}

void MetricStore::prune() {
    std::lock_guard lk(mu_);
    prune(deps_);
    prune(groups_);
}

std::vector<MetricStore::DeploymentView> MetricStore::live_deployments() const {
    std::lock_guard lk(mu_);
    std::vector<DeploymentView> out;
    for (const auto& [labels, e] : deps_)
        if (e.series.use_count() > 1) out.push_back(DeploymentView{labels, e.dep_label, e.priced, e.series});
    return out;
}

std::vector<std::pair<std::string, std::shared_ptr<const GroupSeries>>> MetricStore::live_groups() const {
    std::lock_guard lk(mu_);
    std::vector<std::pair<std::string, std::shared_ptr<const GroupSeries>>> out;
    for (const auto& [name, e] : groups_)
        if (e.series.use_count() > 1) out.emplace_back(name, e.series);
    return out;
}

std::vector<std::tuple<std::string, std::string, uint64_t>> MetricStore::fallbacks() const {
    std::lock_guard lk(mu_);
    std::vector<std::tuple<std::string, std::string, uint64_t>> out;
    for (const auto& [k, c] : fallbacks_) out.emplace_back(k.first, k.second, c->value());
    return out;
}

}  // namespace tailgate::metrics
