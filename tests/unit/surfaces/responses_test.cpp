// The Responses API surface, both directions of the translation for
// deployments that only speak chat completions:
//   requests: Responses body -> chat completions body (a table);
//   answers: chat completions chunks / bodies -> Responses events and objects,
//            read through the OpenAI codec's decoder with the surface's renderer.
// And which codecs pass Responses through natively.
#include "providers/azure/codec.hpp"
#include "providers/openai/codec.hpp"
#include "surfaces/responses/request.hpp"
#include "surfaces/responses/surface.hpp"
#include "surfaces/surface.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

using namespace tailgate;
using namespace tailgate::providers;
namespace responses = tailgate::surfaces::responses;

namespace {

std::string canonical(const rapidjson::Value& v) {
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    v.Accept(w);
    return sb.GetString();
}

std::string canonical(const std::string& json) {
    rapidjson::Document d;
    d.Parse(json.c_str());
    EXPECT_FALSE(d.HasParseError()) << json;
    return canonical(d);
}

ParsedBody parsed(const std::string& body, std::span<const responses::Turn> history = {}) {
    auto r = responses::parse_request(body, history);
    if (auto* e = std::get_if<ApiError>(&r)) ADD_FAILURE() << e->message;
    return std::get<ParsedBody>(std::move(r));
}

// ---- requests ------------------------------------------------------------

struct RequestRow {
    const char* name;
    const char* request;  // the client's body
    const char* chat;     // the chat body sent upstream (model "up")
};

const RequestRow kRequests[] = {
    {"string_input", R"({"model":"g","input":"hi"})",
     R"({"model":"up","messages":[{"role":"user","content":"hi"}]})"},
    {"instructions_and_developer", R"({"model":"g","instructions":"sys","input":[{"role":"developer","content":"dev"},{"type":"message","role":"user","content":"u"}]})",
     R"({"model":"up","messages":[{"role":"system","content":"sys"},{"role":"system","content":"dev"},{"role":"user","content":"u"}]})"},
    {"parts_and_image", R"({"model":"g","input":[{"role":"user","content":[{"type":"input_text","text":"see"},{"type":"input_image","image_url":"data:image/png;base64,AA","detail":"high"}]}]})",
     R"({"model":"up","messages":[{"role":"user","content":[{"type":"text","text":"see"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AA","detail":"high"}}]}]})"},
    {"assistant_output_text", R"({"model":"g","input":[{"role":"assistant","content":[{"type":"output_text","text":"a"},{"type":"output_text","text":"b"}]}]})",
     R"({"model":"up","messages":[{"role":"assistant","content":"ab"}]})"},
    {"tools_and_results", R"({"model":"g","tools":[{"type":"function","name":"f","description":"d","parameters":{"type":"object"},"strict":true}],"tool_choice":{"type":"function","name":"f"},"parallel_tool_calls":false,"input":[{"role":"user","content":"q"},{"type":"function_call","call_id":"c1","name":"f","arguments":"{\"a\":1}"},{"type":"function_call","call_id":"c2","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c1","output":"r1"},{"type":"function_call_output","call_id":"c2","output":[{"type":"input_text","text":"r2"}]}]})",
     R"({"model":"up","messages":[{"role":"user","content":"q"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}},{"id":"c2","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","content":"r1","tool_call_id":"c1"},{"role":"tool","content":"r2","tool_call_id":"c2"}],"tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object"},"strict":true}}],"tool_choice":{"type":"function","function":{"name":"f"}},"parallel_tool_calls":false})"},
    {"structured_output", R"({"model":"g","input":"x","text":{"format":{"type":"json_schema","name":"A","schema":{"type":"object"},"strict":true},"verbosity":"low"}})",
     R"({"model":"up","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"A","schema":{"type":"object"},"strict":true}},"verbosity":"low"})"},
    {"json_object", R"({"model":"g","input":"x","text":{"format":{"type":"json_object"}}})",
     R"({"model":"up","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}})"},
    {"options", R"({"model":"g","input":"x","max_output_tokens":9,"temperature":0.5,"top_p":0.9,"user":"u1","reasoning":{"effort":"high","summary":"auto"},"store":false,"metadata":{"k":"v"}})",
     R"({"model":"up","messages":[{"role":"user","content":"x"}],"temperature":0.5,"top_p":0.9,"user":"u1","max_tokens":9,"reasoning_effort":"high"})"},
    {"stream", R"({"model":"g","input":"x","stream":true})",
     R"({"model":"up","messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_usage":true}})"},
    {"reasoning_item_dropped", R"({"model":"g","input":[{"type":"reasoning","id":"rs","summary":[]},{"role":"user","content":"x"}]})",
     R"({"model":"up","messages":[{"role":"user","content":"x"}]})"},
};

