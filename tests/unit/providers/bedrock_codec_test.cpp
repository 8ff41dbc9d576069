// The Bedrock codec: chat -> Converse request translation (a table of cases),
// the signed upstream request, Converse bodies and event streams -> OpenAI
// bytes through the chat surface's renderer, stop reasons, exceptions, errors.
#include "providers/bedrock/codec.hpp"
#include "providers/crypto.hpp"
#include "surfaces/surface.hpp"

#include "event_stream_testing.hpp"
#include "testing_support.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <map>

using namespace tailgate;
using namespace tailgate::providers;
using tailgate::providers::testing::converse_event;
using tailgate::providers::testing::converse_exception;
using tailgate::providers::testing::head;

namespace {

// A ParsedBody as the OpenAI surface would make it from `json` (an object's members).
ParsedBody chat(const std::string& json) {
    rapidjson::Document d;
    d.Parse(json.c_str());
    ParsedBody b;
    for (auto it = d.MemberBegin(); it != d.MemberEnd(); ++it) {
        rapidjson::StringBuffer sb;
        rapidjson::Writer<rapidjson::StringBuffer> w(sb);
        it->value.Accept(w);
        std::string member = "\"" + std::string(it->name.GetString()) + "\":" + sb.GetString();
        if (!b.members.empty()) b.members += ',';
        b.spans.push_back({it->name.GetString(), b.members.size(), b.members.size() + member.size()});
        b.members += member;
    }
    return b;
}

std::string canonical(const std::string& json) {
    rapidjson::Document d;
    d.Parse(json.c_str());
    EXPECT_FALSE(d.HasParseError()) << json;
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    d.Accept(w);
    return sb.GetString();
}

struct Case {
    const char* name;
    const char* chat;      // the client's chat body (members only matter)
    const char* converse;  // the Converse body expected
};

const Case kCases[] = {
    {"text and system", R"({"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}]})",
     R"({"system":[{"text":"be brief"}],"messages":[{"role":"user","content":[{"text":"hi"}]}]})"},
    {"developer is system too, parts joined",
     R"({"messages":[{"role":"developer","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},{"role":"user","content":"x"}]})",
     R"({"system":[{"text":"a\nb"}],"messages":[{"role":"user","content":[{"text":"x"}]}]})"},
    {"consecutive turns merge, empty text dropped",
     R"({"messages":[{"role":"user","content":"a"},{"role":"user","content":""},{"role":"user","content":"b"},{"role":"assistant","content":"c"}]})",
     R"({"messages":[{"role":"user","content":[{"text":"a"},{"text":"b"}]},{"role":"assistant","content":[{"text":"c"}]}]})"},
    {"inference config",
     R"({"messages":[{"role":"user","content":"x"}],"max_tokens":10,"max_completion_tokens":20,"temperature":0.5,"top_p":0.9,"stop":"END","top_k":5})",
     R"({"messages":[{"role":"user","content":[{"text":"x"}]}],"inferenceConfig":{"maxTokens":20,"temperature":0.5,"topP":0.9,"stopSequences":["END"]},"additionalModelRequestFields":{"top_k":5}})"},
    {"image data URL",
     R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/jpg;base64,QUJD"}},{"type":"text","text":"what?"}]}]})",
     R"({"messages":[{"role":"user","content":[{"image":{"format":"jpeg","source":{"bytes":"QUJD"}}},{"text":"what?"}]}]})"},
    {"tools, choice and a tool round trip",
     R"({"messages":[{"role":"user","content":"w?"},{"role":"assistant","content":null,"tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{\"c\":1}"}}]},{"role":"tool","tool_call_id":"t1","content":"sunny"},{"role":"tool","tool_call_id":"t2","content":[{"type":"text","text":"rain"}]}],
        "tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object"}}}],"tool_choice":"required"})",
     R"({"messages":[{"role":"user","content":[{"text":"w?"}]},{"role":"assistant","content":[{"toolUse":{"toolUseId":"t1","name":"f","input":{"c":1}}}]},{"role":"user","content":[{"toolResult":{"toolUseId":"t1","content":[{"text":"sunny"}]}},{"toolResult":{"toolUseId":"t2","content":[{"text":"rain"}]}}]}],
        "toolConfig":{"tools":[{"toolSpec":{"name":"f","description":"d","inputSchema":{"json":{"type":"object"}}}}],"toolChoice":{"any":{}}}})"},
    {"a named tool",
     R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"g"}}],"tool_choice":{"type":"function","function":{"name":"g"}}})",
     R"({"messages":[{"role":"user","content":[{"text":"x"}]}],"toolConfig":{"tools":[{"toolSpec":{"name":"g","inputSchema":{"json":{"type":"object"}}}}],"toolChoice":{"tool":{"name":"g"}}}})"},
    {"tool_choice none without tool history drops the tools",
     R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"g"}}],"tool_choice":"none"})",
     R"({"messages":[{"role":"user","content":[{"text":"x"}]}]})"},
    {"unparsable arguments become {}",
     R"({"messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"t","function":{"name":"f","arguments":"{oops"}}]},{"role":"tool","tool_call_id":"t","content":"r"}],"tools":[{"type":"function","function":{"name":"f"}}]})",
     R"({"messages":[{"role":"user","content":[{"text":"x"}]},{"role":"assistant","content":[{"toolUse":{"toolUseId":"t","name":"f","input":{}}}]},{"role":"user","content":[{"toolResult":{"toolUseId":"t","content":[{"text":"r"}]}}]}],"toolConfig":{"tools":[{"toolSpec":{"name":"f","inputSchema":{"json":{"type":"object"}}}}]}})"},
};

