// OpenAI's pass-through endpoints: their rows (providers/operations.hpp), the
// surface that parses their requests, the OpenAI codec's path and body, and
// which providers refuse them.
#include "providers/anthropic/codec.hpp"
#include "providers/bedrock/codec.hpp"
#include "providers/openai/codec.hpp"
#include "providers/operations.hpp"
#include "surfaces/passthrough/surface.hpp"

#include <gtest/gtest.h>

using namespace tailgate;
using providers::ParsedBody;

namespace {

const std::string kType = "multipart/form-data; boundary=b0undary";

std::string form(std::string_view model, bool with_file = true) {
    std::string out;
    if (with_file)
        out += "--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
               "Content-Type: audio/wav\r\n\r\nRIFFdata\r\n";
    if (!model.empty())
        out += "--b0undary\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n" + std::string(model) + "\r\n";
    return out + "--b0undary--\r\n";
}

std::variant<ParsedBody, ApiError> parse(Endpoint op, std::string_view body, std::string_view type = {}) {
    return surfaces::surface_for(op).parse_client_request(body, type, {});
}

ApiError error(Endpoint op, std::string_view body, std::string_view type = {}) {
    auto r = parse(op, body, type);
    EXPECT_TRUE(std::holds_alternative<ApiError>(r)) << body;
    return std::holds_alternative<ApiError>(r) ? std::get<ApiError>(r) : ApiError{};
}

}  // namespace

TEST(Operations, OneRowPerEndpointInOrder) {
    const auto ops = providers::operations();
    ASSERT_EQ(ops.size(), kEndpointCount);
    for (size_t i = 0; i < ops.size(); ++i) {
        EXPECT_EQ(static_cast<size_t>(ops[i].op), i);
        EXPECT_EQ(ops[i].path.front(), '/');
        EXPECT_FALSE(ops[i].call_type.empty());
        // A pass-through endpoint has its own surface, and every other has none of that kind.
        EXPECT_EQ(surfaces::passthrough::surface_for(ops[i].op) != nullptr, ops[i].pass_through());
        if (ops[i].pass_through()) {
            EXPECT_EQ(surfaces::surface_for(ops[i].op).operation(), ops[i].op);
        }
    }
    EXPECT_STREQ(providers::openai::Codec::path_for(Endpoint::AudioSpeech), "/audio/speech");
    EXPECT_STREQ(providers::openai::Codec::path_for(Endpoint::Chat), "/chat/completions");
    EXPECT_STREQ(providers::openai::Codec::path_for(Endpoint::ImageGenerations), "/images/generations");
    EXPECT_STREQ(providers::openai::Codec::path_for(Endpoint::ImageEdits), "/images/edits");
    EXPECT_STREQ(providers::openai::Codec::path_for(Endpoint::ImageVariations), "/images/variations");
}

TEST(Operations, ImageEditsAndVariationsAreMultipartAnsweredLikeGenerations) {
    for (Endpoint op : {Endpoint::ImageEdits, Endpoint::ImageVariations}) {
        const auto& o = providers::operation(op);
        EXPECT_EQ(o.request, providers::RequestForm::Multipart);
        EXPECT_EQ(o.response, providers::operation(Endpoint::ImageGenerations).response);
        EXPECT_EQ(o.required, "image");
        EXPECT_TRUE(o.default_model.empty());  // `model` required, as for generations
        EXPECT_FALSE(o.via_chat);
    }
    EXPECT_EQ(providers::operation(Endpoint::ImageEdits).call_type, "image_edit");
    EXPECT_EQ(providers::operation(Endpoint::ImageVariations).call_type, "image_variation");
}

TEST(Operations, OnlyOpenAIWireProvidersServePassThroughEndpoints) {
    for (Endpoint op : {Endpoint::Moderations, Endpoint::ImageGenerations, Endpoint::AudioSpeech,
                        Endpoint::AudioTranscriptions, Endpoint::AudioTranslations, Endpoint::ImageEdits,
                        Endpoint::ImageVariations}) {
        EXPECT_FALSE(providers::anthropic::codec().serves(op));
        EXPECT_FALSE(providers::bedrock::codec().serves(op));
        EXPECT_TRUE(providers::openai::codec().serves(op));
    }
    EXPECT_TRUE(providers::anthropic::codec().serves(Endpoint::Chat));
    EXPECT_FALSE(providers::anthropic::codec().serves(Endpoint::Embeddings));
}