class RequestTranslation : public ::testing::TestWithParam<RequestRow> {};

TEST_P(RequestTranslation, ChatBody) {
    const RequestRow& row = GetParam();
    const ParsedBody p = parsed(row.request);
    ASSERT_TRUE(p.as_chat) << p.as_chat_error;
    EXPECT_EQ(canonical(p.as_chat->body_for("up")), canonical(row.chat));
    EXPECT_EQ(p.as_chat->stream, p.stream);
}

INSTANTIATE_TEST_SUITE_P(Table, RequestTranslation, ::testing::ValuesIn(kRequests),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ResponsesRequest, UntranslatableRequestsSayWhy) {
    for (const char* body : {R"({"model":"g","input":"x","tools":[{"type":"web_search"}]})",
                             R"({"model":"g","input":[{"type":"item_reference","id":"msg_1"}]})",
                             R"({"model":"g","input":[{"role":"user","content":[{"type":"input_image","file_id":"f"}]}]})",
                             R"({"model":"g","input":[{"role":"tool","content":"x"}]})"}) {
        const ParsedBody p = parsed(body);
        EXPECT_FALSE(p.as_chat) << body;
        EXPECT_FALSE(p.as_chat_error.empty()) << body;
    }
}

TEST(ResponsesRequest, Refusals) {
    for (const auto& [body, param] : std::vector<std::pair<const char*, const char*>>{
             {R"({"model":"g"})", "input"},
             {R"({"model":"g","input":{}})", "input"},
             {R"({"model":"g","input":"x","background":true})", "background"},
             {R"({"model":"g","input":"x","conversation":"conv_1"})", "conversation"},
             {R"({"model":"g","input":"x","store":"yes"})", "store"},
             {R"({"model":"g","input":"x","previous_response_id":""})", "previous_response_id"},
             {R"({"input":"x"})", "model"}}) {
        auto r = responses::parse_request(body);
        ASSERT_TRUE(std::holds_alternative<ApiError>(r)) << body;
        EXPECT_EQ(std::get<ApiError>(r).status, 400);
        EXPECT_EQ(std::get<ApiError>(r).param, param) << body;
    }
}

TEST(ResponsesRequest, PreviousTurnsArePrependedForEveryDeployment) {
    const responses::Turn turn{R"([{"type":"message","role":"user","content":"first"}])",
                               R"([{"type":"reasoning","id":"rs_1","summary":[]},
                                   {"type":"message","id":"msg_1","status":"completed","role":"assistant",
                                    "content":[{"type":"output_text","text":"answer","annotations":[]}]}])"};
    const ParsedBody p = parsed(R"({"model":"g","input":"second","previous_response_id":"resp_1","store":true})",
                                std::span<const responses::Turn>(&turn, 1));
    // Native: the whole conversation as input, no previous_response_id, item ids gone.
    EXPECT_EQ(canonical(p.body_for("up")),
              canonical(R"({"model":"up","input":[{"type":"message","role":"user","content":"first"},
                  {"type":"message","role":"assistant","content":[{"type":"output_text","text":"answer","annotations":[]}]},
                  {"type":"message","role":"user","content":"second"}],"store":true})"));
    ASSERT_TRUE(p.as_chat);
    EXPECT_EQ(canonical(p.as_chat->body_for("up")),
              canonical(R"({"model":"up","messages":[{"role":"user","content":"first"},
                  {"role":"assistant","content":"answer"},{"role":"user","content":"second"}]})"));
    const auto& ctx = responses::context_of(p);
    EXPECT_EQ(ctx.previous_response_id, "resp_1");
    EXPECT_EQ(canonical(ctx.input_items), canonical(R"([{"type":"message","role":"user","content":"second"}])"));
}

TEST(ResponsesRequest, NativeCodecsAndTranslatedOnes) {
    const auto& surface = surfaces::surface_for(Endpoint::Responses);
    EXPECT_TRUE(surfaces::native(surface, openai::native_codec()));
    EXPECT_TRUE(surfaces::native(surface, azure::codec()));
    EXPECT_FALSE(surfaces::native(surface, openai::codec()));  // groq, vllm, ollama, ...
    EXPECT_TRUE(surfaces::native(surfaces::surface_for(Endpoint::Chat), openai::native_codec()));
}

