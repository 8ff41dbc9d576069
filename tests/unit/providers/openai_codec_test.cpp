// The OpenAI codec: the upstream request it builds, and how it reads bodies,
// error statuses and SSE streams (split at every byte boundary).
#include "providers/openai/codec.hpp"
#include "common/redact.hpp"
#include "providers/registry.hpp"
#include "testing_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>

using namespace tailgate;
using namespace tailgate::providers;
using tailgate::providers::testing::head;
using tailgate::providers::testing::RecordingSink;

namespace {

ParsedBody request_with(std::string members, std::vector<ParsedBody::Span> spans) {
    ParsedBody b;
    b.model = "alias";
    b.members = std::move(members);
    b.spans = std::move(spans);
    return b;
}

const std::string kChunks =
    ": keep-alive\n\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\r\n\r\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"function\":"
    "{\"name\":\"f\",\"arguments\":\"{\\\"a\\\"\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n"
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":9}}\n\n"
    "data: [DONE]\n\n";

}  // namespace

TEST(OpenAICodec, BuildsBearerRequestWithTheModelRewritten) {
    const std::vector<std::string> none;
    const ParsedBody body = request_with(R"("messages":[],"n":2)", {{"messages", 0, 13}, {"n", 14, 19}});
    Target t{true, "api.example.com", "443", "/v1", "", "sk-secret", true};
    tailgate::upstream::Request req;
    openai::codec().build(CallSpec{t, Endpoint::Chat, true, "gpt-x", body, none}, req);
    EXPECT_EQ(req.origin.host, "api.example.com");
    EXPECT_EQ(req.origin.port, "443");
    EXPECT_TRUE(req.origin.tls);
    EXPECT_EQ(req.target, "/v1/chat/completions");
    ASSERT_EQ(req.headers.size(), 2u);
    EXPECT_EQ(req.headers[0], std::make_pair(std::string("Authorization"), std::string("Bearer sk-secret")));
    EXPECT_EQ(req.headers[1], std::make_pair(std::string("Accept"), std::string("text/event-stream")));
    EXPECT_EQ(req.body, R"({"model":"gpt-x","messages":[],"n":2})");
}

TEST(OpenAICodec, PathPerOperationDropsAndNoKey) {
    const std::vector<std::string> drop = {"n"};
    const ParsedBody body = request_with(R"("prompt":"x","n":2)", {{"prompt", 0, 12}, {"n", 13, 18}});
    Target t{false, "127.0.0.1", "8001", "", "", "", true};
    tailgate::upstream::Request req;
    openai::codec().build(CallSpec{t, Endpoint::Completions, false, "m", body, drop}, req);
    EXPECT_EQ(req.target, "/completions");
    EXPECT_TRUE(req.headers.empty()) << "no key, no stream: no header";
    EXPECT_EQ(req.body, R"({"model":"m","prompt":"x"})");
    EXPECT_STREQ(openai::Codec::path_for(Endpoint::Embeddings), "/embeddings");
}

TEST(OpenAICodec, ErrorStatusesGiveClassMessageAndRetryAfter) {
    const Codec& c = openai::codec();
    auto e = c.decode_error(head(429, {{"retry-after", "3"}}), R"({"error":{"message":"slow down"}})");
    EXPECT_EQ(e.error_class, ErrorClass::RateLimit);
    EXPECT_EQ(e.http_status, 429);
    EXPECT_EQ(e.message, "slow down");
    EXPECT_EQ(e.retry_after_ms, 3000);

    e = c.decode_error(head(429, {{"retry-after-ms", "250"}}), "{}");
    EXPECT_EQ(e.retry_after_ms, 250);

    e = c.decode_error(head(400), R"({"error":{"message":"too long","code":"context_length_exceeded"}})");
    EXPECT_EQ(e.error_class, ErrorClass::ContextWindow);
    EXPECT_EQ(e.retry_after_ms, -1);

    e = c.decode_error(head(400), R"({"error":{"message":"bad"}})");
    EXPECT_EQ(e.error_class, ErrorClass::BadRequest);
    EXPECT_FALSE(is_retryable(e.error_class));

    e = c.decode_error(head(502, {{"content-type", "text/html"}}), "<html>Bad gateway</html>");
    EXPECT_EQ(e.error_class, ErrorClass::Server);
    EXPECT_NE(e.message.find("non-JSON body (text/html)"), std::string::npos) << e.message;
    EXPECT_TRUE(is_retryable(e.error_class));

    EXPECT_EQ(c.decode_error(head(401), "{}").error_class, ErrorClass::Auth);
    EXPECT_EQ(c.decode_error(head(404), "{}").error_class, ErrorClass::NotFound);
    EXPECT_EQ(c.decode_error(head(408), "{}").error_class, ErrorClass::Timeout);
}