TEST(PassThroughSurface, JsonBodiesNeedTheirMember) {
    auto img = std::get<ParsedBody>(parse(Endpoint::ImageGenerations, R"({"model":"img","prompt":"a cat","n":2})"));
    EXPECT_EQ(img.model, "img");
    EXPECT_FALSE(img.stream);
    EXPECT_EQ(img.body_for("dall-e-3"), R"({"model":"dall-e-3","prompt":"a cat","n":2})");
    EXPECT_EQ(error(Endpoint::ImageGenerations, R"({"model":"img"})").param, "prompt");
    EXPECT_EQ(error(Endpoint::ImageGenerations, R"({"prompt":"x"})").param, "model");
    EXPECT_EQ(error(Endpoint::AudioSpeech, R"({"model":"tts","voice":"alloy"})").param, "input");
}

TEST(PassThroughSurface, SpeechIsAlwaysAStream) {
    auto p = std::get<ParsedBody>(parse(Endpoint::AudioSpeech, R"({"model":"tts","input":"hi","voice":"alloy"})"));
    EXPECT_TRUE(p.stream);
    EXPECT_TRUE(providers::operation(Endpoint::AudioSpeech).raw_stream());
}

TEST(PassThroughSurface, ModerationsWithoutModelGoToTheDefaultGroup) {
    auto p = std::get<ParsedBody>(parse(Endpoint::Moderations, R"({"input":"hello"})"));
    EXPECT_EQ(p.model, "omni-moderation-latest");
    EXPECT_TRUE(p.model_defaulted);
    EXPECT_EQ(p.body_for("omni-moderation-2024-09-26"), R"({"model":"omni-moderation-2024-09-26","input":"hello"})");
    auto q = std::get<ParsedBody>(parse(Endpoint::Moderations, R"({"model":"mod","input":["a","b"]})"));
    EXPECT_EQ(q.model, "mod");
    EXPECT_FALSE(q.model_defaulted);
}

TEST(PassThroughSurface, TranscriptionsReadTheModelFromTheForm) {
    const std::string body = form("whisper");
    auto p = std::get<ParsedBody>(parse(Endpoint::AudioTranscriptions, body, kType));
    EXPECT_EQ(p.model, "whisper");
    ASSERT_TRUE(p.form);
    EXPECT_TRUE(p.members.empty());
    EXPECT_EQ(p.content_type(), kType);
    std::string expected = body;
    expected.replace(expected.find("whisper"), 7, "whisper-1");
    EXPECT_EQ(p.body_for("whisper-1"), expected);
    // The codec sends it with the form's content type, to the operation's path.
    providers::Target t;
    t.host = "api.example";
    t.port = "443";
    t.base_path = "/v1";
    t.api_key = "sk-x";
    upstream::Request out;
    const std::vector<std::string> none;
    providers::openai::codec().build(
        providers::CallSpec{t, Endpoint::AudioTranscriptions, false, "whisper-1", p, none}, out);
    EXPECT_EQ(out.target, "/v1/audio/transcriptions");
    EXPECT_EQ(out.body, expected);
    bool has_type = false;
    for (const auto& [k, v] : out.headers) has_type |= k == "Content-Type" && v == kType;
    EXPECT_TRUE(has_type);
}

TEST(PassThroughSurface, BadFormsAreA400NamingTheProblem) {
    ApiError e = error(Endpoint::AudioTranscriptions, form("m"), "application/json");
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.code, "invalid_multipart");
    EXPECT_NE(e.message.find("multipart/form-data"), std::string::npos);
    e = error(Endpoint::AudioTranscriptions, "--b0undary\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nm",
              kType);
    EXPECT_NE(e.message.find("no closing boundary"), std::string::npos);
    EXPECT_EQ(error(Endpoint::AudioTranscriptions, form(""), kType).param, "model");
    EXPECT_EQ(error(Endpoint::AudioTranscriptions, form("m", false), kType).param, "file");
    EXPECT_EQ(error(Endpoint::AudioTranslations, "", kType).code, "invalid_multipart");
}

