// SSE scanning of relayed upstream streams: framing across arbitrary splits.
#include "dispatch/sse.hpp"

#include <gtest/gtest.h>

using tailgate::dispatch::SseScanner;

namespace {
const std::string kStream =
    ": keep-alive comment\n\n"
    "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"
    "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\r\n\r\n"
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":9}}\n\n"
    "data: [DONE]\n\n";
}

TEST(SseScanner, FindsContentDoneAndUsageAtEverySplitPoint) {
    // Feed the stream in two pieces split at every possible byte.
    for (size_t cut = 0; cut <= kStream.size(); ++cut) {
        SseScanner s;
        bool content = false;
        auto r1 = s.feed(std::string_view(kStream).substr(0, cut));
        auto r2 = s.feed(std::string_view(kStream).substr(cut));
        content = r1.content || r2.content;
        ASSERT_TRUE(content) << "cut at " << cut;
        ASSERT_TRUE(s.saw_done()) << "cut at " << cut;
        ASSERT_EQ(s.prompt_tokens(), 4) << "cut at " << cut;
        ASSERT_EQ(s.completion_tokens(), 9) << "cut at " << cut;
        ASSERT_FALSE(s.saw_error());
    }
}

TEST(SseScanner, ByteAtATime) {
    SseScanner s;
    int content_feeds = 0;
    for (char c : kStream) content_feeds += s.feed(std::string_view(&c, 1)).content;
    EXPECT_EQ(content_feeds, 1);
    EXPECT_TRUE(s.saw_done());
}

TEST(SseScanner, RoleOnlyChunkIsNotContent) {
    SseScanner s;
    auto r = s.feed("data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n");
    EXPECT_FALSE(r.content);
    EXPECT_FALSE(s.saw_done());
}

TEST(SseScanner, ContentKinds) {
    EXPECT_TRUE(SseScanner::has_content(R"({"choices":[{"text":"once"}]})"));
    EXPECT_TRUE(SseScanner::has_content(R"({"choices":[{"delta":{"tool_calls":[{"index":0}]}}]})"));
    EXPECT_TRUE(SseScanner::has_content(R"({"choices":[{"delta":{"function_call":{"name":"f"}}}]})"));
    EXPECT_TRUE(SseScanner::has_content(R"({"choices":[{"delta":{"refusal":"no"}}]})"));
    EXPECT_FALSE(SseScanner::has_content(R"({"choices":[{"delta":{},"finish_reason":"stop"}]})"));
    EXPECT_FALSE(SseScanner::has_content("not json"));
}

TEST(SseScanner, ErrorEventIsReported) {
    SseScanner s;
    auto r = s.feed("data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n");
    EXPECT_TRUE(r.error);
    EXPECT_TRUE(s.saw_error());
    EXPECT_NE(s.error_event().find("overloaded"), std::string::npos);
}

TEST(SseScanner, MultiLineDataIsJoined) {
    SseScanner s;
    auto r = s.feed("event: message\ndata: {\"choices\":[{\"delta\":\ndata: {\"content\":\"x\"}}]}\n\n");
    EXPECT_TRUE(r.content);
}

TEST(SseScanner, ReadyIsTheCompleteEventsAtEverySplitPoint) {
    for (size_t cut = 0; cut <= kStream.size(); ++cut) {
        SseScanner s;
        std::string relayed(s.feed(std::string_view(kStream).substr(0, cut)).ready);
        relayed += s.feed(std::string_view(kStream).substr(cut)).ready;
        ASSERT_EQ(relayed, kStream) << "cut at " << cut;
        ASSERT_EQ(s.pending(), 0u);
    }
    SseScanner s;
    const std::string most = kStream.substr(0, kStream.size() - 3);  // the [DONE] event is not complete yet
    auto r = s.feed(most);
    EXPECT_EQ(r.ready, kStream.substr(0, kStream.size() - 14));
    EXPECT_EQ(s.pending(), 11u);
}

TEST(SseScanner, MalformedDataStopsTheRelayThere) {
    const std::string good = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n";
    SseScanner s;
    const std::string bytes = good + "not an sse line\n\ndata: {\"choices\":[{\"delta\n\n" + good;
    auto r = s.feed(bytes);
    EXPECT_TRUE(r.malformed);
    EXPECT_TRUE(r.content);
    EXPECT_EQ(r.ready, good + "not an sse line\n\n") << "lines without data are harmless and relayed";
    EXPECT_TRUE(s.saw_malformed());
    EXPECT_EQ(s.malformed_data(), "{\"choices\":[{\"delta");
    EXPECT_TRUE(s.feed(good).ready.empty()) << "nothing after a malformed event";
    EXPECT_FALSE(SseScanner().feed("data: \n\n").ready.size()) << "empty data is not JSON either";
}
