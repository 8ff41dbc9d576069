// The Anthropic codec: the upstream request it builds (URL, headers, the chat ->
// Messages translation table), how it classifies error statuses, and how it
// reads the Messages event stream (split at every byte boundary) and bodies.
#include "providers/anthropic/codec.hpp"
#include "providers/registry.hpp"
#include "surfaces/surface.hpp"
#include "testing_support.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

using namespace tailgate;
using namespace tailgate::providers;
using tailgate::providers::testing::head;
using tailgate::providers::testing::RecordingSink;
using Seen = RecordingSink::Seen;

namespace {

const std::vector<std::string> kNone;

ParsedBody chat(std::string_view body, Endpoint op = Endpoint::Chat) {
    auto parsed = surfaces::surface_for(op).parse(body);
    EXPECT_TRUE(std::holds_alternative<ParsedBody>(parsed)) << body;
    return std::get<ParsedBody>(std::move(parsed));
}

std::string canonical(std::string_view json) {
    rapidjson::Document d;
    d.Parse(json.data(), json.size());
    EXPECT_FALSE(d.HasParseError()) << json;
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    d.Accept(w);
    return sb.GetString();
}

std::string canonical_of(const rapidjson::Value& v) {
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    v.Accept(w);
    return sb.GetString();
}

// Deep equality, member order ignored.
::testing::AssertionResult same_json(std::string_view got, std::string_view want) {
    rapidjson::Document a, b;
    a.Parse(got.data(), got.size());
    b.Parse(want.data(), want.size());
    if (a.HasParseError()) return ::testing::AssertionFailure() << "not JSON: " << got;
    if (a == b) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "\n got: " << canonical(got) << "\nwant: " << canonical(want);
}

upstream::Request build(const ParsedBody& body, bool stream, Endpoint op = Endpoint::Chat,
                        Target t = {true, "api.anthropic.com", "443", "/v1", "", "sk-ant-secret", true}) {
    upstream::Request req;
    anthropic::codec().build(CallSpec{t, op, stream, "claude-x", body, kNone}, req);
    return req;
}

std::string header(const upstream::Request& r, std::string_view name) {
    for (const auto& [k, v] : r.headers)
        if (k == name) return v;
    return "<absent>";
}

// A Messages stream with every event kind: text, a tool call in pieces, cache usage.
const std::string kStream =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
    "\"model\":\"claude-x\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":5,"
    "\"cache_creation_input_tokens\":2,\"cache_read_input_tokens\":3,\"output_tokens\":1}}}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
    "event: ping\ndata: {\"type\": \"ping\"}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\r\n\r\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\","
    "\"name\":\"get\",\"input\":{}}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"{\\\"q\\\":\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"1}\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},"
    "\"usage\":{\"output_tokens\":7}}\n\n"
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

}  // namespace

TEST(AnthropicCodec, IsRegisteredWithItsDefaultsAndKeyVariable) {
    const Provider* p = find_provider("anthropic");
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(&p->codec(), &anthropic::codec());
    EXPECT_STREQ(p->default_api_base, "https://api.anthropic.com");
    EXPECT_STREQ(p->key_env[0], "ANTHROPIC_API_KEY");
    EXPECT_EQ(anthropic::codec().wire(), Wire::Anthropic);
}

TEST(AnthropicCodec, ResolveAcceptsTheOriginV1OrTheFullPath) {
    for (const char* base : {"", "/v1", "/v1/messages"}) {
        std::string path = base, version;
        EXPECT_EQ(anthropic::codec().resolve(path, version, "claude-x"), "");
        EXPECT_EQ(path, "/v1") << base;
        EXPECT_EQ(version, anthropic::kDefaultVersion);
    }
    std::string path = "/proxy/anthropic", version = "2024-01-01";
    anthropic::codec().resolve(path, version, "claude-x");
    EXPECT_EQ(path, "/proxy/anthropic/v1");
    EXPECT_EQ(version, "2024-01-01") << "api_version is the anthropic-version header";
}

