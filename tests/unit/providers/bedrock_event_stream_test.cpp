// The AWS event-stream frame reader: a frame built independently (Python's
// zlib.crc32), split at every byte, both CRCs, header types, and the limits.
#include "providers/bedrock/event_stream.hpp"

#include "event_stream_testing.hpp"

#include <gtest/gtest.h>

#include <cstring>

using namespace tailgate::providers::bedrock;
using tailgate::providers::testing::converse_event;
using tailgate::providers::testing::event_frame;

namespace {

// contentBlockDelta {"contentBlockIndex":0,"delta":{"text":"Hi"}} with :event-type,
// :content-type and :message-type string headers; CRCs from zlib.crc32.
const std::string kGolden(
    "\x00\x00\x00\x94\x00\x00\x00\x57\xb4\xab\x9a\xee\x0b\x3a\x65\x76\x65\x6e\x74\x2d\x74\x79\x70\x65\x07\x00\x11"
    "\x63\x6f\x6e\x74\x65\x6e\x74\x42\x6c\x6f\x63\x6b\x44\x65\x6c\x74\x61\x0d\x3a\x63\x6f\x6e\x74\x65\x6e\x74\x2d"
    "\x74\x79\x70\x65\x07\x00\x10\x61\x70\x70\x6c\x69\x63\x61\x74\x69\x6f\x6e\x2f\x6a\x73\x6f\x6e\x0d\x3a\x6d\x65"
    "\x73\x73\x61\x67\x65\x2d\x74\x79\x70\x65\x07\x00\x05\x65\x76\x65\x6e\x74\x7b\x22\x63\x6f\x6e\x74\x65\x6e\x74"
    "\x42\x6c\x6f\x63\x6b\x49\x6e\x64\x65\x78\x22\x3a\x30\x2c\x22\x64\x65\x6c\x74\x61\x22\x3a\x7b\x22\x74\x65\x78"
    "\x74\x22\x3a\x22\x48\x69\x22\x7d\x7d\x1f\x94\x46\x57",
    148);

struct Seen {
    std::string type, payload;
};

std::vector<Seen> read_all(EventStreamReader& r, std::string_view bytes, size_t step, bool* ok = nullptr) {
    std::vector<Seen> seen;
    bool good = true;
    for (size_t i = 0; i < bytes.size(); i += step) {
        good = r.feed(bytes.substr(i, step), [&](const EventMessage& m) {
            seen.push_back({std::string(m.header(":event-type")), std::string(m.payload)});
            return true;
        });
        if (!good) break;
    }
    if (ok) *ok = good;
    return seen;
}

}  // namespace

TEST(EventStream, Crc32IsZlibs) {
    EXPECT_EQ(crc32("123456789"), 0xCBF43926u) << "the CRC-32 check value";
    EXPECT_EQ(crc32(""), 0u);
}

TEST(EventStream, DecodesAFrameBuiltElsewhere) {
    EventMessage m;
    size_t size = 0;
    std::string error;
    ASSERT_EQ(decode_message(kGolden, m, size, error), FrameStatus::Complete) << error;
    EXPECT_EQ(size, kGolden.size());
    ASSERT_EQ(m.headers.size(), 3u);
    EXPECT_EQ(m.header(":event-type"), "contentBlockDelta");
    EXPECT_EQ(m.header(":content-type"), "application/json");
    EXPECT_EQ(m.header(":message-type"), "event");
    EXPECT_EQ(m.header(":absent"), "");
    EXPECT_EQ(m.payload, R"({"contentBlockIndex":0,"delta":{"text":"Hi"}})");
    EXPECT_EQ(event_frame({{":event-type", "contentBlockDelta"},
                           {":content-type", "application/json"},
                           {":message-type", "event"}},
                          R"({"contentBlockIndex":0,"delta":{"text":"Hi"}})"),
              kGolden)
        << "the tests' encoder agrees with the independent frame";
}

TEST(EventStream, SplitAtEveryByteGivesTheSameMessages) {
    const std::string stream = converse_event("messageStart", R"({"role":"assistant"})") + kGolden +
                               converse_event("metadata", R"({"usage":{"inputTokens":3,"outputTokens":1}})");
    for (size_t step = 1; step <= stream.size(); ++step) {
        EventStreamReader r;
        bool ok = false;
        const auto seen = read_all(r, stream, step, &ok);
        ASSERT_TRUE(ok) << "step " << step << ": " << r.error();
        ASSERT_EQ(seen.size(), 3u) << "step " << step;
        EXPECT_EQ(seen[0].type, "messageStart");
        EXPECT_EQ(seen[1].payload, R"({"contentBlockIndex":0,"delta":{"text":"Hi"}})");
        EXPECT_EQ(seen[2].type, "metadata");
        EXPECT_EQ(r.pending(), 0u);
    }
}

