// What strategies see of a request body (tg_request 1.1 members).
#include "server/request_body.hpp"
#include "server/strategy_fields.hpp"

#include <gtest/gtest.h>

using namespace tailgate;

namespace {

router::RequestInfo fields_of(const std::string& body) {
    auto parsed = server::parse_body(body, Endpoint::Chat);
    EXPECT_TRUE(std::holds_alternative<server::ParsedBody>(parsed)) << body;
    router::RequestInfo info;
    server::fill_strategy_fields(std::get<server::ParsedBody>(parsed), info);
    return info;
}

}  // namespace

TEST(StrategyFields, ReadsUserTokensToolsAndResponseFormat) {
    auto info = fields_of(R"({"model":"m","messages":[{"role":"user","content":"0123456789abcdef"}],)"
                          R"("user" : "al\"ice","max_tokens":100,"max_completion_tokens":50,)"
                          R"("tools":[{"type":"function"}],"response_format":{"type":"json_object"}})");
    ASSERT_TRUE(info.user);
    EXPECT_EQ(*info.user, "al\"ice");
    EXPECT_EQ(info.max_tokens, 50) << "max_completion_tokens wins over max_tokens";
    EXPECT_TRUE(info.has_tools);
    EXPECT_TRUE(info.has_response_format);
    EXPECT_GT(info.prompt_tokens_estimate, 4);
    EXPECT_LT(info.prompt_tokens_estimate, 40);
}

TEST(StrategyFields, AbsentNullOrMistypedFieldsReadAsAbsent) {
    auto info = fields_of(R"({"model":"m","messages":[],"user":42,"max_tokens":"many","tools":null,)"
                          R"("response_format":null})");
    EXPECT_FALSE(info.user);
    EXPECT_EQ(info.max_tokens, -1);
    EXPECT_FALSE(info.has_tools);
    EXPECT_FALSE(info.has_response_format);
    auto bare = fields_of(R"({"model":"m","messages":[]})");
    EXPECT_FALSE(bare.user);
    EXPECT_EQ(bare.max_tokens, -1);
    EXPECT_EQ(fields_of(R"({"model":"m","messages":[],"max_tokens":7})").max_tokens, 7);
}

TEST(StrategyFields, KeyHashIsAStablePrefixNeverTheKey) {
    const std::string h = tailgate::key_hash_prefix("sk-secret-key");
    EXPECT_EQ(h.size(), 16u);
    EXPECT_EQ(h, tailgate::key_hash_prefix("sk-secret-key"));
    EXPECT_NE(h, tailgate::key_hash_prefix("sk-secret-kez"));
    EXPECT_EQ(h.find("secret"), std::string::npos);
    // SHA-256("abc") starts with ba7816bf8f01cfea.
    EXPECT_EQ(tailgate::key_hash_prefix("abc"), "ba7816bf8f01cfea");
    EXPECT_EQ(tailgate::key_hash_prefix(""), "");
}

TEST(StrategyFields, ResponsesApiFields) {
    auto parsed = server::parse_body(R"({"model":"m","input":"0123456789abcdef0123","user":"bob",)"
                                     R"("max_output_tokens":30,"tools":[{"type":"web_search"}],)"
                                     R"("text":{"format":{"type":"json_schema","name":"A","schema":{}}}})",
                                     Endpoint::Responses);
    ASSERT_TRUE(std::holds_alternative<server::ParsedBody>(parsed));
    router::RequestInfo info;
    server::fill_strategy_fields(std::get<server::ParsedBody>(parsed), info);
    ASSERT_TRUE(info.user);
    EXPECT_EQ(*info.user, "bob");
    EXPECT_EQ(info.max_tokens, 30);
    EXPECT_TRUE(info.has_tools);
    EXPECT_TRUE(info.has_response_format);
    EXPECT_GT(info.prompt_tokens_estimate, 4);
    auto plain = server::parse_body(R"({"model":"m","input":"x","text":{"format":{"type":"text"}}})", Endpoint::Responses);
    router::RequestInfo plain_info;
    server::fill_strategy_fields(std::get<server::ParsedBody>(plain), plain_info);
    EXPECT_FALSE(plain_info.has_response_format);
}
