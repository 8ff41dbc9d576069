// The OpenAI client surfaces: request parsing per operation, pass-through vs
// rendering, and the renderer's OpenAI shapes (streamed chunks, whole bodies).
#include "providers/openai/codec.hpp"
#include "surfaces/openai/render.hpp"
#include "surfaces/surface.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

using namespace tailgate;
using namespace tailgate::providers;
using tailgate::surfaces::surface_for;

namespace {

// A codec of another wire, for sink_for; never asked to build or decode here.
class OtherWire final : public providers::Codec {
public:
    std::string_view name() const override { return "other"; }
    Wire wire() const override { return Wire::Anthropic; }
    void build(const CallSpec&, upstream::Request&) const override {}
    ResponseDecoderPtr decoder(EventSinkPtr) const override { return nullptr; }
    UpstreamError decode_error(const upstream::ResponseHead&, std::string_view) const override { return {}; }
};

// The JSON documents of `data:` lines, and whether [DONE] came last.
std::vector<rapidjson::Document> frames(const std::string& sse, bool& done) {
    std::vector<rapidjson::Document> out;
    done = false;
    size_t pos = 0;
    while ((pos = sse.find("data: ", pos)) != std::string::npos) {
        const size_t end = sse.find("\n\n", pos);
        const std::string data = sse.substr(pos + 6, end - pos - 6);
        pos = end + 2;
        if (data == "[DONE]") {
            done = true;
            continue;
        }
        rapidjson::Document d;
        d.Parse(data.c_str());
        EXPECT_FALSE(d.HasParseError()) << data;
        out.push_back(std::move(d));
    }
    return out;
}

Event content(std::string_view text, uint32_t choice = 0) {
    Event e = make_event(Event::Kind::Content, choice);
    e.text = text;
    return e;
}

}  // namespace

TEST(OpenAISurfaces, OneSurfacePerOperationParsingItsRequiredField) {
    EXPECT_EQ(surface_for(Endpoint::Chat).operation(), Endpoint::Chat);
    EXPECT_EQ(surface_for(Endpoint::Completions).operation(), Endpoint::Completions);
    EXPECT_EQ(surface_for(Endpoint::Embeddings).operation(), Endpoint::Embeddings);

    auto chat = surface_for(Endpoint::Chat).parse(R"({"model":"m","messages":[],"fastest_response":true})");
    ASSERT_TRUE(std::holds_alternative<ParsedBody>(chat));
    EXPECT_EQ(std::get<ParsedBody>(chat).members, R"("messages":[])") << "gateway fields are not forwarded";
    EXPECT_TRUE(std::get<ParsedBody>(chat).fastest_response);

    auto no_prompt = surface_for(Endpoint::Completions).parse(R"({"model":"m","messages":[]})");
    ASSERT_TRUE(std::holds_alternative<ApiError>(no_prompt));
    EXPECT_EQ(std::get<ApiError>(no_prompt).param, "prompt");

    auto streamed = surface_for(Endpoint::Embeddings).parse(R"({"model":"m","input":"x","stream":true})");
    ASSERT_TRUE(std::holds_alternative<ApiError>(streamed));
    EXPECT_EQ(std::get<ApiError>(streamed).status, 400);
}

TEST(OpenAISurfaces, SameWirePassesThroughOtherWireIsRendered) {
    const auto& chat = surface_for(Endpoint::Chat);
    EXPECT_EQ(surfaces::sink_for(chat, openai::codec(), true), nullptr);
    EXPECT_NE(surfaces::sink_for(chat, OtherWire{}, true), nullptr);
    EXPECT_NE(surfaces::sink_for(surface_for(Endpoint::Completions), OtherWire{}, false), nullptr);
    EXPECT_EQ(surfaces::sink_for(surface_for(Endpoint::Embeddings), OtherWire{}, false), nullptr)
        << "embeddings have nothing to render";
}

TEST(OpenAISurfaces, StreamErrorIsAnOpenAIErrorEvent) {
    std::string out;
    surface_for(Endpoint::Chat).stream_error(ApiError::bad_gateway("lost", "upstream_stream_interrupted"), out);
    bool done = false;
    auto f = frames(out, done);
    ASSERT_EQ(f.size(), 1u);
    EXPECT_STREQ(f[0]["error"]["message"].GetString(), "lost");
    EXPECT_STREQ(f[0]["error"]["code"].GetString(), "upstream_stream_interrupted");
}