TEST(OpenAICodec, ErrorMessagesAreScrubbedOfKeys) {
    tailgate::set_redacted_secrets({"sk-abcdefghijklmnopqrstuvwx"});
    auto e = openai::codec().decode_error(head(401), R"({"error":{"message":"bad key sk-abcdefghijklmnopqrstuvwx"}})");
    auto s = openai::codec().decoder(nullptr);
    s->feed("data: {\"error\":{\"message\":\"key sk-abcdefghijklmnopqrstuvwx\"}}\n\n");
    tailgate::set_redacted_secrets({});
    EXPECT_EQ(e.message, "bad key ***");
    ASSERT_NE(s->stream_error(), nullptr);
    EXPECT_EQ(s->stream_error()->message, "key ***");
}

TEST(OpenAICodec, NonStreamBodies) {
    auto d = openai::codec().decoder(nullptr);
    std::string body = R"({"choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":3,"completion_tokens":5}})";
    const std::string before = body;
    auto r = d->decode_body(body);
    EXPECT_TRUE(r.ok);
    EXPECT_EQ(r.usage.prompt_tokens, 3);
    EXPECT_EQ(r.usage.completion_tokens, 5);
    EXPECT_EQ(body, before) << "pass-through leaves the body alone";

    std::string html = "<html>oops</html>";
    auto bad = openai::codec().decoder(nullptr)->decode_body(html);
    EXPECT_FALSE(bad.ok);
    EXPECT_NE(bad.problem.find("not a JSON object: <html>oops"), std::string::npos) << bad.problem;
}

TEST(OpenAICodec, StreamDecodesTheSameAtEverySplitPoint) {
    for (size_t cut = 0; cut <= kChunks.size(); ++cut) {
        auto d = openai::codec().decoder(nullptr);
        auto r1 = d->feed(std::string_view(kChunks).substr(0, cut));
        std::string client(r1.client);
        auto r2 = d->feed(std::string_view(kChunks).substr(cut));
        client += r2.client;
        ASSERT_TRUE(r1.content || r2.content) << "cut at " << cut;
        ASSERT_TRUE(d->saw_done()) << "cut at " << cut;
        ASSERT_EQ(d->usage().prompt_tokens, 4) << "cut at " << cut;
        ASSERT_EQ(d->usage().completion_tokens, 9) << "cut at " << cut;
        ASSERT_EQ(d->stream_error(), nullptr);
        ASSERT_EQ(d->pending(), 0u);
        ASSERT_EQ(client, kChunks) << "pass-through: the client gets every byte, once, cut at " << cut;
    }
}

TEST(OpenAICodec, StreamCommitPointIsTheFirstContentByteAtATime) {
    auto d = openai::codec().decoder(nullptr);
    int content_feeds = 0;
    size_t at = 0, i = 0;
    for (char c : kChunks) {
        ++i;
        if (d->feed(std::string_view(&c, 1)).content && content_feeds++ == 0) at = i;
    }
    EXPECT_EQ(content_feeds, 2) << "the text and the tool-call chunks; the role-only chunk is not content";
    EXPECT_EQ(at, kChunks.find("\r\n\r\n") + 4) << "content is seen when its event is complete";
}

TEST(OpenAICodec, StreamErrorEventAtEverySplitPoint) {
    const std::string s = "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n";
    for (size_t cut = 0; cut <= s.size(); ++cut) {
        auto d = openai::codec().decoder(nullptr);
        auto r1 = d->feed(std::string_view(s).substr(0, cut));
        auto r2 = d->feed(std::string_view(s).substr(cut));
        const UpstreamError* e = r1.error ? r1.error : r2.error;
        ASSERT_NE(e, nullptr) << "cut at " << cut;
        EXPECT_EQ(e->error_class, ErrorClass::Server);
        EXPECT_EQ(e->message, "overloaded");
        EXPECT_EQ(e->retry_after_ms, -1);
        EXPECT_EQ(d->stream_error(), e);
    }
}