TEST(ResponsesRequest, AzureResponsesPath) {
    std::string base = "/openai/deployments/dep", version = "2024-02-01";
    const ParsedBody p = parsed(R"({"model":"g","input":"x"})");
    const std::vector<std::string> none;
    Target t{true, "r.openai.azure.com", "443", base, version, "k"};
    upstream::Request req;
    azure::codec().build(CallSpec{t, Endpoint::Responses, false, "dep", p, none}, req);
    EXPECT_EQ(req.target, "/openai/responses?api-version=2025-04-01-preview");
    upstream::Request chat;
    azure::codec().build(CallSpec{t, Endpoint::Chat, false, "dep", *p.as_chat, none}, chat);
    EXPECT_EQ(chat.target, "/openai/deployments/dep/chat/completions?api-version=2024-02-01");
}

// ---- answers ---------------------------------------------------------------

struct Event {
    std::string type;
    rapidjson::Document data;
};

std::vector<Event> events(const std::string& sse) {
    std::vector<Event> out;
    size_t pos = 0;
    while ((pos = sse.find("event: ", pos)) != std::string::npos) {
        const size_t nl = sse.find('\n', pos);
        const size_t end = sse.find("\n\n", nl);
        Event e;
        e.type = sse.substr(pos + 7, nl - pos - 7);
        const std::string data = sse.substr(nl + 7, end - nl - 7);  // after "\ndata: "
        e.data.Parse(data.c_str());
        EXPECT_FALSE(e.data.HasParseError()) << data;
        EXPECT_EQ(std::string(e.data["type"].GetString()), e.type);
        out.push_back(std::move(e));
        pos = end + 2;
    }
    return out;
}

std::string chunk(const std::string& delta, const char* finish = nullptr) {
    return R"(data: {"id":"c","object":"chat.completion.chunk","model":"up-1","choices":[{"index":0,"delta":)" + delta +
           R"(,"finish_reason":)" + (finish ? std::string("\"") + finish + "\"" : "null") + "}]}\n\n";
}

const std::string kUsage = R"(data: {"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}})"
                           "\n\n";

struct StreamRow {
    const char* name;
    std::vector<std::string> chunks;
    std::vector<std::string> types;  // after response.created, response.in_progress
    const char* output;              // the final response's output items, ids and call ids left out
    const char* status;
};

const StreamRow kStreams[] = {
    {"text",
     {chunk(R"({"role":"assistant","content":""})"), chunk(R"({"content":"Hel"})"), chunk(R"({"content":"lo"})"),
      chunk("{}", "stop"), kUsage, "data: [DONE]\n\n"},
     {"response.output_item.added", "response.content_part.added", "response.output_text.delta",
      "response.output_text.delta", "response.output_text.done", "response.content_part.done",
      "response.output_item.done", "response.completed"},
     R"([{"type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hello","annotations":[],"logprobs":[]}]}])",
     "completed"},
    {"tool_call",
     {chunk(R"({"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]})"),
      chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":"{\"a\""}}]})"),
      chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]})"), chunk("{}", "tool_calls"), kUsage,
      "data: [DONE]\n\n"},
     {"response.output_item.added", "response.function_call_arguments.delta",
      "response.function_call_arguments.delta", "response.function_call_arguments.done", "response.output_item.done",
      "response.completed"},
     R"([{"type":"function_call","status":"completed","arguments":"{\"a\":1}","name":"f"}])", "completed"},
    {"text_then_two_tools",
     {chunk(R"({"content":"ok"})"),
      chunk(R"({"tool_calls":[{"index":0,"id":"call_1","function":{"name":"f","arguments":"{}"}}]})"),
      chunk(R"({"tool_calls":[{"index":1,"id":"call_2","function":{"name":"g","arguments":"{}"}}]})"),
      chunk("{}", "tool_calls"), "data: [DONE]\n\n"},
     {"response.output_item.added", "response.content_part.added", "response.output_text.delta",
      "response.output_text.done", "response.content_part.done", "response.output_item.done",
      "response.output_item.added", "response.function_call_arguments.delta", "response.output_item.added",
      "response.function_call_arguments.delta", "response.function_call_arguments.done",
      "response.output_item.done", "response.function_call_arguments.done", "response.output_item.done",
      "response.completed"},
     R"([{"type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"ok","annotations":[],"logprobs":[]}]},
         {"type":"function_call","status":"completed","arguments":"{}","name":"f"},
         {"type":"function_call","status":"completed","arguments":"{}","name":"g"}])",
     "completed"},
    {"interleaved_parallel_calls",
     {chunk(R"({"tool_calls":[{"index":0,"id":"call_1","function":{"name":"f","arguments":"{\"a\""}}]})"),
      chunk(R"({"tool_calls":[{"index":1,"id":"call_2","function":{"name":"g","arguments":"{\"b\""}}]})"),
      chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]})"),
      chunk(R"({"tool_calls":[{"index":1,"function":{"arguments":":2}"}}]})"), chunk("{}", "tool_calls"),
      "data: [DONE]\n\n"},
     {"response.output_item.added", "response.function_call_arguments.delta", "response.output_item.added",
      "response.function_call_arguments.delta", "response.function_call_arguments.delta",
      "response.function_call_arguments.delta", "response.function_call_arguments.done", "response.output_item.done",
      "response.function_call_arguments.done", "response.output_item.done", "response.completed"},
     R"([{"type":"function_call","status":"completed","arguments":"{\"a\":1}","name":"f"},
         {"type":"function_call","status":"completed","arguments":"{\"b\":2}","name":"g"}])",
     "completed"},
    {"cut_by_max_tokens",
     {chunk(R"({"content":"a"})"), chunk("{}", "length"), "data: [DONE]\n\n"},
     {"response.output_item.added", "response.content_part.added", "response.output_text.delta",
      "response.output_text.done", "response.content_part.done", "response.output_item.done",
      "response.incomplete"},
     R"([{"type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"a","annotations":[],"logprobs":[]}]}])",
     "incomplete"},
};