TEST(OpenAIRenderer, ChatChunksFromEvents) {
    auto r = surface_for(Endpoint::Chat).renderer(true);
    Event start = make_event(Event::Kind::Start);
    start.text = "msg_1";
    start.model = "claude-x";
    r->on_event(start);
    r->on_event(content("He said \"hi\"\n"));
    Event tool = make_event(Event::Kind::ToolCall);
    tool.tool = {0, "call_1", "lookup", "{\"q\":"};
    r->on_event(tool);
    Event fin = make_event(Event::Kind::Finish);
    fin.text = "tool_calls";
    r->on_event(fin);
    Event usage = make_event(Event::Kind::Usage);
    usage.usage = {7, 11};
    r->on_event(usage);
    r->on_event(make_event(Event::Kind::Done));
    std::string out;
    r->take(out);

    bool done = false;
    auto f = frames(out, done);
    EXPECT_TRUE(done);
    ASSERT_EQ(f.size(), 4u);
    for (auto& d : f) {
        EXPECT_STREQ(d["object"].GetString(), "chat.completion.chunk");
        EXPECT_STREQ(d["id"].GetString(), "msg_1");
        EXPECT_STREQ(d["model"].GetString(), "claude-x");
        EXPECT_TRUE(d["created"].IsInt64());
    }
    EXPECT_STREQ(f[0]["choices"][0]["delta"]["content"].GetString(), "He said \"hi\"\n");
    EXPECT_TRUE(f[0]["choices"][0]["finish_reason"].IsNull());
    const auto& call = f[1]["choices"][0]["delta"]["tool_calls"][0];
    EXPECT_EQ(call["index"].GetInt(), 0);
    EXPECT_STREQ(call["id"].GetString(), "call_1");
    EXPECT_STREQ(call["type"].GetString(), "function");
    EXPECT_STREQ(call["function"]["name"].GetString(), "lookup");
    EXPECT_STREQ(call["function"]["arguments"].GetString(), "{\"q\":");
    EXPECT_STREQ(f[2]["choices"][0]["finish_reason"].GetString(), "tool_calls");
    EXPECT_EQ(f[3]["choices"].Size(), 0u);
    EXPECT_EQ(f[3]["usage"]["total_tokens"].GetInt(), 18);

    std::string again;
    r->take(again);
    EXPECT_TRUE(again.empty()) << "take() hands each byte over once";
}

TEST(OpenAIRenderer, CompletionChunks) {
    auto r = surface_for(Endpoint::Completions).renderer(true);
    r->on_event(content("once", 1));
    std::string out;
    r->take(out);
    bool done = false;
    auto f = frames(out, done);
    ASSERT_EQ(f.size(), 1u);
    EXPECT_STREQ(f[0]["object"].GetString(), "text_completion");
    EXPECT_EQ(f[0]["choices"][0]["index"].GetInt(), 1);
    EXPECT_STREQ(f[0]["choices"][0]["text"].GetString(), "once");
}

TEST(OpenAIRenderer, WholeChatBodyOnDone) {
    auto r = surface_for(Endpoint::Chat).renderer(false);
    r->on_event(content("Hel"));
    r->on_event(content("lo"));
    Event t1 = make_event(Event::Kind::ToolCall);
    t1.tool = {0, "c1", "f", "{\"a\""};
    r->on_event(t1);
    Event t2 = make_event(Event::Kind::ToolCall);
    t2.tool = {0, "", "", ":1}"};
    r->on_event(t2);
    Event usage = make_event(Event::Kind::Usage);
    usage.usage = {2, 3};
    r->on_event(usage);
    std::string none;
    r->take(none);
    EXPECT_TRUE(none.empty()) << "a whole body is written once, at Done";
    r->on_event(make_event(Event::Kind::Done));
    std::string body;
    r->take(body);
    rapidjson::Document d;
    d.Parse(body.c_str());
    ASSERT_FALSE(d.HasParseError()) << body;
    EXPECT_STREQ(d["object"].GetString(), "chat.completion");
    const auto& msg = d["choices"][0]["message"];
    EXPECT_STREQ(msg["role"].GetString(), "assistant");
    EXPECT_STREQ(msg["content"].GetString(), "Hello");
    EXPECT_STREQ(msg["tool_calls"][0]["function"]["arguments"].GetString(), "{\"a\":1}");
    EXPECT_STREQ(d["choices"][0]["finish_reason"].GetString(), "stop");
    EXPECT_EQ(d["usage"]["prompt_tokens"].GetInt(), 2);
    EXPECT_EQ(d["usage"]["completion_tokens"].GetInt(), 3);
}
