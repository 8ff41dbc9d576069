#include "server/stream_usage.hpp"

#include "providers/openai/codec.hpp"

#include <gtest/gtest.h>

using namespace tailgate;
using namespace tailgate::server;

namespace {

ParsedBody parsed(std::string_view json) { return std::get<ParsedBody>(parse_body(json, Endpoint::Chat)); }

std::string upstream_body(const ParsedBody& b) { return b.body_for("m"); }

}  // namespace

TEST(StreamUsage, AskedForWhenTheClientDidNot) {
    auto b = parsed(R"({"model":"x","stream":true,"messages":[]})");
    EXPECT_TRUE(inject_stream_usage(b));
    EXPECT_EQ(upstream_body(b), R"({"model":"m","stream":true,"messages":[],"stream_options":{"include_usage":true}})");
    // The client's other stream options stay.
    b = parsed(R"({"model":"x","stream":true,"stream_options":{"include_usage":false,"x":1},"messages":[]})");
    EXPECT_TRUE(inject_stream_usage(b));
    EXPECT_EQ(upstream_body(b), R"({"model":"m","stream":true,"stream_options":{"x":1,"include_usage":true},"messages":[]})");
    // Dropping a field per deployment still works on the rewritten members.
    EXPECT_EQ(b.body_for("m", {"messages"}), R"({"model":"m","stream":true,"stream_options":{"x":1,"include_usage":true}})");
}

TEST(StreamUsage, LeftAloneWhenTheClientAskedOrDoesNotStream) {
    auto b = parsed(R"({"model":"x","stream":true,"stream_options":{"include_usage":true},"messages":[]})");
    EXPECT_FALSE(inject_stream_usage(b));
    b = parsed(R"({"model":"x","messages":[]})");
    EXPECT_FALSE(inject_stream_usage(b));
    EXPECT_EQ(upstream_body(b), R"({"model":"m","messages":[]})");
}

TEST(StreamUsage, TheUsageChunkIsTakenOutAndStillCounted) {
    providers::openai::Codec codec;
    auto dec = strip_usage_chunks(codec.decoder(nullptr));
    const std::string content = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n";
    const std::string finish = "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
    const std::string usage = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5}}\n\n";
    const std::string done = "data: [DONE]\n\n";
    std::string seen;
    const std::string all = content + finish + usage + done;
    // Fed in pieces that split events anywhere.
    for (size_t i = 0; i < all.size(); i += 7) seen += dec->feed(std::string_view(all).substr(i, 7)).client;
    EXPECT_EQ(seen, content + finish + done);
    EXPECT_EQ(dec->usage().prompt_tokens, 3);
    EXPECT_EQ(dec->usage().completion_tokens, 5);
    EXPECT_TRUE(dec->saw_done());
}