std::string render_stream(const std::vector<std::string>& frames, bool* done = nullptr) {
    const auto& c = bedrock::codec();
    auto d = c.decoder_for(Endpoint::Chat, surfaces::sink_for(surfaces::surface_for(Endpoint::Chat), c, true), "m");
    std::string out;
    for (const auto& f : frames) out += d->feed(f).client;
    if (done) *done = d->saw_done();
    return out;
}

}  // namespace

TEST(BedrockCodec, ChatToConverseTable) {
    for (const Case& c : kCases) {
        SCOPED_TRACE(c.name);
        EXPECT_EQ(canonical(bedrock::to_converse(chat(c.chat), Endpoint::Chat, {})), canonical(c.converse));
    }
}

TEST(BedrockCodec, DroppedFieldsAndLegacyPrompt) {
    const ParsedBody b = chat(R"({"messages":[{"role":"user","content":"x"}],"temperature":1})");
    EXPECT_EQ(bedrock::to_converse(b, Endpoint::Chat, {"temperature"}), R"({"messages":[{"role":"user","content":[{"text":"x"}]}]})");
    EXPECT_EQ(bedrock::to_converse(chat(R"({"prompt":"say hi","max_tokens":3})"), Endpoint::Completions, {}),
              R"({"messages":[{"role":"user","content":[{"text":"say hi"}]}],"inferenceConfig":{"maxTokens":3}})");
}

TEST(BedrockCodec, RefusesWhatConverseCannotSay) {
    const auto refused = [](const char* body, Endpoint op = Endpoint::Chat) -> std::string {
        try {
            bedrock::to_converse(chat(body), op, {});
        } catch (const RequestRefused& e) {
            return e.what();
        }
        return "";
    };
    EXPECT_NE(refused(R"({"messages":[{"role":"user","content":"x"}],"n":2})").find("one choice"), std::string::npos);
    EXPECT_NE(refused(R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]})")
                  .find("data:"),
              std::string::npos);
    EXPECT_NE(refused(R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/tiff;base64,AA"}}]}]})")
                  .find("tiff"),
              std::string::npos);
    EXPECT_NE(refused(R"({"input":"x"})", Endpoint::Embeddings).find("chat completions"), std::string::npos);
    EXPECT_NE(refused(R"({"prompt":["a","b"]})", Endpoint::Completions).find("one prompt"), std::string::npos);
}

