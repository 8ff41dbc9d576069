// Plugin metrics: bounded registration, lock-free updates, Prometheus text.
#include "plugin/plugin_metrics.hpp"

#include <gtest/gtest.h>

namespace tailgate::plugin {
namespace {

int32_t add(PluginMetrics& m, uint32_t kind, const char* name, const char* label = nullptr,
            std::vector<const char*> values = {}, std::vector<double> buckets = {}) {
    std::string why;
    return m.add(kind, name, "help text", label, values.empty() ? nullptr : values.data(),
                 static_cast<uint32_t>(values.size()), buckets.empty() ? nullptr : buckets.data(),
                 static_cast<uint32_t>(buckets.size()), why);
}

TEST(PluginMetrics, CountersGaugesAndHistogramsRender) {
    PluginMetrics m("budget-aware");
    const int32_t c = add(m, TG_METRIC_COUNTER, "routed", "size", {"small", "large"});
    const int32_t g = add(m, TG_METRIC_GAUGE, "window");
    const int32_t h = add(m, TG_METRIC_HISTOGRAM, "delay_ms", nullptr, {}, {10, 100});
    ASSERT_EQ(c, 0);
    ASSERT_EQ(g, 1);
    ASSERT_EQ(h, 2);
    m.seal();
    m.update(c, 1, 2);
    m.update(c, 1, 3);
    m.update(c, 1, -5);  // counters never go down
    m.update(g, 0, 7.5);
    m.update(h, 0, 5);
    m.update(h, 0, 50);
    m.update(h, 0, 500);
    m.update(c, 9, 1);   // unknown label position: ignored
    m.update(42, 0, 1);  // unknown id: ignored
    std::string out;
    m.render(out);
    EXPECT_NE(out.find("# TYPE tailgate_plugin_budget_aware_routed_total counter\n"), std::string::npos) << out;
    EXPECT_NE(out.find("tailgate_plugin_budget_aware_routed_total{size=\"small\"} 0\n"), std::string::npos) << out;
    EXPECT_NE(out.find("tailgate_plugin_budget_aware_routed_total{size=\"large\"} 5\n"), std::string::npos) << out;
    EXPECT_NE(out.find("tailgate_plugin_budget_aware_window 7.5\n"), std::string::npos) << out;
    EXPECT_NE(out.find("tailgate_plugin_budget_aware_delay_ms_bucket{le=\"10\"} 1\n"), std::string::npos) << out;
    EXPECT_NE(out.find("tailgate_plugin_budget_aware_delay_ms_bucket{le=\"100\"} 2\n"), std::string::npos) << out;
    EXPECT_NE(out.find("tailgate_plugin_budget_aware_delay_ms_bucket{le=\"+Inf\"} 3\n"), std::string::npos) << out;
    EXPECT_NE(out.find("tailgate_plugin_budget_aware_delay_ms_sum 555\n"), std::string::npos) << out;
    EXPECT_NE(out.find("tailgate_plugin_budget_aware_delay_ms_count 3\n"), std::string::npos) << out;
}

TEST(PluginMetrics, UnboundedOrLateRegistrationsAreRefused) {
    PluginMetrics m("x");
    std::string why;
    EXPECT_EQ(m.add(7, "k", "", nullptr, nullptr, 0, nullptr, 0, why), -1);
    EXPECT_NE(why.find("unknown metric kind"), std::string::npos);
    EXPECT_EQ(add(m, TG_METRIC_COUNTER, "a", "label"), -1) << "a label without values";
    std::vector<const char*> many(TG_MAX_PLUGIN_LABEL_VALUES + 1, "v");
    EXPECT_EQ(add(m, TG_METRIC_COUNTER, "a", "label", many), -1);
    EXPECT_EQ(add(m, TG_METRIC_HISTOGRAM, "h", nullptr, {}, {5, 1}), -1) << "buckets out of order";
    EXPECT_EQ(add(m, TG_METRIC_COUNTER, "a"), 0);
    EXPECT_EQ(add(m, TG_METRIC_COUNTER, "a"), -1) << "registered twice";
    for (uint32_t i = 1; i < TG_MAX_PLUGIN_METRICS; ++i)
        EXPECT_EQ(add(m, TG_METRIC_GAUGE, ("g" + std::to_string(i)).c_str()), int32_t(i));
    EXPECT_EQ(add(m, TG_METRIC_GAUGE, "one-too-many"), -1);
    PluginMetrics sealed("y");
    sealed.seal();
    EXPECT_EQ(add(sealed, TG_METRIC_COUNTER, "late"), -1) << "after create()";
}

// A reload's instance registers the same metrics again: with the same store it
// gets the same series, so its counters continue; another shape starts anew.
TEST(PluginMetrics, TheNextInstanceContinuesTheSameSeries) {
    auto store = std::make_shared<PluginMetrics::Store>();
    auto old_gen = std::make_unique<PluginMetrics>("hedge", store);
    const int32_t c = add(*old_gen, TG_METRIC_COUNTER, "hedges", "group", {"a", "b"});
    const int32_t g = add(*old_gen, TG_METRIC_GAUGE, "level");
    old_gen->seal();
    old_gen->update(c, 1, 4);
    old_gen->update(g, 0, 3);

    PluginMetrics next_gen("hedge", store);
    const int32_t c2 = add(next_gen, TG_METRIC_COUNTER, "hedges", "group", {"a", "b"});
    const int32_t g2 = add(next_gen, TG_METRIC_GAUGE, "level", "kind", {"x"});  // another shape
    next_gen.seal();
    old_gen->update(c, 1, 1);  // the old instance's last requests count into the same series
    old_gen.reset();
    next_gen.update(c2, 1, 2);
    std::string out;
    next_gen.render(out);
    EXPECT_NE(out.find("tailgate_plugin_hedge_hedges_total{group=\"b\"} 7\n"), std::string::npos) << out;
    EXPECT_NE(out.find("tailgate_plugin_hedge_level{kind=\"x\"} 0\n"), std::string::npos) << out;
    (void)g2;

    PluginMetrics unrelated("hedge");  // a store of its own: nothing carried
    const int32_t c3 = add(unrelated, TG_METRIC_COUNTER, "hedges", "group", {"a", "b"});
    unrelated.seal();
    out.clear();
    unrelated.render(out);
    EXPECT_NE(out.find("tailgate_plugin_hedge_hedges_total{group=\"b\"} 0\n"), std::string::npos) << out;
    (void)c3;
}

TEST(PluginMetrics, FailuresAreCountedByStrategyName) {
    PluginMetrics::Store store;
    store.failures("latency")->fetch_add(2);
    EXPECT_EQ(store.failures("latency")->load(), 2u);
    EXPECT_EQ(store.failures("health")->load(), 0u);
}

}  // namespace
}  // namespace tailgate::plugin
