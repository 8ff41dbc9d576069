// The one JSON escaper (common/api_error.hpp) behind error bodies, the JSON
// log and the stats page: its output is valid JSON for any input bytes.
#include "common/api_error.hpp"
#include "common/utf8.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <string>

using namespace tailgate;

namespace {

std::string escaped(std::string_view s) {
    std::string out;
    json_escape_into(out, s);
    return out;
}

}  // namespace

TEST(JsonEscape, QuotesBackslashesAndControls) {
    EXPECT_EQ(escaped("a\"b\\c"), "a\\\"b\\\\c");
    EXPECT_EQ(escaped("\n\r\t"), "\\n\\r\\t");
    EXPECT_EQ(escaped(std::string("\x01\b\f\x1f\x7f", 5)), "\\u0001\\u0008\\u000c\\u001f\\u007f");
}

TEST(JsonEscape, ValidUtf8PassesAndInvalidBecomesReplacement) {
    EXPECT_EQ(escaped("\xe2\x82\xac \xf0\x9f\x98\x80"), "\xe2\x82\xac \xf0\x9f\x98\x80");
    EXPECT_EQ(escaped("a\xff" "b"), "a\\ufffdb");
    EXPECT_EQ(escaped("\xed\xa0\x80"), "\\ufffd\\ufffd\\ufffd") << "a surrogate is not UTF-8";
    EXPECT_EQ(escaped("\xe2\x82"), "\\ufffd\\ufffd") << "cut short";
}

TEST(JsonEscape, ErrorBodyIsValidJsonForAnyMessage) {
    std::string message = "Unknown path /";
    for (int c = 0; c < 256; ++c) message += static_cast<char>(c);
    const std::string body = ApiError::not_found(message, "unknown_url").body();
    rapidjson::Document d;
    d.Parse<rapidjson::kParseValidateEncodingFlag>(body.data(), body.size());
    ASSERT_FALSE(d.HasParseError()) << body;
    EXPECT_STREQ(d["error"]["code"].GetString(), "unknown_url");
}

TEST(Utf8, SequenceLengths) {
    EXPECT_EQ(utf8_sequence_length("a", 0), 1u);
    EXPECT_EQ(utf8_sequence_length("\xc3\xa9", 0), 2u);
    EXPECT_EQ(utf8_sequence_length("\xe2\x82\xac", 0), 3u);
    EXPECT_EQ(utf8_sequence_length("\xf0\x9f\x98\x80", 0), 4u);
    EXPECT_EQ(utf8_sequence_length("\xc0\xaf", 0), 0u) << "overlong";
    EXPECT_EQ(utf8_sequence_length("\xf4\x90\x80\x80", 0), 0u) << "beyond U+10FFFF";
}