TEST(BedrockCodec, BuildsASignedConverseRequest) {
    std::string error;
    DeploymentParams p{"anthropic.claude-3-haiku-20240307-v1:0", "",
                       [](const std::string& k) -> std::optional<std::string> {
                           if (k == "aws_access_key_id") return "AKIDEXAMPLE";
                           if (k == "aws_secret_access_key") return "SECRETKEY";
                           if (k == "aws_session_token") return "TOKEN";
                           if (k == "aws_region_name") return "eu-west-3";
                           return std::nullopt;
                       },
                       [](const std::string&) -> std::optional<std::string> { return std::nullopt; }};
    const Codec& c = bedrock::codec();
    EXPECT_EQ(c.default_base(p), "https://bedrock-runtime.eu-west-3.amazonaws.com");
    const CredentialsPtr creds = c.credentials(p, error);
    ASSERT_TRUE(creds) << error;
    EXPECT_EQ(creds->secrets(), (std::vector<std::string>{"SECRETKEY", "TOKEN"}));
    Target t{true, "bedrock-runtime.eu-west-3.amazonaws.com", "443", "", "", "", true, creds.get()};
    const ParsedBody body = chat(R"({"messages":[{"role":"user","content":"hi"}]})");
    const std::vector<std::string> none;
    upstream::Request req;
    c.build(CallSpec{t, Endpoint::Chat, true, "converse/anthropic.claude-3-haiku-20240307-v1:0", body, none}, req);
    EXPECT_EQ(req.target, "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream");
    std::map<std::string, std::string> h(req.headers.begin(), req.headers.end());
    EXPECT_EQ(h["Host"], "bedrock-runtime.eu-west-3.amazonaws.com");
    EXPECT_EQ(h["X-Amz-Security-Token"], "TOKEN");
    EXPECT_EQ(h["Accept"], "application/vnd.amazon.eventstream");
    EXPECT_EQ(h["X-Amz-Date"].size(), 16u);
    const std::string auth = h["Authorization"];
    EXPECT_EQ(auth.rfind("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/" + h["X-Amz-Date"].substr(0, 8) +
                             "/eu-west-3/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=",
                         0),
              0u)
        << auth;
    EXPECT_EQ(auth.find("SECRETKEY"), std::string::npos);
    // The signature is the one SigV4 gives for these parts.
    const std::string uri = bedrock::canonical_uri(req.target);
    bedrock::SigV4Request r{"POST", uri, "", {}, "", h["X-Amz-Date"], "eu-west-3", "bedrock"};
    for (const char* k : {"Host", "Content-Type", "X-Amz-Date", "X-Amz-Security-Token"}) r.headers.emplace_back(k, h[k]);
    const std::string payload = [&] {
        const Digest d = sha256(req.body);
        return hex(bytes_of(d));
    }();
    r.payload_sha256_hex = payload;
    EXPECT_EQ(auth, bedrock::authorization({"AKIDEXAMPLE", "SECRETKEY", "TOKEN"}, r));
}

TEST(BedrockCodec, CredentialsFromTheEnvironmentOrAnApiKey) {
    std::string error;
    auto none = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
    DeploymentParams env_only{"m", "", none, [](const std::string& k) -> std::optional<std::string> {
                                  if (k == "AWS_ACCESS_KEY_ID") return "AK";
                                  if (k == "AWS_SECRET_ACCESS_KEY") return "SK";
                                  if (k == "AWS_DEFAULT_REGION") return "us-west-2";
                                  return std::nullopt;
                              }};
    const auto aws = std::dynamic_pointer_cast<const bedrock::AwsCredentials>(bedrock::codec().credentials(env_only, error));
    ASSERT_TRUE(aws) << error;
    EXPECT_EQ(aws->keys().access_key_id, "AK");
    EXPECT_EQ(aws->region(), "us-west-2");

    DeploymentParams nothing{"m", "", none, none};
    EXPECT_EQ(bedrock::codec().credentials(nothing, error), nullptr);
    EXPECT_NE(error.find("region"), std::string::npos);
    DeploymentParams region_only{"m", "", none, [](const std::string& k) -> std::optional<std::string> {
                                     return k == "AWS_REGION" ? std::optional<std::string>("us-east-1") : std::nullopt;
                                 }};
    error.clear();
    EXPECT_EQ(bedrock::codec().credentials(region_only, error), nullptr);
    EXPECT_NE(error.find("aws_access_key_id"), std::string::npos);
    DeploymentParams api_key{"m", "bedrock-api-key", none, region_only.env};
    error.clear();
    const CredentialsPtr bearer = bedrock::codec().credentials(api_key, error);
    ASSERT_TRUE(bearer) << error;
    Target t{true, "h", "443", "", "", "bedrock-api-key", true, bearer.get()};
    upstream::Request req;
    const ParsedBody body = chat(R"({"messages":[{"role":"user","content":"hi"}]})");
    const std::vector<std::string> dropped;
    bedrock::codec().build(CallSpec{t, Endpoint::Chat, false, "m", body, dropped}, req);
    std::map<std::string, std::string> h(req.headers.begin(), req.headers.end());
    EXPECT_EQ(h["Authorization"], "Bearer bedrock-api-key");
    EXPECT_EQ(h.count("X-Amz-Date"), 0u);
}

