// Strict (RFC 9112) checks of a request's framing, on the raw bytes, before
// Poco parses them.
//
// Poco 1.11 reads heads leniently: bare LF ends lines, obs-fold is unfolded,
// "Name :" keeps the space in the name, lines without a colon are skipped,
// "Content-Length: 1,0" reads as 10, only the first Transfer-Encoding counts,
// RFC 2047 encoded-words in values are decoded, and a chunk size of more than
// 8 hex digits ends the body early. Any of these lets a front proxy and the
// gateway disagree on where a request ends. So every byte Poco reads as a head
// or a chunked body is first fed here, and the request is refused unless its
// framing has exactly one reading.
//
// Both validators are streaming byte machines: fed ranges as they arrive, no
// allocation, and the same verdict however the input is split. Reasons are
// fixed strings (never client data).
#pragma once

#include <cstddef>
#include <cstdint>

namespace tailgate::server::frontend {

enum class Framing : uint8_t { Partial, Complete, Invalid };

namespace detail {

// Header or trailer field lines up to and including the empty line that ends
// them. Knows Content-Length and Transfer-Encoding values' syntax.
class FieldLines {
public:
    enum class Kind : uint8_t { Other, ContentLength, TransferEncoding };
    enum class Step : uint8_t { More, FieldEnd, SectionEnd, Error };

    // framing_fields: recognise Content-Length and Transfer-Encoding (in a
    // head; trailer fields are only checked for syntax: nothing uses them).
    explicit FieldLines(bool framing_fields = true) : framing_fields_(framing_fields) {}
    void reset() { *this = FieldLines{framing_fields_}; }
    Step step(unsigned char c);

    // After FieldEnd: which field ended and, for the framing fields, its value.
    Kind kind() const { return kind_; }
    uint64_t content_length() const { return number_; }
    bool te_is_chunked() const { return te_len_ == 7 && te_ok_; }
    const char* error() const { return error_; }

private:
    enum class S : uint8_t { LineStart, Name, NameWS, Value, ValueLF, EndLF };
    Step fail(const char* why) {
        error_ = why;
        return Step::Error;
    }
    Step value_byte(unsigned char c);

    bool framing_fields_;
    S s_ = S::LineStart;
    Kind kind_ = Kind::Other;
    uint8_t name_len_ = 0;        // saturates: only used to recognise the two names
    bool maybe_cl_ = true, maybe_te_ = true;
    uint8_t token_ = 0;           // framing values: 0 before, 1 in, 2 after the token
    bool prev_eq_ = false;        // for "=?" (Poco decodes RFC 2047 encoded-words)
    uint64_t number_ = 0;
    uint8_t te_len_ = 0;
    bool te_ok_ = true;
    const char* error_ = nullptr;
};

}  // namespace detail

// request-line CRLF *( field-line CRLF ) CRLF.
class HttpHeadValidator {
public:
    void reset() { *this = HttpHeadValidator{}; }
    // Feeds the next bytes of the connection; returns how many of them belong
    // to the head (all of them while Partial; none are consumed after the end).
    size_t feed(const char* data, size_t n);

    Framing state() const { return state_; }
    const char* error() const { return error_; }  // when Invalid
    // Invalid because of a transfer coding other than chunked (answered 501).
    bool unsupported_coding() const { return unsupported_; }
    // When Complete: how the body is delimited.
    bool chunked() const { return te_count_ > 0; }
    bool has_content_length() const { return cl_count_ > 0; }
    uint64_t content_length() const { return content_length_; }

private:
    enum class S : uint8_t { Start, Method, TargetFirst, Target, Version, LineLF, Fields };
    void fail(const char* why) {
        state_ = Framing::Invalid;
        error_ = why;
    }
    void field_end();

    S s_ = S::Start;
    Framing state_ = Framing::Partial;
    uint8_t version_at_ = 0;  // bytes of "HTTP/x.y" matched
    bool http10_ = false;
    bool unsupported_ = false;
    uint8_t cl_count_ = 0, te_count_ = 0;
    uint64_t content_length_ = 0;
    const char* error_ = nullptr;
    detail::FieldLines fields_;
};

// A chunked body: chunk-size [ext] CRLF data CRLF ... 0 CRLF trailers CRLF.
// Chunk sizes have 1 to 8 hex digits (the body limit is far below 4 GiB, and
// Poco stops reading a size after 8 digits).
class ChunkedBodyValidator {
public:
    void reset() { *this = ChunkedBodyValidator{}; }
    // Feeds the next body bytes; returns how many belong to the body.
    size_t feed(const char* data, size_t n);

    Framing state() const { return state_; }
    const char* error() const { return error_; }

private:
    enum class S : uint8_t { SizeStart, Size, ExtBWS, Ext, SizeLF, Data, DataCR, DataLF, Trailer };
    void fail(const char* why) {
        state_ = Framing::Invalid;
        error_ = why;
    }

    S s_ = S::SizeStart;
    Framing state_ = Framing::Partial;
    uint8_t digits_ = 0;
    uint64_t left_ = 0;  // chunk data bytes still due
    const char* error_ = nullptr;
    detail::FieldLines trailer_{false};
};

}  // namespace tailgate::server::frontend