// Output items without their generated ids, for comparison.
std::string without_ids(rapidjson::Value& output, rapidjson::Document::AllocatorType&) {
    for (auto& item : output.GetArray()) {
        item.EraseMember("id");
        item.EraseMember("call_id");
    }
    return canonical(output);
}

class StreamTranslation : public ::testing::TestWithParam<StreamRow> {};

TEST_P(StreamTranslation, TypedEvents) {
    const StreamRow& row = GetParam();
    const ParsedBody req = parsed(R"({"model":"g","input":"hi","stream":true,"instructions":"i"})");
    const auto& surface = surfaces::surface_for(Endpoint::Responses);
    auto decoder = openai::codec().decoder(Endpoint::Chat, surfaces::sink_for(surface, openai::codec(), req, true));
    std::string client;
    bool content = false, done = false;
    for (const auto& c : row.chunks) {
        // Split each chunk in two feeds: frames may arrive cut anywhere.
        const auto a = decoder->feed(c.substr(0, c.size() / 2));
        client.append(a.client);
        const auto b = decoder->feed(c.substr(c.size() / 2));
        client.append(b.client);
        content = content || a.content || b.content;
        done = done || b.done;
    }
    EXPECT_TRUE(content && done);
    auto evs = events(client);
    ASSERT_GE(evs.size(), 3u);
    EXPECT_EQ(evs[0].type, "response.created");
    EXPECT_EQ(evs[1].type, "response.in_progress");
    std::vector<std::string> rest;
    for (size_t i = 2; i < evs.size(); ++i) rest.push_back(evs[i].type);
    EXPECT_EQ(rest, row.types);
    for (size_t i = 0; i < evs.size(); ++i) EXPECT_EQ(evs[i].data["sequence_number"].GetUint64(), i);
    const std::string id = responses::context_of(req).id;
    EXPECT_EQ(evs[0].data["response"]["id"].GetString(), id);
    auto& last = evs.back().data;
    auto& response = last["response"];
    EXPECT_EQ(std::string(response["id"].GetString()), id);
    EXPECT_EQ(std::string(response["status"].GetString()), row.status);
    EXPECT_EQ(std::string(response["model"].GetString()), "up-1");
    EXPECT_EQ(std::string(response["instructions"].GetString()), "i");
    EXPECT_EQ(without_ids(response["output"], last.GetAllocator()), canonical(row.output));
}

