// AWS SigV4 against AWS's published test vectors (the sig-v4 test suite's
// get-vanilla, post-vanilla and get-vanilla-query-order-key-case, and the IAM
// ListUsers example of the signing documentation), and Bedrock's double-encoded path.
#include "providers/bedrock/sigv4.hpp"

#include <gtest/gtest.h>

using namespace tailgate::providers::bedrock;

namespace {

const AwsKeys kKeys{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
constexpr const char* kEmptySha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

SigV4Request suite(const char* method, const char* query = "") {
    return SigV4Request{method, "/", query, {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}},
                        kEmptySha, "20150830T123600Z", "us-east-1", "service"};
}

}  // namespace

TEST(SigV4, GetVanilla) {
    const SigV4Request r = suite("GET");
    const std::string creq = canonical_request(r);
    EXPECT_EQ(creq, std::string("GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n") +
                        kEmptySha);
    EXPECT_EQ(string_to_sign(r, creq),
              "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
              "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
    EXPECT_EQ(authorization(kKeys, r),
              "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
              "SignedHeaders=host;x-amz-date, "
              "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

TEST(SigV4, PostVanillaAndQueryOrder) {
    EXPECT_NE(authorization(kKeys, suite("POST")).find(
                  "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
              std::string::npos);
    const std::string q = canonical_query("Param2=value2&Param1=value1");
    EXPECT_EQ(q, "Param1=value1&Param2=value2");
    EXPECT_NE(authorization(kKeys, suite("GET", q.c_str()))
                  .find("Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
              std::string::npos);
}

TEST(SigV4, IamListUsersExample) {
    // The worked example of AWS's signing documentation (a content-type with
    // a parameter, a query, service iam).
    const std::string query = canonical_query("Action=ListUsers&Version=2010-05-08");
    const SigV4Request r{"GET",
                         "/",
                         query,
                         {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
                          {"Host", "iam.amazonaws.com"},
                          {"X-Amz-Date", "20150830T123600Z"}},
                         kEmptySha,
                         "20150830T123600Z",
                         "us-east-1",
                         "iam"};
    EXPECT_EQ(string_to_sign(r, canonical_request(r)),
              "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\n"
              "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59");
    EXPECT_EQ(authorization(kKeys, r),
              "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
              "SignedHeaders=content-type;host;x-amz-date, "
              "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
}

TEST(SigV4, HeaderValuesAreTrimmedAndFolded) {
    SigV4Request a = suite("GET"), b = suite("GET");
    a.headers.emplace_back("My-Header1", "value1");
    b.headers.emplace_back("my-header1", "  value1  ");
    EXPECT_EQ(authorization(kKeys, a), authorization(kKeys, b));
    SigV4Request c = suite("GET");
    c.headers.emplace_back("My-Header1", "a   b");
    EXPECT_NE(canonical_request(c).find("my-header1:a b\n"), std::string::npos);
}

TEST(SigV4, BedrockPathsAreSignedDoubleEncoded) {
    // The path goes out with the model id encoded once; AWS signs it encoded again.
    const std::string path = "/model/" + uri_encode("anthropic.claude-3-haiku-20240307-v1:0", true) + "/converse";
    EXPECT_EQ(path, "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse");
    EXPECT_EQ(canonical_uri(path), "/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse");
    EXPECT_EQ(uri_encode("arn:aws:bedrock:us-east-1:1:inference-profile/x y~", true),
              "arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fx%20y~");
    EXPECT_EQ(canonical_uri(""), "/");
}

TEST(SigV4, AmzDate) {
    // 2015-08-30T12:36:00Z
    EXPECT_EQ(amz_date(std::chrono::system_clock::from_time_t(1440938160)), "20150830T123600Z");
}