TEST(AnthropicCodec, BuildsMessagesRequestWithApiKeyAndVersionHeaders) {
    const auto req = build(chat(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})"), true, Endpoint::Chat,
                           {true, "api.anthropic.com", "443", "/v1", "2023-06-01", "sk-ant-secret", true});
    EXPECT_EQ(req.origin.host, "api.anthropic.com");
    EXPECT_EQ(req.target, "/v1/messages");
    EXPECT_EQ(header(req, "x-api-key"), "sk-ant-secret");
    EXPECT_EQ(header(req, "anthropic-version"), "2023-06-01");
    EXPECT_EQ(header(req, "Authorization"), "<absent>") << "the key goes in x-api-key only";
    EXPECT_EQ(header(req, "Accept"), "text/event-stream");
    EXPECT_TRUE(same_json(req.body, R"({"model":"claude-x","max_tokens":4096,"stream":true,
        "messages":[{"role":"user","content":"hi"}]})"));
}

TEST(AnthropicCodec, AMessagesRequestIsForwardedAsItCameWithTheModelRewritten) {
    auto parsed = surfaces::surface_for(Endpoint::Messages)
                      .parse(R"({"model":"group","max_tokens":9,"messages":[{"role":"user","content":"x"}],)"
                             R"("metadata":{"user_id":"u"},"fallbacks":["b"],"top_k":3})");
    ASSERT_TRUE(std::holds_alternative<ParsedBody>(parsed));
    const auto req = build(std::get<ParsedBody>(parsed), false, Endpoint::Messages);
    EXPECT_EQ(req.body, R"({"model":"claude-x","max_tokens":9,"messages":[{"role":"user","content":"x"}],)"
                        R"("metadata":{"user_id":"u"},"top_k":3})")
        << "byte for byte, the gateway's fields left out";
}

// The chat -> Messages translation table: each chat request and the Messages body it becomes.
struct ChatCase {
    const char* name;
    const char* chat;
    const char* messages;
    Endpoint op = Endpoint::Chat;
};

class ChatToMessages : public ::testing::TestWithParam<ChatCase> {};

TEST_P(ChatToMessages, Translates) {
    const ChatCase& c = GetParam();
    upstream::Request req;
    Target t{true, "h", "443", "/v1", "", "", true};
    anthropic::codec().build(CallSpec{t, c.op, false, "claude-x", chat(c.chat, c.op), kNone}, req);
    EXPECT_TRUE(same_json(req.body, c.messages)) << c.name;
}