TEST(PassThroughSurface, ImageFormsNeedAnImagePartOneOrSeveral) {
    const std::string model = "--b0undary\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nimg\r\n";
    const std::string prompt = "--b0undary\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\na hat\r\n";
    auto file = [](std::string_view name) {
        return "--b0undary\r\nContent-Disposition: form-data; name=\"" + std::string(name) +
               "\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n";
    };
    const std::string end = "--b0undary--\r\n";
    auto p = std::get<ParsedBody>(parse(Endpoint::ImageEdits, file("image") + prompt + model + end, kType));
    EXPECT_EQ(p.model, "img");
    ASSERT_TRUE(p.form);
    // Several images: the openai clients send `image[]` parts.
    p = std::get<ParsedBody>(parse(Endpoint::ImageEdits, file("image[]") + file("image[]") + prompt + model + end,
                                   kType));
    EXPECT_EQ(p.model, "img");
    p = std::get<ParsedBody>(parse(Endpoint::ImageVariations, file("image") + model + end, kType));
    EXPECT_EQ(p.body_for("dall-e-2").find("dall-e-2") != std::string::npos, true);
    ApiError e = error(Endpoint::ImageEdits, file("mask") + prompt + model + end, kType);
    EXPECT_EQ(e.param, "image");
    EXPECT_EQ(e.code, "missing_required_parameter");
    EXPECT_EQ(error(Endpoint::ImageVariations, model + end, kType).param, "image");
    EXPECT_EQ(error(Endpoint::ImageVariations, file("image") + end, kType).param, "model");
}

TEST(PassThroughSurface, CredentialFieldsInAFormAreNoticed) {
    const std::string body = "--b0undary\r\nContent-Disposition: form-data; name=\"api_base\"\r\n\r\nhttp://evil\r\n" +
                             form("m");
    auto p = std::get<ParsedBody>(parse(Endpoint::AudioTranscriptions, body, kType));
    EXPECT_EQ(p.client_credential, "api_base");
}

TEST(PassThroughDecoder, StreamsAreRelayedByteForByteAndCommitAtTheFirstByte) {
    auto d = providers::openai::codec().decoder(Endpoint::AudioSpeech, nullptr);
    const std::string audio("ID3\0\xff\xfb data: not SSE\n\n", 21);
    providers::Decoded r = d->feed(audio);
    EXPECT_TRUE(r.content);
    EXPECT_FALSE(r.malformed);
    EXPECT_EQ(r.client, audio);
    EXPECT_FALSE(d->feed("").content);
    EXPECT_EQ(d->pending(), 0u);
    EXPECT_TRUE(d->saw_done());  // the end of the HTTP body ends it
}

TEST(PassThroughDecoder, WholeBodiesAreCheckedAsTheirFormSays) {
    auto img = providers::openai::codec().decoder(Endpoint::ImageGenerations, nullptr);
    std::string body = R"({"data":[{"b64_json":"eA=="}],"usage":{"input_tokens":7,"output_tokens":100}})";
    const std::string kept = body;
    providers::BodyDecoded b = img->decode_body(body);
    EXPECT_TRUE(b.ok);
    EXPECT_EQ(body, kept);  // passed through untouched
    EXPECT_EQ(b.usage.prompt_tokens, 7);
    EXPECT_EQ(b.usage.completion_tokens, 100);
    std::string html = "<html>502</html>";
    EXPECT_FALSE(img->decode_body(html).ok);  // a 2xx page is no image answer
    auto text = providers::openai::codec().decoder(Endpoint::AudioTranscriptions, nullptr);
    std::string srt = "1\n00:00:00,000 --> 00:00:01,000\nhello\n";
    EXPECT_TRUE(text->decode_body(srt).ok);  // response_format=srt: any body
}
