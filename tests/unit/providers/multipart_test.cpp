// The multipart/form-data parser and rewriter of the audio endpoints (providers/multipart.hpp).
#include "providers/multipart.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace tailgate::providers::multipart;

namespace {

const std::string kType = "multipart/form-data; boundary=XyZ";

std::string part(std::string_view name, std::string_view value, std::string_view filename = {}) {
    std::string out = "--XyZ\r\nContent-Disposition: form-data; name=\"" + std::string(name) + "\"";
    if (!filename.empty()) out += "; filename=\"" + std::string(filename) + "\"\r\nContent-Type: audio/wav";
    out += "\r\n\r\n" + std::string(value) + "\r\n";
    return out;
}

// As httpx (the OpenAI SDK) sends it: the file, then the fields.
std::string sdk_form(std::string_view model = "whisper-1") {
    return part("file", std::string("RIFF\0\x01\r\n--Xy binary", 20), "a.wav") + part("model", model) +
           part("response_format", "json") + "--XyZ--\r\n";
}

Form parsed(const std::string& body, const std::string& type = kType, const Limits& l = {}) {
    auto f = Form::parse(type, body, l);
    if (auto* e = std::get_if<Error>(&f)) {
        ADD_FAILURE() << e->message;
        return std::get<Form>(Form::parse(kType, sdk_form()));
    }
    return std::get<Form>(std::move(f));
}

std::string error_of(const std::string& body, const std::string& type = kType, const Limits& l = {}) {
    auto f = Form::parse(type, body, l);
    if (auto* e = std::get_if<Error>(&f)) return e->message;
    return "";
}

}  // namespace

TEST(Multipart, ReadsPartsWithoutCopyingValues) {
    const std::string body = sdk_form();
    const Form f = parsed(body);
    ASSERT_EQ(f.parts().size(), 3u);
    const Part* file = f.find("file");
    ASSERT_NE(file, nullptr);
    EXPECT_EQ(file->filename.value_or(""), "a.wav");
    EXPECT_EQ(file->content_type, "audio/wav");
    // A value may hold CRLF and even "--" + a prefix of the boundary: only the full delimiter ends it.
    EXPECT_EQ(f.value(*file), std::string("RIFF\0\x01\r\n--Xy binary", 20));
    EXPECT_EQ(f.value(*f.find("model")), "whisper-1");
    EXPECT_FALSE(f.find("model")->filename);
    EXPECT_EQ(f.find("prompt"), nullptr);
    EXPECT_EQ(f.content_type(), kType);
}

TEST(Multipart, RewritesOneFieldAndKeepsEveryOtherByte) {
    const std::string body = sdk_form("my-group");
    const Form f = parsed(body);
    const std::string out = f.with_field("model", "whisper-large-v3");
    std::string expected = body;
    expected.replace(expected.find("my-group"), 8, "whisper-large-v3");
    EXPECT_EQ(out, expected);
    // The result is itself a valid form with the new value.
    EXPECT_EQ(parsed(out).value(*parsed(out).find("model")), "whisper-large-v3");
}

TEST(Multipart, AddsAMissingFieldBeforeTheCloseDelimiter) {
    const std::string body = part("file", "abc", "a.wav") + "--XyZ--\r\n";
    const Form f = parsed(body);
    const std::string out = f.with_field("model", "m");
    const Form g = parsed(out);
    ASSERT_EQ(g.parts().size(), 2u);
    EXPECT_EQ(g.value(*g.find("file")), "abc");
    EXPECT_EQ(g.value(*g.find("model")), "m");
    EXPECT_EQ(out.substr(out.size() - 9), "--XyZ--\r\n");
}

TEST(Multipart, BoundaryFromTheContentType) {
    EXPECT_EQ(std::get<std::string>(Form::boundary_of("multipart/form-data; boundary=abc")), "abc");
    EXPECT_EQ(std::get<std::string>(Form::boundary_of("Multipart/Form-Data;boundary=\"a b:c\"")), "a b:c");
    EXPECT_EQ(std::get<std::string>(Form::boundary_of("multipart/form-data; charset=utf-8; boundary=x")), "x");
    for (const char* bad : {"application/json", "multipart/form-data", "multipart/form-data; boundary=",
                            "multipart/mixed; boundary=x", "multipart/form-data; boundary=\"unterminated",
                            "multipart/form-data; boundary=a; boundary=b", "multipart/form-data; boundary=a{b}"})
        EXPECT_TRUE(std::holds_alternative<Error>(Form::boundary_of(bad))) << bad;
    EXPECT_TRUE(std::holds_alternative<Error>(Form::boundary_of("multipart/form-data; boundary=" + std::string(71, 'a'))));
}

TEST(Multipart, RefusesMalformedFormsNamingTheProblem) {
    EXPECT_NE(error_of("preamble\r\n" + sdk_form()).find("does not start with its boundary"), std::string::npos);
    EXPECT_NE(error_of(part("file", "abc", "a.wav")).find("no closing boundary"), std::string::npos);
    EXPECT_NE(error_of("--XyZ--\r\n").find("no parts"), std::string::npos);
    EXPECT_NE(error_of("--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--").find("without Content-Disposition"),
              std::string::npos);
    EXPECT_NE(error_of("--XyZ\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n--XyZ--").find("not form-data"),
              std::string::npos);
    EXPECT_NE(error_of("--XyZ\r\nContent-Disposition: form-data\r\n\r\nx\r\n--XyZ--").find("without a name"),
              std::string::npos);
    EXPECT_NE(error_of("--XyZ\r\nContent-Disposition: form-data; name=\"a\"").find("not terminated"),
              std::string::npos);
    EXPECT_NE(error_of("--XyZ junk").find("CRLF"), std::string::npos);
    EXPECT_NE(error_of("--XyZ\r\nno colon here\r\n\r\nx\r\n--XyZ--").find("malformed"), std::string::npos);
    EXPECT_NE(error_of("--XyZ\r\nContent-Disposition: form-data; name=\"a\"; name=\"b\"\r\n\r\nx\r\n--XyZ--")
                  .find("twice"),
              std::string::npos);
    EXPECT_NE(error_of(sdk_form(), "application/json").find("multipart/form-data"), std::string::npos);
}

TEST(Multipart, EnforcesItsLimits) {
    Limits l;
    l.max_parts = 2;
    EXPECT_NE(error_of(sdk_form(), kType, l).find("more than 2 parts"), std::string::npos);
    l = Limits{};
    l.max_part_header_bytes = 32;
    EXPECT_NE(error_of(sdk_form(), kType, l).find("exceed 32 bytes"), std::string::npos);
    l = Limits{};
    l.max_name_bytes = 3;
    EXPECT_NE(error_of(sdk_form(), kType, l).find("longer than 3 bytes"), std::string::npos);
    // A part header block without end, far longer than the limit, is refused as too long.
    EXPECT_NE(error_of("--XyZ\r\nX-A: " + std::string(10000, 'a')).find("exceed"), std::string::npos);
}

TEST(Multipart, QuotedParametersAndEpilogue) {
    const std::string body =
        "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"my \\\"song\\\".mp3\"\r\n\r\n"
        "data\r\n--XyZ--\r\nepilogue is ignored";
    const Form f = parsed(body);
    EXPECT_EQ(f.find("file")->filename.value_or(""), "my \"song\".mp3");
    EXPECT_EQ(f.value(*f.find("file")), "data");
    // A part with no headers at all has no name.
    EXPECT_NE(error_of("--XyZ\r\n\r\nvalue\r\n--XyZ--").find("without"), std::string::npos);
}