INSTANTIATE_TEST_SUITE_P(
    Table, ChatToMessages,
    ::testing::Values(
        ChatCase{"system_and_params",
                 R"({"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"}],
                    "max_completion_tokens":50,"max_tokens":99,"temperature":0.2,"top_p":0.9,"stop":"END",
                    "user":"u-1","n":1,"presence_penalty":0.5,"logprobs":false,"metadata":{"tag":"x"}})",
                 R"({"model":"claude-x","max_tokens":50,"system":"Be brief.","messages":[{"role":"user","content":"hi"}],
                    "stop_sequences":["END"],"temperature":0.2,"top_p":0.9,"metadata":{"user_id":"u-1"}})"},
        ChatCase{"two_system_messages_become_blocks",
                 R"({"model":"m","messages":[{"role":"system","content":"A"},
                    {"role":"developer","content":[{"type":"text","text":"B","cache_control":{"type":"ephemeral"}}]},
                    {"role":"user","content":"q"}]})",
                 R"({"model":"claude-x","max_tokens":4096,"system":[{"type":"text","text":"A"},
                    {"type":"text","text":"B","cache_control":{"type":"ephemeral"}}],
                    "messages":[{"role":"user","content":"q"}]})"},
        ChatCase{"images_url_and_base64",
                 R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"what?"},
                    {"type":"image_url","image_url":{"url":"https://x/cat.png"}},
                    {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBO"}},
                    {"type":"input_audio","input_audio":{"data":"AAA","format":"wav"}}]}]})",
                 R"({"model":"claude-x","max_tokens":4096,"messages":[{"role":"user","content":[
                    {"type":"text","text":"what?"},
                    {"type":"image","source":{"type":"url","url":"https://x/cat.png"}},
                    {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBO"}}]}]})"},
        ChatCase{"tools_calls_and_results",
                 R"({"model":"m","messages":[{"role":"user","content":"weather?"},
                    {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",
                      "function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
                    {"role":"tool","tool_call_id":"call_1","content":"sunny"}],
                    "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather",
                      "parameters":{"type":"object","properties":{"city":{"type":"string"}}}}},
                      {"type":"function","function":{"name":"noargs"}}],
                    "tool_choice":"required","parallel_tool_calls":false})",
                 R"({"model":"claude-x","max_tokens":4096,"messages":[{"role":"user","content":"weather?"},
                    {"role":"assistant","content":[{"type":"tool_use","id":"call_1","name":"get_weather",
                      "input":{"city":"Paris"}}]},
                    {"role":"user","content":[{"type":"tool_result","tool_use_id":"call_1","content":"sunny"}]}],
                    "tools":[{"name":"get_weather","description":"Weather",
                      "input_schema":{"type":"object","properties":{"city":{"type":"string"}}}},
                      {"name":"noargs","input_schema":{"type":"object","properties":{}}}],
                    "tool_choice":{"type":"any","disable_parallel_tool_use":true}})"},
        ChatCase{"named_tool_choice_and_text_with_calls",
                 R"({"model":"m","messages":[{"role":"user","content":"x"},
                    {"role":"assistant","content":"Let me look.","tool_calls":[{"id":"c","type":"function",
                      "function":{"name":"f","arguments":"not json"}}]},
                    {"role":"tool","tool_call_id":"c","content":[{"type":"text","text":"r"}]}],
                    "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],
                    "tool_choice":{"type":"function","function":{"name":"f"}}})",
                 R"({"model":"claude-x","max_tokens":4096,"messages":[{"role":"user","content":"x"},
                    {"role":"assistant","content":[{"type":"text","text":"Let me look."},
                      {"type":"tool_use","id":"c","name":"f","input":{}}]},
                    {"role":"user","content":[{"type":"tool_result","tool_use_id":"c",
                      "content":[{"type":"text","text":"r"}]}]}],
                    "tools":[{"name":"f","input_schema":{"type":"object"}}],
                    "tool_choice":{"type":"tool","name":"f"}})"},
        ChatCase{"tool_choice_none_and_stop_list",
                 R"({"model":"m","messages":[{"role":"user","content":"x"}],"stop":["a","b"],
                    "tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"none"})",
                 R"({"model":"claude-x","max_tokens":4096,"messages":[{"role":"user","content":"x"}],
                    "stop_sequences":["a","b"],"tools":[{"name":"f","input_schema":{"type":"object","properties":{}}}],
                    "tool_choice":{"type":"none"}})"},
        ChatCase{"structured_output_and_effort",
                 R"({"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"minimal",
                    "response_format":{"type":"json_schema","json_schema":{"name":"a","strict":true,
                      "schema":{"type":"object","properties":{"n":{"type":"integer"}}}}},"seed":7})",
                 R"({"model":"claude-x","max_tokens":4096,"messages":[{"role":"user","content":"x"}],
                    "output_config":{"effort":"low","format":{"type":"json_schema",
                      "schema":{"type":"object","properties":{"n":{"type":"integer"}}}}}})"},
        ChatCase{"json_object_format",
                 R"({"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}})",
                 R"({"model":"claude-x","max_tokens":4096,"messages":[{"role":"user","content":"x"}],
                    "output_config":{"format":{"type":"json_schema","schema":{"type":"object"}}}})"},
        ChatCase{"legacy_completions_prompt",
                 R"({"model":"m","prompt":"Once upon","max_tokens":5,"echo":false})",
                 R"({"model":"claude-x","max_tokens":5,"messages":[{"role":"user","content":"Once upon"}]})",
                 Endpoint::Completions}),
    [](const ::testing::TestParamInfo<ChatCase>& i) { return std::string(i.param.name); });

TEST(AnthropicCodec, ErrorStatusesAndTypesMapToTheGatewayClasses) {
    const auto& c = anthropic::codec();
    auto err = [&](int status, std::string body, upstream::Headers h = {}) {
        return c.decode_error(head(status, std::move(h)), body);
    };
    const auto overloaded =
        err(529, R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})", {{"retry-after", "3"}});
    EXPECT_EQ(overloaded.error_class, ErrorClass::Server);
    EXPECT_EQ(overloaded.http_status, 529);
    EXPECT_EQ(overloaded.message, "Overloaded");
    EXPECT_EQ(overloaded.retry_after_ms, 3000);
    EXPECT_EQ(err(429, R"({"type":"error","error":{"type":"rate_limit_error","message":"slow down"}})").error_class,
              ErrorClass::RateLimit);
    EXPECT_EQ(err(401, R"({"type":"error","error":{"type":"authentication_error","message":"bad key"}})").error_class,
              ErrorClass::Auth);
    EXPECT_EQ(err(400, R"({"type":"error","error":{"type":"invalid_request_error",)"
                       R"("message":"prompt is too long: 210000 tokens > 200000 maximum"}})")
                  .error_class,
              ErrorClass::ContextWindow);
    EXPECT_EQ(err(400, R"({"type":"error","error":{"type":"invalid_request_error","message":"bad"}})").error_class,
              ErrorClass::BadRequest);
    EXPECT_EQ(err(404, R"({"type":"error","error":{"type":"not_found_error","message":"model: x"}})").error_class,
              ErrorClass::NotFound);
    EXPECT_EQ(err(502, "<html>bad gateway</html>").error_class, ErrorClass::Server) << "no type: by status";
}

