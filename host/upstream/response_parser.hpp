// How the upstream client configures Beast's response parser; shared with the
// upstream-response fuzz target (tests/fuzz) so it parses exactly like client.cpp.
#pragma once

#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>

namespace tailgate::upstream {

constexpr size_t kScratchSize = 64 * 1024;      // body bytes per on_body at most
constexpr uint32_t kHeaderLimit = 64 * 1024;    // response head size limit

// The executor enforces the response size limit. Not boost::none: Beast 1.74 compares
// Content-Length against the empty optional and fails every response whose head
// arrives without body bytes with "body limit exceeded".
constexpr uint64_t kNoBodyLimit = UINT64_MAX;

using ResponseParser = boost::beast::http::response_parser<boost::beast::http::buffer_body>;

// A fresh parser for the next response head (also after an interim 1xx). Bodies are
// unlimited here (streams run long), body bytes are handed out as soon as they are parsed.
inline void reset_response_parser(std::optional<ResponseParser>& p, bool head_request) {
    p.emplace();
    p->header_limit(kHeaderLimit);
    p->body_limit(kNoBodyLimit);
    p->eager(true);
    if (head_request) p->skip(true);
}

}  // namespace tailgate::upstream
