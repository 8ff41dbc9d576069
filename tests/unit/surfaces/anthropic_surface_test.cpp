// The Messages surface: parsing, errors in Anthropic's shape, the Messages ->
// chat translation table, the renderer, and round trips through both codecs:
// a Messages request through chat and back, and a Messages stream through the
// normalized events and the Messages renderer.
#include "providers/anthropic/codec.hpp"
#include "providers/openai/codec.hpp"
#include "surfaces/anthropic/messages.hpp"
#include "surfaces/surface.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

using namespace tailgate;
using namespace tailgate::providers;
using tailgate::surfaces::surface_for;

namespace {

const surfaces::Surface& messages() { return surface_for(Endpoint::Messages); }

ParsedBody parse_ok(std::string_view body) {
    auto r = messages().parse(body);
    if (auto* e = std::get_if<ApiError>(&r)) ADD_FAILURE() << e->message;
    return std::get<ParsedBody>(std::move(r));
}

ApiError parse_err(std::string_view body) {
    auto r = messages().parse(body);
    EXPECT_TRUE(std::holds_alternative<ApiError>(r)) << body;
    return std::holds_alternative<ApiError>(r) ? std::get<ApiError>(r) : ApiError{};
}

std::string canonical(const rapidjson::Value& v) {
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    v.Accept(w);
    return sb.GetString();
}

::testing::AssertionResult same_json(std::string_view got, std::string_view want) {
    rapidjson::Document a, b;
    a.Parse(got.data(), got.size());
    b.Parse(want.data(), want.size());
    if (a.HasParseError()) return ::testing::AssertionFailure() << "not JSON: " << got;
    if (b.HasParseError()) return ::testing::AssertionFailure() << "bad expectation: " << want;
    if (a == b) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "\n got: " << canonical(a) << "\nwant: " << canonical(b);
}

// `{members}` of a parsed body: the upstream body without its model.
std::string object_of(const ParsedBody& b) { return "{" + b.members + "}"; }

// An Anthropic event stream as (event name, data JSON) pairs; pings dropped.
struct SseEvent {
    std::string name;
    rapidjson::Document data;
};
std::vector<SseEvent> events_of(const std::string& sse) {
    std::vector<SseEvent> out;
    size_t pos = 0;
    while (pos < sse.size()) {
        size_t end = sse.find("\n\n", pos);
        size_t crlf = sse.find("\r\n\r\n", pos);
        size_t skip = 2;
        if (crlf != std::string::npos && crlf < end) end = crlf, skip = 4;
        if (end == std::string::npos) break;
        const std::string ev = sse.substr(pos, end - pos);
        pos = end + skip;
        SseEvent e;
        const size_t name = ev.find("event: "), data = ev.find("data: ");
        if (name != std::string::npos) e.name = ev.substr(name + 7, ev.find_first_of("\r\n", name) - name - 7);
        if (data == std::string::npos) continue;
        e.data.Parse(ev.substr(data + 6).c_str());
        EXPECT_FALSE(e.data.HasParseError()) << ev;
        if (e.name == "ping") continue;
        EXPECT_EQ(e.name, e.data["type"].GetString()) << "event name and data type agree";
        out.push_back(std::move(e));
    }
    return out;
}

const std::string kAnthropicStream =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
    "\"model\":\"claude-x\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,"
    "\"usage\":{\"input_tokens\":0,\"output_tokens\":0}}}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
    "event: ping\ndata: {\"type\":\"ping\"}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi \\\"you\\\"\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\","
    "\"name\":\"get\",\"input\":{}}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"{\\\"q\\\":1}\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},"
    "\"usage\":{\"input_tokens\":5,\"cache_read_input_tokens\":3,\"output_tokens\":7}}\n\n"
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

}  // namespace

TEST(MessagesSurface, ParsesLikeChatButKeepsItsWireAndMetadata) {
    EXPECT_EQ(messages().operation(), Endpoint::Messages);
    EXPECT_EQ(messages().wire(), Wire::Anthropic);
    const ParsedBody b = parse_ok(R"({"model":"g","max_tokens":10,"stream":true,"messages":[],)"
                                  R"("metadata":{"user_id":"u"},"fastest_response":true,"num_retries":2})");
    EXPECT_EQ(b.model, "g");
    EXPECT_TRUE(b.stream);
    EXPECT_TRUE(b.fastest_response);
    EXPECT_EQ(b.num_retries, 2);
    EXPECT_EQ(b.metadata_json, R"({"user_id":"u"})");
    EXPECT_EQ(b.members, R"("max_tokens":10,"stream":true,"messages":[],"metadata":{"user_id":"u"})")
        << "metadata is Messages' own: forwarded; the gateway's fields are not";
}

TEST(MessagesSurface, RefusesWhatMessagesRefuses) {
    EXPECT_EQ(parse_err(R"({"model":"g","messages":[]})").message, "max_tokens: Field required");
    EXPECT_EQ(parse_err(R"({"model":"g","max_tokens":0,"messages":[]})").param, "max_tokens");
    EXPECT_EQ(parse_err(R"({"model":"g","max_tokens":1.5,"messages":[]})").param, "max_tokens");
    EXPECT_EQ(parse_err(R"({"model":"g","max_tokens":5})").param, "messages");
    EXPECT_EQ(parse_err(R"({"model":"g","max_tokens":5,"messages":{}})").param, "messages");
    EXPECT_EQ(parse_err(R"({"max_tokens":5,"messages":[]})").param, "model");
    EXPECT_EQ(parse_err(R"({"model":"g","max_tokens":5,"messages":[],"metadata":7})").param, "metadata");
    EXPECT_EQ(parse_err("[1]").status, 400);
}

TEST(MessagesSurface, ErrorsHaveAnthropicsShapeAndTypes) {
    EXPECT_TRUE(same_json(messages().error_body(ApiError::bad_request("max_tokens: Field required", "max_tokens")),
                          R"({"type":"error","error":{"type":"invalid_request_error",)"
                          R"("message":"max_tokens: Field required"}})"));
    auto type_of = [](const ApiError& e) {
        rapidjson::Document d;
        d.Parse(messages().error_body(e).c_str());
        return std::string(d["error"]["type"].GetString());
    };
    EXPECT_EQ(type_of(ApiError::unauthorized("no")), "authentication_error");
    EXPECT_EQ(type_of(ApiError::not_found("no")), "not_found_error");
    EXPECT_EQ(type_of(ApiError::too_large("no")), "request_too_large");
    EXPECT_EQ(type_of(ApiError::unavailable("no")), "overloaded_error");
    EXPECT_EQ(type_of(ApiError::gateway_timeout("no")), "timeout_error");
    EXPECT_EQ(type_of(ApiError::bad_gateway("no")), "api_error");
    ApiError overloaded = ApiError::internal("Overloaded");
    overloaded.status = 529;
    EXPECT_EQ(type_of(overloaded), "overloaded_error");
    EXPECT_EQ(messages().error_status(overloaded), 529);
    EXPECT_EQ(surface_for(Endpoint::Chat).error_status(overloaded), 503) << "OpenAI's clients know no 529";

    std::string ev;
    messages().stream_error(ApiError::bad_gateway("upstream connection lost"), ev);
    const auto parsed = events_of(ev);
    ASSERT_EQ(parsed.size(), 1u);
    EXPECT_EQ(parsed[0].name, "error");
    EXPECT_STREQ(parsed[0].data["error"]["message"].GetString(), "upstream connection lost");
}

// The Messages -> chat translation table.
struct MessagesCase {
    const char* name;
    const char* messages;
    const char* chat;  // the chat members, as one object (model excluded)
};

class MessagesToChat : public ::testing::TestWithParam<MessagesCase> {};

TEST_P(MessagesToChat, Translates) {
    const MessagesCase& c = GetParam();
    auto chat = messages().to_chat(parse_ok(c.messages));
    ASSERT_NE(chat, nullptr);
    EXPECT_TRUE(same_json(object_of(*chat), c.chat)) << c.name;
    for (const auto& sp : chat->spans) EXPECT_EQ(chat->members[sp.begin], '"') << "spans start at their key";
}

INSTANTIATE_TEST_SUITE_P(
    Table, MessagesToChat,
    ::testing::Values(
        MessagesCase{"system_and_params",
                     R"({"model":"g","max_tokens":64,"system":"Be brief.","temperature":0.1,"top_p":0.5,"top_k":5,
                        "stop_sequences":["END"],"metadata":{"user_id":"u-1"},"stream":true,
                        "thinking":{"type":"enabled","budget_tokens":1024},
                        "messages":[{"role":"user","content":"hi"}]})",
                     R"({"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"}],
                        "max_tokens":64,"temperature":0.1,"top_p":0.5,"stop":["END"],"user":"u-1","stream":true,
                        "stream_options":{"include_usage":true}})"},
        MessagesCase{"system_blocks_and_images",
                     R"({"model":"g","max_tokens":8,"system":[{"type":"text","text":"A"},
                        {"type":"text","text":"B","cache_control":{"type":"ephemeral"}}],
                        "messages":[{"role":"user","content":[{"type":"text","text":"see"},
                        {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBO"}},
                        {"type":"image","source":{"type":"url","url":"https://x/cat.png"}},
                        {"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBE"}}]}]})",
                     R"({"messages":[{"role":"system","content":"A\n\nB"},{"role":"user","content":[
                        {"type":"text","text":"see"},
                        {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBO"}},
                        {"type":"image_url","image_url":{"url":"https://x/cat.png"}},
                        {"type":"file","file":{"file_data":"data:application/pdf;base64,JVBE"}}]}],
                        "max_tokens":8})"},
        MessagesCase{"tool_round_trip",
                     R"({"model":"g","max_tokens":8,
                        "tools":[{"name":"get","description":"Get","input_schema":{"type":"object"}},
                          {"type":"web_search_20250305","name":"web_search"}],
                        "tool_choice":{"type":"tool","name":"get","disable_parallel_tool_use":true},
                        "messages":[{"role":"user","content":"q"},
                        {"role":"assistant","content":[{"type":"thinking","thinking":"hm","signature":"s"},
                          {"type":"text","text":"Looking."},
                          {"type":"tool_use","id":"toolu_1","name":"get","input":{"k":[1]}}]},
                        {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1",
                          "content":[{"type":"text","text":"r1"},{"type":"text","text":"r2"}]},
                          {"type":"text","text":"and?"}]}]})",
                     R"({"messages":[{"role":"user","content":"q"},
                        {"role":"assistant","content":"Looking.","tool_calls":[{"id":"toolu_1","type":"function",
                          "function":{"name":"get","arguments":"{\"k\":[1]}"}}]},
                        {"role":"tool","tool_call_id":"toolu_1","content":"r1\nr2"},
                        {"role":"user","content":[{"type":"text","text":"and?"}]}],
                        "max_tokens":8,
                        "tools":[{"type":"function","function":{"name":"get","description":"Get",
                          "parameters":{"type":"object"}}}],
                        "tool_choice":{"type":"function","function":{"name":"get"}},"parallel_tool_calls":false})"},
        MessagesCase{"output_config",
                     R"({"model":"g","max_tokens":8,"messages":[{"role":"user","content":"x"}],
                        "output_config":{"effort":"max","format":{"type":"json_schema","schema":{"type":"object"}}}})",
                     R"({"messages":[{"role":"user","content":"x"}],"max_tokens":8,"reasoning_effort":"high",
                        "response_format":{"type":"json_schema","json_schema":{"name":"output",
                          "schema":{"type":"object"}}}})"},
        MessagesCase{"tool_choice_any_and_only_results",
                     R"({"model":"g","max_tokens":8,"tools":[{"name":"f","input_schema":{"type":"object"}}],
                        "tool_choice":{"type":"any"},
                        "messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]},
                        {"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"ok"}]}]})",
                     R"({"messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"t","type":"function",
                          "function":{"name":"f","arguments":"{}"}}]},
                        {"role":"tool","tool_call_id":"t","content":"ok"}],
                        "max_tokens":8,"tools":[{"type":"function","function":{"name":"f",
                          "parameters":{"type":"object"}}}],"tool_choice":"required"})"}),
    [](const ::testing::TestParamInfo<MessagesCase>& i) { return std::string(i.param.name); });