TEST(BedrockCodec, ConverseBodyBecomesAChatCompletion) {
    const auto& c = bedrock::codec();
    auto d = c.decoder_for(Endpoint::Chat, surfaces::sink_for(surfaces::surface_for(Endpoint::Chat), c, false), "converse/m-1");
    std::string body =
        R"({"output":{"message":{"role":"assistant","content":[{"text":"Hi "},{"text":"there"},{"toolUse":{"toolUseId":"t1","name":"f","input":{"a":1}}}]}},"stopReason":"tool_use","usage":{"inputTokens":7,"outputTokens":3,"totalTokens":10}})";
    const BodyDecoded r = d->decode_body(body);
    ASSERT_TRUE(r.ok) << r.problem;
    EXPECT_EQ(r.usage.prompt_tokens, 7);
    rapidjson::Document out;
    out.Parse(body.c_str());
    ASSERT_FALSE(out.HasParseError()) << body;
    EXPECT_STREQ(out["object"].GetString(), "chat.completion");
    EXPECT_STREQ(out["model"].GetString(), "m-1");
    const auto& msg = out["choices"][0]["message"];
    EXPECT_STREQ(msg["content"].GetString(), "Hi there");
    EXPECT_STREQ(msg["tool_calls"][0]["function"]["arguments"].GetString(), R"({"a":1})");
    EXPECT_STREQ(out["choices"][0]["finish_reason"].GetString(), "tool_calls");
    EXPECT_EQ(out["usage"]["total_tokens"].GetInt(), 10);

    std::string junk = "<html>";
    EXPECT_FALSE(c.decoder_for(Endpoint::Chat, surfaces::sink_for(surfaces::surface_for(Endpoint::Chat), c, false), "m")
                     ->decode_body(junk)
                     .ok);
}

TEST(BedrockCodec, EventStreamBecomesOpenAIChunks) {
    bool done = false;
    const std::string out = render_stream(
        {converse_event("messageStart", R"({"role":"assistant"})"),
         converse_event("contentBlockDelta", R"({"contentBlockIndex":0,"delta":{"text":"Hel"},"p":"x"})"),
         converse_event("contentBlockDelta", R"({"contentBlockIndex":0,"delta":{"text":"lo"}})"),
         converse_event("contentBlockStart",
                        R"({"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"t9","name":"get"}}})"),
         converse_event("contentBlockDelta", R"({"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"a\""}}})"),
         converse_event("messageStop", R"({"stopReason":"max_tokens"})"),
         converse_event("metadata", R"({"usage":{"inputTokens":2,"outputTokens":5}})")},
        &done);
    EXPECT_TRUE(done);
    EXPECT_NE(out.find(R"("delta":{"content":"Hel"})"), std::string::npos) << out;
    EXPECT_NE(out.find(R"("tool_calls":[{"index":0,"id":"t9","type":"function","function":{"name":"get","arguments":""}}])"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find(R"("arguments":"{\"a\"")"), std::string::npos) << out;
    EXPECT_NE(out.find(R"("finish_reason":"length")"), std::string::npos) << out;
    EXPECT_NE(out.find(R"("completion_tokens":5)"), std::string::npos) << out;
    EXPECT_EQ(out.substr(out.size() - 14), "data: [DONE]\n\n");
    EXPECT_NE(out.find(R"("model":"m")"), std::string::npos);
}

TEST(BedrockCodec, CommitPointAndEndOfStream) {
    const auto& c = bedrock::codec();
    auto d = c.decoder_for(Endpoint::Chat, surfaces::sink_for(surfaces::surface_for(Endpoint::Chat), c, true), "m");
    EXPECT_FALSE(d->feed(converse_event("messageStart", R"({"role":"assistant"})")).content)
        << "a bare messageStart is not the commit point";
    EXPECT_FALSE(d->feed(converse_event("contentBlockDelta", R"({"contentBlockIndex":0,"delta":{"text":""}})")).content);
    const Decoded reasoning =
        d->feed(converse_event("contentBlockDelta", R"({"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"h"}}})"));
    EXPECT_TRUE(reasoning.content);
    EXPECT_NE(reasoning.client.find(R"("reasoning_content":"h")"), std::string_view::npos) << reasoning.client;
    EXPECT_FALSE(d->saw_done());
    const Decoded stop = d->feed(converse_event("messageStop", R"({"stopReason":"end_turn"})"));
    EXPECT_FALSE(stop.done) << "metadata, the last event, ends the stream";
    EXPECT_TRUE(d->feed(converse_event("metadata", R"({"usage":{"inputTokens":1,"outputTokens":1}})")).done);
}