INSTANTIATE_TEST_SUITE_P(Table, StreamTranslation, ::testing::ValuesIn(kStreams),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ResponsesAnswer, WholeBody) {
    const ParsedBody req = parsed(R"({"model":"g","input":"hi","store":false,"metadata":{"k":"v"}})");
    const auto& surface = surfaces::surface_for(Endpoint::Responses);
    auto decoder = openai::codec().decoder(Endpoint::Chat, surfaces::sink_for(surface, openai::codec(), req, false));
    std::string body = R"({"id":"c","object":"chat.completion","model":"up-1","choices":[{"index":0,"message":
        {"role":"assistant","content":"hey","tool_calls":[{"id":"call_9","type":"function","function":{"name":"f","arguments":"{}"}}]},
        "finish_reason":"tool_calls"}],"usage":{"prompt_tokens":4,"completion_tokens":5}})";
    const auto r = decoder->decode_body(body);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.usage.prompt_tokens, 4);
    rapidjson::Document d;
    d.Parse(body.c_str());
    ASSERT_FALSE(d.HasParseError()) << body;
    EXPECT_EQ(std::string(d["object"].GetString()), "response");
    EXPECT_EQ(std::string(d["id"].GetString()), responses::context_of(req).id);
    EXPECT_EQ(std::string(d["status"].GetString()), "completed");
    EXPECT_FALSE(d["store"].GetBool());
    EXPECT_EQ(canonical(d["metadata"]), R"({"k":"v"})");
    EXPECT_EQ(d["usage"]["input_tokens"].GetInt(), 4);
    EXPECT_EQ(d["usage"]["output_tokens"].GetInt(), 5);
    EXPECT_EQ(d["usage"]["total_tokens"].GetInt(), 9);
    EXPECT_EQ(std::string(d["output"][1]["call_id"].GetString()), "call_9");
    EXPECT_EQ(without_ids(d["output"], d.GetAllocator()),
              canonical(R"([{"type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"hey","annotations":[],"logprobs":[]}]},
                            {"type":"function_call","status":"completed","arguments":"{}","name":"f"}])"));
}

// ---- native streams: the decoder's summary ------------------------------------

TEST(ResponsesNative, CommitPointEndUsageAndErrors) {
    auto d = openai::native_codec().decoder(Endpoint::Responses, nullptr);
    const std::string head =
        "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{}}\n\n"
        "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"sequence_number\":1}\n\n";
    auto r = d->feed(head);
    EXPECT_FALSE(r.content);  // neither the lifecycle nor an empty item is the commit point
    EXPECT_EQ(r.client, head);  // pass-through: the upstream's bytes as they came
    r = d->feed("data: {\"type\":\"response.output_text.delta\",\"delta\":\"\"}\n\n");
    EXPECT_FALSE(r.content);
    r = d->feed("data: {\"type\":\"response.function_call_arguments.delta\",\"delta\":\"{\"}\n\n");
    EXPECT_TRUE(r.content);
    EXPECT_FALSE(d->saw_done());
    r = d->feed("data: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":7,\"output_tokens\":8}}}\n\n");
    EXPECT_TRUE(r.done && d->saw_done());
    EXPECT_EQ(d->usage().prompt_tokens, 7);
    EXPECT_EQ(d->usage().completion_tokens, 8);

    auto e = openai::native_codec().decoder(Endpoint::Responses, nullptr);
    r = e->feed("data: {\"type\":\"error\",\"code\":\"rate_limit_exceeded\",\"message\":\"slow down\"}\n\n");
    ASSERT_TRUE(r.error);
    EXPECT_EQ(r.error->error_class, ErrorClass::RateLimit);
    EXPECT_EQ(r.error->message, "slow down");
    auto f = openai::native_codec().decoder(Endpoint::Responses, nullptr);
    r = f->feed("data: {\"type\":\"response.failed\",\"response\":{\"error\":{\"code\":\"server_error\",\"message\":\"boom\"}}}\n\n");
    ASSERT_TRUE(r.error);
    EXPECT_EQ(r.error->message, "boom");
    r = f->feed("data: not json\n\n");
    EXPECT_TRUE(r.malformed);

    std::string failed = R"({"id":"resp_1","status":"failed","error":{"code":"server_error","message":"x"}})";
    EXPECT_FALSE(openai::native_codec().decoder(Endpoint::Responses, nullptr)->decode_body(failed).ok);
    std::string fine = R"({"id":"resp_1","status":"completed","usage":{"input_tokens":1,"output_tokens":2}})";
    auto ok = openai::native_codec().decoder(Endpoint::Responses, nullptr)->decode_body(fine);
    EXPECT_TRUE(ok.ok);
    EXPECT_EQ(ok.usage.completion_tokens, 2);
}

TEST(ResponsesSurface, ErrorEventContinuesTheNumbering) {
    std::string out;
    responses::error_event(ApiError::bad_gateway("upstream connection lost mid-stream", "upstream_stream_interrupted"),
                           12, out);
    const auto evs = events(out);
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_EQ(evs[0].type, "error");
    EXPECT_EQ(evs[0].data["sequence_number"].GetInt(), 12);
    EXPECT_EQ(std::string(evs[0].data["code"].GetString()), "upstream_stream_interrupted");
}

}  // namespace
