// The Prometheus text pieces every /metrics renderer shares (common/prometheus_text.hpp).
#include "common/prometheus_text.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace tailgate;

TEST(PrometheusText, LabelValuesAreEscaped) {
    EXPECT_EQ(prometheus::escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    EXPECT_EQ(prometheus::escape_label_value("plain-id_1.2"), "plain-id_1.2");
}

TEST(PrometheusText, FamilyAndSamples) {
    std::string out;
    prometheus::family(out, "tg_x_total", "counter", "Things counted.");
    prometheus::sample(out, "tg_x_total", "", "3");
    prometheus::sample(out, "tg_x_total", "kind=\"a\"", "0.5");
    EXPECT_EQ(out,
              "# HELP tg_x_total Things counted.\n# TYPE tg_x_total counter\n"
              "tg_x_total 3\ntg_x_total{kind=\"a\"} 0.5\n");
}