// Round trip: a Messages request through chat and back is the request again,
// but for what chat cannot carry (thinking, top_k, server tools).
TEST(MessagesRoundTrip, RequestsComeBackThroughChat) {
    const char* kRequests[] = {
        R"({"model":"g","max_tokens":64,"system":"S","temperature":0.5,"stop_sequences":["x"],
            "metadata":{"user_id":"u"},"messages":[{"role":"user","content":"hi"}]})",
        R"({"model":"g","max_tokens":8,"tools":[{"name":"f","description":"d","input_schema":{"type":"object"}}],
            "tool_choice":{"type":"any"},"messages":[{"role":"user","content":"q"},
            {"role":"assistant","content":[{"type":"text","text":"ok"},{"type":"tool_use","id":"t1","name":"f",
              "input":{"a":1}}]},
            {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"res"}]}]})",
        R"({"model":"g","max_tokens":8,"messages":[{"role":"user","content":[{"type":"text","text":"look"},
            {"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"/9j/"}}]}]})",
    };
    for (const char* request : kRequests) {
        const ParsedBody original = parse_ok(request);
        const auto chat = messages().to_chat(original);
        upstream::Request back;
        Target t{true, "h", "443", "/v1", "", "", true};
        anthropic::codec().build(CallSpec{t, Endpoint::Chat, false, "g", *chat, {}}, back);  // as sent() gives it
        EXPECT_TRUE(same_json(back.body, request)) << request;
    }
}

