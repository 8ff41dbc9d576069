// Host vocabulary <-> plugin ABI: every value crosses the boundary and comes
// back as itself, and a value one side does not know is refused, not guessed.
#include "common/vocabulary.hpp"
#include "plugin/abi_convert.hpp"

#include <tailgate/plugin.hpp>

#include <gtest/gtest.h>

#include <set>

using namespace tailgate;

namespace {

// Walks the ABI values 0, 1, ... that map to a host value: each must convert
// back to the same ABI value, and no two may share a host value. Returns how
// many there are; the first unknown raw value ends the walk and must be refused.
template <class T>
uint32_t round_trip_all() {
    std::set<T> seen;
    uint32_t raw = 0;
    for (; auto host = plugin::from_abi<T>(raw); ++raw) {
        EXPECT_EQ(static_cast<uint32_t>(plugin::to_abi(*host)), raw);
        EXPECT_TRUE(seen.insert(*host).second) << "ABI value " << raw << " maps to a host value twice";
        // And from the host side: the enumerator with this position comes back unchanged.
        const T by_position = static_cast<T>(raw);
        EXPECT_EQ(plugin::from_abi<T>(plugin::to_abi(by_position)), by_position);
    }
    EXPECT_FALSE(plugin::from_abi<T>(raw + 7).has_value());
    EXPECT_FALSE(plugin::from_abi<T>(0xffffffffu).has_value());
    return raw;
}

}  // namespace

TEST(AbiConvert, EveryEnumeratorRoundTrips) {
    EXPECT_EQ(round_trip_all<Endpoint>(), kEndpointCount);
    EXPECT_EQ(round_trip_all<Launch>(), 3u);
    EXPECT_EQ(round_trip_all<EventType>(), 7u);
    EXPECT_EQ(round_trip_all<ErrorClass>(), kErrorClassCount);
    EXPECT_EQ(round_trip_all<CancelReason>(), 3u);
    EXPECT_EQ(round_trip_all<Health>(), kHealthCount);
}

TEST(AbiConvert, NamedValuesMeetTheirCounterparts) {
    // Spot checks that the mapping is by meaning, not by position alone.
    EXPECT_EQ(plugin::to_abi(Endpoint::Embeddings), TG_ENDPOINT_EMBEDDINGS);
    EXPECT_EQ(plugin::to_abi(Endpoint::AudioSpeech), TG_ENDPOINT_AUDIO_SPEECH);
    EXPECT_EQ(plugin::from_abi<Endpoint>(TG_ENDPOINT_MODERATIONS), Endpoint::Moderations);
    EXPECT_EQ(plugin::to_abi(Endpoint::ImageEdits), TG_ENDPOINT_IMAGE_EDITS);
    EXPECT_EQ(plugin::from_abi<Endpoint>(TG_ENDPOINT_IMAGE_VARIATIONS), Endpoint::ImageVariations);
    EXPECT_EQ(TG_ENDPOINT_IMAGE_EDITS, 10);  // appended: the values plugins were built with stay
    EXPECT_EQ(TG_ENDPOINT_IMAGE_VARIATIONS, 11);
    EXPECT_EQ(plugin::to_abi(Launch::AfterDelay), TG_LAUNCH_AFTER_DELAY);
    EXPECT_EQ(plugin::to_abi(EventType::ShadowDone), TG_EVENT_SHADOW_DONE);
    EXPECT_EQ(plugin::to_abi(ErrorClass::ContextWindow), TG_ERRC_CONTEXT_WINDOW);
    EXPECT_EQ(plugin::to_abi(CancelReason::ClientGone), TG_CANCEL_CLIENT_GONE);
    EXPECT_EQ(plugin::from_abi<Health>(TG_HEALTH_HALF_OPEN), Health::HalfOpen);
}

TEST(AbiConvert, ErrorClassNamesAreTheSdkOnes) {
    // Metrics labels (host) and plugin log names (SDK) must not drift apart.
    for (size_t c = 0; c < kErrorClassCount; ++c) {
        const auto cls = static_cast<ErrorClass>(c);
        EXPECT_STREQ(error_class_name(cls), sdk::error_class_name(plugin::to_abi(cls))) << c;
    }
}

TEST(AbiConvert, LatencySummaryRoundTrips) {
    const LatencySummary s{42, 10.5, 9.0, 20.25, 30.0, 99.75};
    const tg_latency_summary a = plugin::to_abi(s);
    EXPECT_EQ(a.samples, 42u);
    EXPECT_DOUBLE_EQ(a.mean_ms, 10.5);
    EXPECT_DOUBLE_EQ(a.p50_ms, 9.0);
    EXPECT_DOUBLE_EQ(a.p90_ms, 20.25);
    EXPECT_DOUBLE_EQ(a.p95_ms, 30.0);
    EXPECT_DOUBLE_EQ(a.p99_ms, 99.75);
    const LatencySummary back = plugin::from_abi(a);
    EXPECT_EQ(back.samples, s.samples);
    EXPECT_DOUBLE_EQ(back.mean_ms, s.mean_ms);
    EXPECT_DOUBLE_EQ(back.p50_ms, s.p50_ms);
    EXPECT_DOUBLE_EQ(back.p90_ms, s.p90_ms);
    EXPECT_DOUBLE_EQ(back.p95_ms, s.p95_ms);
    EXPECT_DOUBLE_EQ(back.p99_ms, s.p99_ms);
}

TEST(AbiConvert, DeploymentStatsCarryEveryField) {
    DeploymentStats s;
    s.in_flight = 3;
    s.attempts = 100;
    s.successes = 90;
    s.failures = 7;
    s.health = Health::Cooling;
    s.cooldown_until_ms = 123456;
    s.ttft.samples = 5;
    s.ttft.p95_ms = 250;
    s.total.samples = 6;
    s.total.p99_ms = 900;
    const tg_deployment_stats a = plugin::to_abi(s);
    EXPECT_EQ(a.struct_size, sizeof(tg_deployment_stats));
    EXPECT_EQ(a.in_flight, 3u);
    EXPECT_EQ(a.attempts, 100u);
    EXPECT_EQ(a.successes, 90u);
    EXPECT_EQ(a.failures, 7u);
    EXPECT_EQ(a.health, uint32_t{TG_HEALTH_COOLING});
    EXPECT_EQ(a.cooldown_until_ms, 123456);
    EXPECT_EQ(a.ttft.samples, 5u);
    EXPECT_DOUBLE_EQ(a.ttft.p95_ms, 250);
    EXPECT_EQ(a.total.samples, 6u);
    EXPECT_DOUBLE_EQ(a.total.p99_ms, 900);
}