TEST(OpenAICodec, MalformedEventStopsTheClientBytesThere) {
    auto d = openai::codec().decoder(nullptr);
    const std::string good = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n";
    const std::string fed = good + "data: <html>\n\n" + good;
    auto r = d->feed(fed);
    EXPECT_TRUE(r.content);
    EXPECT_TRUE(r.malformed);
    EXPECT_EQ(r.client, good);
    EXPECT_EQ(d->malformed_excerpt(), "<html>");
    EXPECT_TRUE(d->feed(good).client.empty()) << "nothing after a malformed event";
}

TEST(OpenAICodec, WithASinkEventsAreNormalizedAndTheSinkRendersTheClientBytes) {
    std::vector<RecordingSink::Seen> seen;
    auto d = openai::codec().decoder(std::make_unique<RecordingSink>(seen));
    auto r = d->feed(kChunks);
    EXPECT_TRUE(r.content);
    EXPECT_TRUE(r.done);
    ASSERT_EQ(seen.size(), 6u);
    EXPECT_EQ(seen[0].kind, Event::Kind::Start);
    EXPECT_EQ(seen[1].kind, Event::Kind::Content);
    EXPECT_EQ(seen[1].text, "Hel");
    EXPECT_EQ(seen[2].kind, Event::Kind::ToolCall);
    EXPECT_EQ(seen[2].tool_id, "c1");
    EXPECT_EQ(seen[2].tool_name, "f");
    EXPECT_EQ(seen[2].tool_args, "{\"a\"");
    EXPECT_EQ(seen[3].kind, Event::Kind::Finish);
    EXPECT_EQ(seen[3].text, "tool_calls");
    EXPECT_EQ(seen[4].kind, Event::Kind::Usage);
    EXPECT_EQ(seen[4].usage.completion_tokens, 9);
    EXPECT_EQ(seen[5].kind, Event::Kind::Done);
    EXPECT_EQ(r.client, "<0><1><2><4><3><6>") << "the client bytes are the sink's, not the upstream's";
}

TEST(OpenAICodec, WithASinkAWholeBodyBecomesEventsAndIsReplacedByTheRendering) {
    std::vector<RecordingSink::Seen> seen;
    auto d = openai::codec().decoder(std::make_unique<RecordingSink>(seen));
    std::string body = R"({"id":"x1","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi",)"
                       R"("tool_calls":[{"id":"a","function":{"name":"f","arguments":"{}"}},)"
                       R"({"id":"b","function":{"name":"g","arguments":"[]"}}]},"finish_reason":"tool_calls"}],)"
                       R"("usage":{"prompt_tokens":1,"completion_tokens":2}})";
    auto r = d->decode_body(body);
    ASSERT_TRUE(r.ok);
    ASSERT_EQ(seen.size(), 7u);
    EXPECT_EQ(seen[0].kind, Event::Kind::Start);
    EXPECT_EQ(seen[0].text, "x1");
    EXPECT_EQ(seen[1].text, "hi");
    EXPECT_EQ(seen[2].tool_name, "f");
    EXPECT_EQ(seen[3].tool_name, "g");
    EXPECT_EQ(seen[3].tool_index, 1u) << "a whole body's calls are indexed by position";
    EXPECT_EQ(seen[4].kind, Event::Kind::Finish);
    EXPECT_EQ(seen[5].kind, Event::Kind::Usage);
    EXPECT_EQ(seen[6].kind, Event::Kind::Done);
    EXPECT_EQ(body, "<0><1><2><2><4><3><6>");
}

TEST(ProviderRegistry, KnowsEveryConfigPrefixAndItsCodec) {
    const auto& names = provider_names();
    EXPECT_EQ(names.front(), "openai");
    for (const auto& n : names) {
        const Provider* p = find_provider(n);
        ASSERT_NE(p, nullptr) << n;
        EXPECT_EQ(p->name, n);
        if (n != "anthropic") {  // anthropic_codec_test.cpp covers its own wire
            EXPECT_EQ(p->codec().wire(), n == "bedrock" ? Wire::Bedrock : Wire::OpenAI) << n;
        }
    }
    EXPECT_EQ(find_provider("nope"), nullptr);
    EXPECT_EQ(find_provider("azure")->codec().name(), "azure");
    EXPECT_EQ(find_provider("azure")->default_api_base, nullptr) << "Azure needs an api_base";
    EXPECT_STREQ(find_provider("ollama")->bare_origin_path, "/v1");
    const auto& groq = find_provider("groq")->rejected_params;
    EXPECT_NE(std::find(groq.begin(), groq.end(), "logprobs"), groq.end());
    EXPECT_TRUE(find_provider("openai")->rejected_params.empty());
}