// Round trip: an Anthropic stream decoded to events and rendered as Messages again.
TEST(MessagesRoundTrip, AStreamComesBackThroughTheEvents) {
    auto dec = anthropic::codec().decoder(messages().renderer(true));
    std::string rendered;
    for (size_t i = 0; i < kAnthropicStream.size(); i += 37) {
        rendered += std::string(dec->feed(std::string_view(kAnthropicStream).substr(i, 37)).client);
    }
    const auto got = events_of(rendered), want = events_of(kAnthropicStream);
    ASSERT_EQ(got.size(), want.size()) << rendered;
    for (size_t i = 0; i < got.size(); ++i) {
        rapidjson::Document g, w;
        g.CopyFrom(got[i].data, g.GetAllocator());
        w.CopyFrom(want[i].data, w.GetAllocator());
        if (got[i].name == "message_start") {  // usage comes at the end in a translated stream
            g["message"].RemoveMember("usage");
            w["message"].RemoveMember("usage");
        }
        EXPECT_TRUE(same_json(canonical(g), canonical(w))) << i << " " << got[i].name;
    }
}

TEST(MessagesRenderer, AnOpenAIStreamBecomesAnthropicEvents) {
    const std::string chunks =
        "data: {\"id\":\"chatcmpl-1\",\"model\":\"gpt-x\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
        "\"content\":\"\"}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"type\":\"function\","
        "\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
        "\"{\\\"a\\\":1}\"}}]}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"c2\",\"type\":\"function\","
        "\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":4,"
        "\"prompt_tokens_details\":{\"cached_tokens\":2}}}\n\n"
        "data: [DONE]\n\n";
    auto dec = openai::codec().decoder(messages().renderer(true));
    const Decoded r = dec->feed(chunks);
    EXPECT_TRUE(r.content);
    EXPECT_TRUE(r.done);
    const auto ev = events_of(std::string(r.client));
    std::vector<std::string> names;
    for (const auto& e : ev) names.push_back(e.name);
    EXPECT_EQ(names, (std::vector<std::string>{"message_start", "content_block_start", "content_block_delta",
                                               "content_block_delta", "content_block_stop", "content_block_start",
                                               "content_block_delta", "content_block_stop", "content_block_start",
                                               "content_block_delta", "content_block_stop", "message_delta",
                                               "message_stop"}));
    EXPECT_STREQ(ev[0].data["message"]["id"].GetString(), "chatcmpl-1");
    EXPECT_STREQ(ev[0].data["message"]["model"].GetString(), "gpt-x");
    EXPECT_STREQ(ev[2].data["delta"]["text"].GetString(), "Hel");
    EXPECT_EQ(ev[5].data["index"].GetInt(), 1);
    EXPECT_STREQ(ev[5].data["content_block"]["type"].GetString(), "tool_use");
    EXPECT_STREQ(ev[5].data["content_block"]["id"].GetString(), "c1");
    EXPECT_STREQ(ev[6].data["delta"]["partial_json"].GetString(), "{\"a\":1}");
    EXPECT_EQ(ev[8].data["index"].GetInt(), 2);
    EXPECT_STREQ(ev[8].data["content_block"]["name"].GetString(), "g");
    EXPECT_STREQ(ev[11].data["delta"]["stop_reason"].GetString(), "tool_use");
    EXPECT_TRUE(same_json(canonical(ev[11].data["usage"]),
                          R"({"input_tokens":7,"cache_read_input_tokens":2,"output_tokens":4})"));
}

