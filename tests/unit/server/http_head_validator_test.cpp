#include "server/frontend/http_head_validator.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

using tailgate::server::frontend::ChunkedBodyValidator;
using tailgate::server::frontend::Framing;
using tailgate::server::frontend::HttpHeadValidator;

namespace {

struct Verdict {
    Framing state;
    size_t used;  // bytes of the input that belong to the head / body
    std::string error;
    bool operator==(const Verdict&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Verdict& v) {
    return os << "{state " << static_cast<int>(v.state) << ", used " << v.used << ", '" << v.error << "'}";
}

// Feeds `in` in pieces cut at `cuts` (ascending offsets) and records the verdict.
template <class V>
Verdict run(V& v, std::string_view in, std::initializer_list<size_t> cuts = {}) {
    v.reset();
    size_t used = 0, at = 0;
    auto feed = [&](size_t end) {
        if (v.state() == Framing::Partial) used += v.feed(in.data() + at, end - at);
        at = end;
    };
    for (size_t c : cuts) feed(c);
    feed(in.size());
    return {v.state(), used, v.error() ? v.error() : ""};
}

template <class V>
Verdict run_split(V& v, std::string_view in, size_t cut) {
    return run(v, in, {cut});
}

template <class V>
Verdict run_bytewise(V& v, std::string_view in) {
    v.reset();
    size_t used = 0;
    for (size_t i = 0; i < in.size() && v.state() == Framing::Partial; ++i) used += v.feed(in.data() + i, 1);
    return {v.state(), used, v.error() ? v.error() : ""};
}

// The verdict on `in`, checked to be the same at every split point and byte by byte.
template <class V>
Verdict verdict(std::string_view in) {
    V v;
    const Verdict whole = run(v, in);
    for (size_t cut = 0; cut <= in.size(); ++cut) EXPECT_EQ(run_split(v, in, cut), whole) << "cut at " << cut;
    EXPECT_EQ(run_bytewise(v, in), whole);
    return whole;
}

Verdict head(std::string_view in) { return verdict<HttpHeadValidator>(in); }
Verdict body(std::string_view in) { return verdict<ChunkedBodyValidator>(in); }

void expect_refused(std::string_view in, std::string_view reason_part) {
    const Verdict v = head(in);
    EXPECT_EQ(v.state, Framing::Invalid) << in;
    EXPECT_NE(v.error.find(reason_part), std::string::npos) << v.error << " for " << in;
}

constexpr std::string_view kLine = "POST /v1/chat/completions HTTP/1.1\r\n";

}  // namespace

TEST(HttpHeadValidator, AcceptsValidHeadsAndStopsAtTheirEnd) {
    const std::string get = "GET /health/liveliness HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
    EXPECT_EQ(head(get), (Verdict{Framing::Complete, get.size(), ""}));
    // Bytes after the head (a body, a pipelined request) are not consumed.
    EXPECT_EQ(head(get + "GET / HTTP/1.1\r\n\r\n"), (Verdict{Framing::Complete, get.size(), ""}));

    const std::string post = std::string(kLine) +
                             "Host: 127.0.0.1:4000\r\ncontent-type:application/json\r\nContent-Length:  42 \t\r\n"
                             "Authorization: Bearer sk-x\r\nX-Empty:\r\nX-Obs-Text: caf\xc3\xa9\r\n"
                             "X-Tab:\ta\tb\t\r\nX-Tchar!#$%&'*+-.^_`|~: v\r\n\r\n";
    HttpHeadValidator v;
    EXPECT_EQ(v.feed(post.data(), post.size()), post.size());
    ASSERT_EQ(v.state(), Framing::Complete);
    EXPECT_TRUE(v.has_content_length());
    EXPECT_EQ(v.content_length(), 42u);
    EXPECT_FALSE(v.chunked());
    EXPECT_EQ(v.feed("x", 1), 0u);  // nothing more is taken once complete

    v.reset();
    const std::string chunked = std::string(kLine) + "Transfer-Encoding:  ChUnKeD \r\n\r\n";
    EXPECT_EQ(v.feed(chunked.data(), chunked.size()), chunked.size());
    EXPECT_EQ(v.state(), Framing::Complete);
    EXPECT_TRUE(v.chunked());
    EXPECT_FALSE(v.has_content_length());

    // Other versions pass here (the front end answers 505); the syntax is checked.
    EXPECT_EQ(head("GET / HTTP/9.9\r\n\r\n").state, Framing::Complete);
    EXPECT_EQ(head("OPTIONS * HTTP/1.1\r\n\r\n").state, Framing::Complete);
    EXPECT_EQ(head("GET http://a.example/x?q=1&r=%20 HTTP/1.1\r\n\r\n").state, Framing::Complete);
    EXPECT_EQ(head("GET / HTTP/1.1\r\nContent-Length: 000\r\n\r\n").state, Framing::Complete);
}

TEST(HttpHeadValidator, PartialUntilTheEmptyLine) {
    EXPECT_EQ(head("GET / HTTP/1.1\r\nHost: x\r\n").state, Framing::Partial);
    EXPECT_EQ(head("GET / HTTP/1.1\r\nHost: x\r\n\r").state, Framing::Partial);
    EXPECT_EQ(head("").state, Framing::Partial);
}

TEST(HttpHeadValidator, RefusesPocosLenientCases) {
    const std::string l(kLine);
    expect_refused(l + "Content-Length : 5\r\n\r\n", "whitespace between a header field name and its colon");
    expect_refused(l + "Transfer-Encoding\t: chunked\r\n\r\n", "whitespace between");
    expect_refused(l + "Host: x\r\nno colon here\r\n\r\n", "whitespace inside a header field name");
    expect_refused(l + "Host: x\r\nnocolon \r\n\r\n", "header line without a colon");
    expect_refused(l + "Host: x\r\nnocolon\r\n\r\n", "header line without a colon");
    expect_refused("GET / HTTP/1.1\nHost: x\r\n\r\n", "bare LF");
    expect_refused(l + "Host: x\n\r\n", "bare LF");
    expect_refused(l + "Host: x\r\n\n", "bare LF");
    // Poco 1.11 reads a leading empty line as the end of an empty head.
    expect_refused("\nGET / HTTP/1.1\r\n\r\n", "empty line before the request line");
    expect_refused("\r\nGET / HTTP/1.1\r\n\r\n", "empty line before the request line");
    expect_refused(l + "Host: x\ry\r\n\r\n", "bare CR");
    expect_refused(l + "Host: x\r\r\n\r\n", "bare CR");
    expect_refused(l + "Host: x\r\n\rX\r\n", "bare CR");
    expect_refused("GET / HTTP/1.1\rHost: x\r\n\r\n", "bare CR");
    expect_refused(l + "X-A: a\r\n b\r\n\r\n", "obsolete line folding");
    expect_refused(l + "X-A: a\r\n\tb\r\n\r\n", "obsolete line folding");
    expect_refused(l + " Host: x\r\n\r\n", "obsolete line folding");
    expect_refused(l + ": x\r\n\r\n", "empty header field name");
    expect_refused(l + "X(y): x\r\n\r\n", "invalid character in a header field name");
    expect_refused(l + "X\x80: x\r\n\r\n", "invalid character in a header field name");
    expect_refused(l + "X: a\x01" "b\r\n\r\n", "control character in a header field value");
    expect_refused(l + "X: a\x7f\r\n\r\n", "control character in a header field value");
    expect_refused(l + std::string("X: a\0b\r\n\r\n", 12), "control character in a header field value");
    expect_refused(l + "Transfer-Encoding: =?utf-8?q?chunked?=\r\n\r\n", "encoded-word");
    expect_refused(l + "X: a=?b\r\n\r\n", "encoded-word");
}

TEST(HttpHeadValidator, RefusesBadRequestLines) {
    for (const char* bad : {"GET  / HTTP/1.1\r\n\r\n", "GET /  HTTP/1.1\r\n\r\n", "GET / HTTP/1.1 \r\n\r\n",
                            " GET / HTTP/1.1\r\n\r\n", "GET\t/ HTTP/1.1\r\n\r\n", "GET /\tx HTTP/1.1\r\n\r\n",
                            "GET /\x01 HTTP/1.1\r\n\r\n", "GET /\xc3\xa9 HTTP/1.1\r\n\r\n", "GET / http/1.1\r\n\r\n",
                            "GET / HTTP/1.11\r\n\r\n", "GET / HTTP/11\r\n\r\n", "GET / HTTP/1.x\r\n\r\n",
                            "GET /\r\n\r\n", "GET\r\n\r\n", "BLAH\r\n\r\n", "G(T / HTTP/1.1\r\n\r\n",
                            "GET  HTTP/1.1\r\n\r\n"}) {
        const Verdict v = head(bad);
        EXPECT_EQ(v.state, Framing::Invalid) << bad;
        EXPECT_FALSE(v.error.empty());
    }
}

TEST(HttpHeadValidator, RefusesAmbiguousBodyFraming) {
    const std::string l(kLine);
    for (const char* cl : {"1,0", "+5", "-1", " 5 5", "5 5", "0x10", "abc", "", "   ", "5;", "1.0"})
        expect_refused(l + "Content-Length: " + cl + "\r\n\r\n", "invalid Content-Length");
    expect_refused(l + "Content-Length: 99999999999999999999\r\n\r\n", "Content-Length too large");
    expect_refused(l + "Content-Length: 9223372036854775808\r\n\r\n", "Content-Length too large");
    EXPECT_EQ(head(l + "Content-Length: 9223372036854775807\r\n\r\n").state, Framing::Complete);
    EXPECT_EQ(head(l + "Content-Length: " + std::string(300, '0') + "7\r\n\r\n").state, Framing::Complete);
    expect_refused(l + "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", "more than one Content-Length");
    expect_refused(l + "Content-Length: 5\r\ncontent-length: 7\r\n\r\n", "more than one Content-Length");
    expect_refused(l + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                   "more than one Transfer-Encoding");
    expect_refused(l + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", "both Transfer-Encoding and");
    expect_refused(l + "Content-Length: 5\r\nTRANSFER-ENCODING: chunked\r\n\r\n", "both Transfer-Encoding and");
    expect_refused("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.0");

    // Codings other than chunked: refused as unsupported (the front end answers 501).
    for (const char* te : {"gzip", "chunked, chunked", "gzip, chunked", "chunkedx", "chunke", "chun ked", "", "identity"}) {
        HttpHeadValidator v;
        const std::string in = l + "Transfer-Encoding: " + te + "\r\n\r\n";
        v.feed(in.data(), in.size());
        EXPECT_EQ(v.state(), Framing::Invalid) << te;
        EXPECT_TRUE(v.unsupported_coding()) << te;
        EXPECT_EQ(head(in).state, Framing::Invalid);
    }
    // Names that only start like the framing fields are ordinary fields.
    const Verdict v = head(l + "Content-Lengthy: 1,0\r\nTransfer-Encodings: gzip\r\nContent-Lengt: x\r\n\r\n");
    EXPECT_EQ(v.state, Framing::Complete) << v.error;
}

TEST(HttpHeadValidator, ErrorsStopTheFeedAtTheOffendingByte) {
    HttpHeadValidator v;
    const std::string in = "GET / HTTP/1.1\nHost: x\r\n\r\n";
    EXPECT_EQ(v.feed(in.data(), in.size()), 15u);  // through the bare LF
    EXPECT_EQ(v.state(), Framing::Invalid);
    EXPECT_EQ(v.feed("GET", 3), 0u);
    v.reset();
    EXPECT_EQ(v.state(), Framing::Partial);
    EXPECT_EQ(v.error(), nullptr);
}

TEST(ChunkedBodyValidator, AcceptsValidBodies) {
    const std::string b = "5\r\nhello\r\n1a;name=value;x\r\n" + std::string(26, 'z') +
                          "\r\nA \t;ext\r\n0123456789\r\n0\r\n\r\n";
    EXPECT_EQ(body(b), (Verdict{Framing::Complete, b.size(), ""}));
    // Data bytes are opaque, CR and LF included; what follows the body is not consumed.
    const std::string crlf = "4\r\n\r\n\r\n\r\n00000000\r\n\r\n";
    EXPECT_EQ(body(crlf + "GET / HTTP/1.1\r\n\r\n"), (Verdict{Framing::Complete, crlf.size(), ""}));
    const std::string trailers = "3\r\nabc\r\n0\r\nX-Checksum: 1\r\nX-Other: two words\r\n\r\n";
    EXPECT_EQ(body(trailers), (Verdict{Framing::Complete, trailers.size(), ""}));
    EXPECT_EQ(body("FFFFFFFF\r\nabc").state, Framing::Partial);
    EXPECT_EQ(body("3\r\nabc\r\n0\r\n").state, Framing::Partial);
}

TEST(ChunkedBodyValidator, RefusesBrokenFraming) {
    auto refused = [](std::string_view in, std::string_view reason_part) {
        const Verdict v = body(in);
        EXPECT_EQ(v.state, Framing::Invalid) << in;
        EXPECT_NE(v.error.find(reason_part), std::string::npos) << v.error << " for " << in;
    };
    refused("100000000\r\n", "longer than 8 hex digits");
    refused("000000001\r\nx\r\n0\r\n\r\n", "longer than 8 hex digits");
    refused("5\r\nhello\r\n00000002a\r\n", "longer than 8 hex digits");
    refused(" 5\r\nhello\r\n0\r\n\r\n", "invalid chunk size");
    refused("\r\n5\r\nhello\r\n0\r\n\r\n", "invalid chunk size");
    refused("+5\r\nhello\r\n0\r\n\r\n", "invalid chunk size");
    refused("5x\r\nhello\r\n0\r\n\r\n", "invalid chunk size");
    refused("5 \r\nhello\r\n0\r\n\r\n", "invalid chunk extension");
    refused("5;a\x01\r\nhello\r\n0\r\n\r\n", "invalid chunk extension");
    refused("5\nhello\r\n0\r\n\r\n", "bare LF");
    refused("5;x\nhello\r\n0\r\n\r\n", "bare LF");
    refused("5\rhello\r\n0\r\n\r\n", "bare CR");
    refused("5\r\nhello0\r\n\r\n", "chunk data not followed by CRLF");
    refused("5\r\nhello\n0\r\n\r\n", "chunk data not followed by CRLF");
    refused("5\r\nhello\r\n0\r\nX : y\r\n\r\n", "whitespace between");
    refused("5\r\nhello\r\n0\r\nX: y\r\n z\r\n\r\n", "obsolete line folding");
    refused("5\r\nhello\r\n0\r\nnocolon\r\n\r\n", "without a colon");
    refused("5\r\nhello\r\n0\r\n\n", "bare LF");
    refused("0\r\n\r\r", "bare CR");
}