TEST(BedrockCodec, ExceptionsAndCorruptFrames) {
    const auto& c = bedrock::codec();
    auto d = c.decoder_for(Endpoint::Chat, surfaces::sink_for(surfaces::surface_for(Endpoint::Chat), c, true), "m");
    const Decoded e = d->feed(converse_exception("throttlingException", R"({"message":"slow down"})"));
    ASSERT_NE(e.error, nullptr);
    EXPECT_EQ(e.error->error_class, ErrorClass::RateLimit);
    EXPECT_EQ(e.error->message, "throttlingException: slow down");
    EXPECT_EQ(bedrock::exception_class("validationException"), ErrorClass::BadRequest);
    EXPECT_EQ(bedrock::exception_class("modelStreamErrorException"), ErrorClass::Server);
    EXPECT_EQ(bedrock::exception_class("serviceUnavailableException"), ErrorClass::Server);
    EXPECT_EQ(bedrock::exception_class("modelTimeoutException"), ErrorClass::Timeout);

    auto d2 = c.decoder_for(Endpoint::Chat, surfaces::sink_for(surfaces::surface_for(Endpoint::Chat), c, true), "m");
    std::string bad = converse_event("contentBlockDelta", R"({"contentBlockIndex":0,"delta":{"text":"x"}})");
    bad[bad.size() - 1] ^= 1;
    const Decoded m = d2->feed(bad);
    EXPECT_TRUE(m.malformed);
    EXPECT_FALSE(m.content) << "no event from a frame whose CRC fails";
    EXPECT_EQ(d2->malformed_excerpt(), "event-stream message CRC mismatch");

    auto d3 = c.decoder_for(Endpoint::Chat, surfaces::sink_for(surfaces::surface_for(Endpoint::Chat), c, true), "m");
    EXPECT_TRUE(d3->feed(converse_event("contentBlockDelta", "not json")).malformed);
}

TEST(BedrockCodec, StopReasonsAndErrorStatuses) {
    EXPECT_EQ(bedrock::finish_reason("end_turn"), "stop");
    EXPECT_EQ(bedrock::finish_reason("stop_sequence"), "stop");
    EXPECT_EQ(bedrock::finish_reason("tool_use"), "tool_calls");
    EXPECT_EQ(bedrock::finish_reason("max_tokens"), "length");
    EXPECT_EQ(bedrock::finish_reason("guardrail_intervened"), "content_filter");
    EXPECT_EQ(bedrock::finish_reason("content_filtered"), "content_filter");

    const auto& c = bedrock::codec();
    auto e = c.decode_error(head(429, {{"x-amzn-errortype", "ThrottlingException:http://internal.amazon.com/"}}),
                            R"({"message":"Too many requests"})");
    EXPECT_EQ(e.error_class, ErrorClass::RateLimit);
    EXPECT_EQ(e.message, "ThrottlingException: Too many requests");
    EXPECT_EQ(c.decode_error(head(403), R"({"message":"signature mismatch"})").error_class, ErrorClass::Auth);
    EXPECT_EQ(c.decode_error(head(400), R"({"message":"Input is too long for requested model."})").error_class,
              ErrorClass::ContextWindow);
    EXPECT_EQ(c.decode_error(head(400), R"({"message":"bad"})").error_class, ErrorClass::BadRequest);
    EXPECT_EQ(c.decode_error(head(503), R"({"message":"busy"})").error_class, ErrorClass::Server);
}