TEST(AnthropicCodec, StreamIsReadTheSameWhereverItIsSplit) {
    for (size_t cut = 0; cut <= kStream.size(); ++cut) {
        std::vector<Seen> seen;
        auto dec = anthropic::codec().decoder(std::make_unique<RecordingSink>(seen));
        const Decoded a = dec->feed(std::string_view(kStream).substr(0, cut));
        const bool content_in_a = a.content;
        const Decoded b = dec->feed(std::string_view(kStream).substr(cut));
        ASSERT_TRUE(content_in_a || b.content) << cut;
        EXPECT_TRUE(a.done || b.done) << cut;
        EXPECT_FALSE(a.malformed || b.malformed) << cut;
        EXPECT_EQ(dec->pending(), 0u);
        EXPECT_TRUE(dec->saw_done());
        ASSERT_EQ(seen.size(), 8u) << cut;
        EXPECT_EQ(seen[0].kind, Event::Kind::Start);
        EXPECT_EQ(seen[0].text, "msg_1");
        EXPECT_EQ(seen[1].text, "Hi");
        EXPECT_EQ(seen[2].kind, Event::Kind::ToolCall);
        EXPECT_EQ(seen[2].tool_id, "toolu_1");
        EXPECT_EQ(seen[2].tool_name, "get");
        EXPECT_EQ(seen[2].tool_index, 0u) << "the first tool call, though the second block";
        EXPECT_EQ(seen[3].tool_args + seen[4].tool_args, "{\"q\":1}");
        EXPECT_EQ(seen[5].kind, Event::Kind::Usage);
        EXPECT_EQ(seen[6].kind, Event::Kind::Finish);
        EXPECT_EQ(seen[6].text, "tool_calls");
        EXPECT_EQ(seen[7].kind, Event::Kind::Done);
        const Usage u = dec->usage();
        EXPECT_EQ(u.prompt_tokens, 10) << "input + cache writes + cache reads";
        EXPECT_EQ(u.cached_tokens, 3);
        EXPECT_EQ(u.cache_creation_tokens, 2);
        EXPECT_EQ(u.completion_tokens, 7);
    }
}

TEST(AnthropicCodec, CommitsAtTheFirstContentDeltaNeverAtMessageStart) {
    auto dec = anthropic::codec().decoder(nullptr);
    const size_t first_delta = kStream.find("event: content_block_delta");
    const Decoded head_part = dec->feed(std::string_view(kStream).substr(0, first_delta));
    EXPECT_FALSE(head_part.content) << "message_start, content_block_start and ping are no content";
    EXPECT_EQ(head_part.client, std::string_view(kStream).substr(0, first_delta)) << "pass-through: bytes as they came";
    const Decoded rest = dec->feed(std::string_view(kStream).substr(first_delta));
    EXPECT_TRUE(rest.content);
    EXPECT_TRUE(rest.done);
}

TEST(AnthropicCodec, ErrorEventsAndMalformedEvents) {
    std::vector<Seen> seen;
    auto dec = anthropic::codec().decoder(std::make_unique<RecordingSink>(seen));
    const Decoded r = dec->feed(
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n");
    ASSERT_NE(r.error, nullptr);
    EXPECT_EQ(r.error->error_class, ErrorClass::Server);
    EXPECT_EQ(r.error->message, "Overloaded");
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].kind, Event::Kind::Error);

    auto bad = anthropic::codec().decoder(nullptr);
    EXPECT_TRUE(bad->feed("data: {\"type\":\"message_start\"\n\n").malformed);
    EXPECT_TRUE(anthropic::codec().decoder(nullptr)->feed("data: {\"no_type\":1}\n\n").malformed);
    EXPECT_FALSE(anthropic::codec().decoder(nullptr)->feed("data: {\"type\":\"brand_new_event\"}\n\n").malformed)
        << "unknown event types are passed over";
}