TEST(MessagesRenderer, AWholeChatCompletionBecomesAMessage) {
    std::string body =
        R"({"id":"chatcmpl-2","object":"chat.completion","model":"gpt-x","choices":[{"index":0,"message":)"
        R"({"role":"assistant","content":"Hi","tool_calls":[{"id":"c1","type":"function","function":{"name":"f",)"
        R"("arguments":"{\"x\":true}"}}]},"finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":5}})";
    auto dec = openai::codec().decoder(messages().renderer(false));
    ASSERT_TRUE(dec->decode_body(body).ok);
    EXPECT_TRUE(same_json(body, R"({"id":"chatcmpl-2","type":"message","role":"assistant","model":"gpt-x",
        "content":[{"type":"text","text":"Hi"},{"type":"tool_use","id":"c1","name":"f","input":{"x":true}}],
        "stop_reason":"max_tokens","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":5}})"));
}

TEST(MessagesRenderer, ReasoningBecomesAThinkingBlock) {
    const std::string chunks =
        "data: {\"id\":\"c\",\"model\":\"deepseek-r\",\"choices\":[{\"index\":0,\"delta\":"
        "{\"reasoning_content\":\"Hm, \"}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"yes.\"}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Yes\"},\"finish_reason\":\"stop\"}]}\n\n"
        "data: [DONE]\n\n";
    auto dec = openai::codec().decoder(messages().renderer(true));
    const auto ev = events_of(std::string(dec->feed(chunks).client));
    std::vector<std::string> names;
    for (const auto& e : ev) names.push_back(e.name);
    EXPECT_EQ(names, (std::vector<std::string>{"message_start", "content_block_start", "content_block_delta",
                                               "content_block_delta", "content_block_stop", "content_block_start",
                                               "content_block_delta", "content_block_stop", "message_delta",
                                               "message_stop"}));
    EXPECT_STREQ(ev[1].data["content_block"]["type"].GetString(), "thinking");
    EXPECT_STREQ(ev[2].data["delta"]["type"].GetString(), "thinking_delta");
    EXPECT_STREQ(ev[3].data["delta"]["thinking"].GetString(), "yes.");
    EXPECT_EQ(ev[5].data["index"].GetInt(), 1);
    EXPECT_STREQ(ev[6].data["delta"]["text"].GetString(), "Yes");

    std::string body =
        R"({"id":"c","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Yes",)"
        R"("reasoning_content":"Hm."},"finish_reason":"stop"}]})";
    auto whole = openai::codec().decoder(messages().renderer(false));
    ASSERT_TRUE(whole->decode_body(body).ok);
    rapidjson::Document d;
    d.Parse(body.c_str());
    EXPECT_TRUE(same_json(canonical(d["content"]), R"([{"type":"thinking","thinking":"Hm.","signature":""},
        {"type":"text","text":"Yes"}])"));
}
