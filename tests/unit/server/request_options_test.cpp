// Per-request options turned into bounded values: model lists and timeouts.
#include "server/request_options.hpp"

#include <gtest/gtest.h>

#include <limits>

using namespace tailgate;
using namespace tailgate::server;
using namespace std::chrono_literals;

namespace {
std::vector<std::string> list(std::string_view s) {
    auto r = split_model_list(s);
    if (auto* e = std::get_if<ApiError>(&r)) ADD_FAILURE() << e->message;
    return std::holds_alternative<ApiError>(r) ? std::vector<std::string>{} : std::get<std::vector<std::string>>(r);
}
ApiError list_error(std::string_view s) {
    auto r = split_model_list(s);
    EXPECT_TRUE(std::holds_alternative<ApiError>(r)) << s.substr(0, 80);
    return std::holds_alternative<ApiError>(r) ? std::get<ApiError>(r) : ApiError{};
}
}  // namespace

TEST(ModelList, SplitsAndTrims) {
    EXPECT_EQ(list("a,b"), (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(list("  a  ,   b c , d"), (std::vector<std::string>{"a", "b c", "d"}));
    EXPECT_EQ(list(std::string(100000, ' ') + "a," + std::string(100000, ' ') + "b"),
              (std::vector<std::string>{"a", "b"}));
}

TEST(ModelList, CountedAndCappedBeforeBuilding) {
    std::string sixteen = "m";
    for (unsigned i = 1; i < kMaxAttempts; ++i) sixteen += ",m";
    EXPECT_EQ(list(sixteen).size(), static_cast<size_t>(kMaxAttempts));
    EXPECT_EQ(list_error(sixteen + ",m").param, "model");
    // A million commas: refused by the count, nothing built.
    EXPECT_NE(list_error(std::string(1000000, ',')).message.find("At most"), std::string::npos);
    EXPECT_EQ(list_error("a,,b").code, "invalid_model_list");
    EXPECT_EQ(list_error("a,   ").code, "invalid_model_list");
    EXPECT_EQ(list_error(" , a").code, "invalid_model_list");
}

TEST(RequestTimeouts, ClampedToOneMillisecondAndTheMaximum) {
    auto t = [](double s) {
        ParsedBody b;
        b.timeout_s = s;
        b.stream_timeout_s = s;
        auto r = request_timeouts(b, 3600000ms);
        EXPECT_EQ(r.timeout, r.stream_timeout);
        return r.timeout->count();
    };
    EXPECT_EQ(t(30), 30000);
    EXPECT_EQ(t(0.0015), 2);  // rounded up: never shorter than asked
    EXPECT_EQ(t(1e-9), 1);    // never 0, which would mean "no deadline"
    EXPECT_EQ(t(1e300), 3600000);  // no overflow in the conversion
    EXPECT_EQ(t(std::numeric_limits<double>::max()), 3600000);
    EXPECT_EQ(t(3600.0001), 3600000);
    ParsedBody none;
    auto r = request_timeouts(none, 1000ms);
    EXPECT_FALSE(r.timeout);
    EXPECT_FALSE(r.stream_timeout);
}