TEST(AnthropicCodec, WholeBodyRenderedForAChatClientAndUntouchedForAMessagesOne) {
    const std::string body =
        R"({"id":"msg_2","type":"message","role":"assistant","model":"claude-x","content":[)"
        R"({"type":"text","text":"Hello"},{"type":"tool_use","id":"toolu_9","name":"f","input":{"a":[1,2]}}],)"
        R"("stop_reason":"max_tokens","usage":{"input_tokens":4,"cache_read_input_tokens":6,"output_tokens":2}})";
    std::string pass = body;
    const BodyDecoded untouched = anthropic::codec().decoder(nullptr)->decode_body(pass);
    EXPECT_TRUE(untouched.ok);
    EXPECT_EQ(pass, body);
    EXPECT_EQ(untouched.usage.prompt_tokens, 10);

    std::string rendered = body;
    auto dec = anthropic::codec().decoder(surfaces::surface_for(Endpoint::Chat).renderer(false));
    ASSERT_TRUE(dec->decode_body(rendered).ok);
    rapidjson::Document d;
    d.Parse(rendered.c_str());
    ASSERT_FALSE(d.HasParseError()) << rendered;
    d.RemoveMember("created");  // the gateway's clock
    EXPECT_TRUE(same_json(canonical_of(d), R"({"id":"msg_2","object":"chat.completion","model":"claude-x","choices":[
        {"index":0,"message":{"role":"assistant","content":"Hello","tool_calls":[{"id":"toolu_9","type":"function",
        "function":{"name":"f","arguments":"{\"a\":[1,2]}"}}]},"finish_reason":"length"}],
        "usage":{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12,"prompt_tokens_details":{"cached_tokens":6},
        "cache_read_input_tokens":6}})"));

    std::string not_messages = R"({"choices":[]})";
    EXPECT_FALSE(anthropic::codec().decoder(nullptr)->decode_body(not_messages).ok);
}

TEST(AnthropicCodec, StopReasonsBothWays) {
    EXPECT_EQ(anthropic::finish_reason("end_turn"), "stop");
    EXPECT_EQ(anthropic::finish_reason("stop_sequence"), "stop");
    EXPECT_EQ(anthropic::finish_reason("max_tokens"), "length");
    EXPECT_EQ(anthropic::finish_reason("tool_use"), "tool_calls");
    EXPECT_EQ(anthropic::finish_reason("refusal"), "content_filter");
    EXPECT_EQ(anthropic::stop_reason("stop"), "end_turn");
    EXPECT_EQ(anthropic::stop_reason("length"), "max_tokens");
    EXPECT_EQ(anthropic::stop_reason("tool_calls"), "tool_use");
    EXPECT_EQ(anthropic::stop_reason("function_call"), "tool_use");
    EXPECT_EQ(anthropic::stop_reason("content_filter"), "refusal");
}

TEST(AnthropicCodec, ThinkingIsReasoningForAChatClient) {
    const std::string stream =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\"}}\n\n"
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
        "\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Let me see.\"}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"signature_delta\",\"signature\":\"EqQ\"}}\n\n";
    std::vector<Seen> seen;
    auto dec = anthropic::codec().decoder(std::make_unique<RecordingSink>(seen));
    const Decoded r = dec->feed(stream);
    EXPECT_TRUE(r.content) << "thinking is the model's first output: the commit point";
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_EQ(seen[1].kind, Event::Kind::Reasoning);
    EXPECT_EQ(seen[1].text, "Let me see.");

    auto chat = anthropic::codec().decoder(surfaces::surface_for(Endpoint::Chat).renderer(true));
    const std::string out(chat->feed(stream).client);
    EXPECT_NE(out.find(R"("delta":{"reasoning_content":"Let me see."})"), std::string::npos) << out;
    EXPECT_EQ(out.find("EqQ"), std::string::npos) << "signatures are Anthropic's alone";
}

TEST(AnthropicCodec, OnlyEmbeddingsAreBeyondIt) {
    EXPECT_TRUE(anthropic::codec().serves(Endpoint::Chat));
    EXPECT_TRUE(anthropic::codec().serves(Endpoint::Completions));
    EXPECT_TRUE(anthropic::codec().serves(Endpoint::Messages));
    EXPECT_TRUE(anthropic::codec().serves(Endpoint::Responses));
    EXPECT_FALSE(anthropic::codec().serves(Endpoint::Embeddings));
}