TEST(EventStream, EveryFlippedBitIsCaught) {
    // A flipped bit anywhere fails a CRC (or, in the lengths, a range or CRC check):
    // never a message with altered content.
    for (size_t byte = 0; byte < kGolden.size(); ++byte) {
        for (int bit = 0; bit < 8; ++bit) {
            std::string bad = kGolden;
            bad[byte] = static_cast<char>(bad[byte] ^ (1 << bit));
            EventStreamReader r;
            bool ok = true;
            const auto seen = read_all(r, bad + kGolden, bad.size() + kGolden.size(), &ok);
            EXPECT_TRUE(seen.empty()) << "byte " << byte << " bit " << bit;
            if (!ok) {
                EXPECT_NE(r.error().find("event-stream"), std::string::npos);
            }
        }
    }
}

TEST(EventStream, MalformedStopsForGood) {
    EventStreamReader r;
    std::string bad = kGolden;
    bad[bad.size() - 1] ^= 1;
    int calls = 0;
    EXPECT_FALSE(r.feed(bad, [&](const EventMessage&) { return ++calls, true; }));
    EXPECT_EQ(r.error(), "event-stream message CRC mismatch");
    EXPECT_FALSE(r.feed(kGolden, [&](const EventMessage&) { return ++calls, true; })) << "stopped";
    EXPECT_EQ(calls, 0);
}

TEST(EventStream, LimitsAndHeaderTypes) {
    EventMessage m;
    size_t size = 0;
    std::string error;
    // A prelude announcing more than 16 MiB, with a valid prelude CRC.
    std::string huge;
    tailgate::providers::testing::put_be32(huge, kMaxEventMessage + 1);
    tailgate::providers::testing::put_be32(huge, 0);
    tailgate::providers::testing::put_be32(huge, crc32(huge));
    EXPECT_EQ(decode_message(huge, m, size, error), FrameStatus::Malformed);
    EXPECT_EQ(error, "event-stream message length out of range");
    // Fewer bytes than a prelude: wait for more.
    EXPECT_EQ(decode_message(kGolden.substr(0, 11), m, size, error), FrameStatus::Incomplete);
    EXPECT_EQ(decode_message(kGolden.substr(0, 100), m, size, error), FrameStatus::Incomplete);

    // Every header type: bool true/false, byte, short, int, long, bytes, string, timestamp, uuid.
    std::string h;
    auto name = [&](const char* n, char type) {
        h += static_cast<char>(std::strlen(n));
        h += n;
        h += type;
    };
    name("t", 0);
    name("f", 1);
    name("b", 2), h += 'x';
    name("s", 3), h += std::string(2, 'x');
    name("i", 4), h += std::string(4, 'x');
    name("l", 5), h += std::string(8, 'x');
    name("y", 6), h += std::string("\x00\x02zz", 4);
    name("str", 7), h += std::string("\x00\x03" "abc", 5);
    name("ts", 8), h += std::string(8, 'x');
    name("u", 9), h += std::string(16, 'x');
    std::string frame;
    tailgate::providers::testing::put_be32(frame, static_cast<uint32_t>(16 + h.size() + 2));
    tailgate::providers::testing::put_be32(frame, static_cast<uint32_t>(h.size()));
    tailgate::providers::testing::put_be32(frame, crc32(frame));
    frame += h + "{}";
    tailgate::providers::testing::put_be32(frame, crc32(frame));
    ASSERT_EQ(decode_message(frame, m, size, error), FrameStatus::Complete) << error;
    ASSERT_EQ(m.headers.size(), 10u);
    EXPECT_EQ(m.header("str"), "abc");
    EXPECT_EQ(m.header("y"), "") << "bytes are not a string";
    EXPECT_EQ(m.headers[6].value, "zz");
    EXPECT_EQ(m.headers[9].value.size(), 16u);
    EXPECT_EQ(m.payload, "{}");

    // An unknown header type is malformed, even with good CRCs.
    std::string unknown = event_frame({}, "{}");
    std::string h2 = std::string("\x01q\x0a", 3);
    std::string f2;
    tailgate::providers::testing::put_be32(f2, static_cast<uint32_t>(16 + h2.size()));
    tailgate::providers::testing::put_be32(f2, static_cast<uint32_t>(h2.size()));
    tailgate::providers::testing::put_be32(f2, crc32(f2));
    f2 += h2;
    tailgate::providers::testing::put_be32(f2, crc32(f2));
    EXPECT_EQ(decode_message(f2, m, size, error), FrameStatus::Malformed);
    EXPECT_EQ(error, "event-stream header of an unknown type");
    EXPECT_EQ(decode_message(unknown, m, size, error), FrameStatus::Complete) << "no headers is fine";
}
