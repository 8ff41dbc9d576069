#include "server/frontend/http_head_validator.hpp"

#include <array>
#include <limits>
#include <string_view>

namespace tailgate::server::frontend {

namespace {

// RFC 9110 tchar: the characters of a token (methods, field names).
constexpr std::array<bool, 256> make_tchar() {
    std::array<bool, 256> t{};
    for (int c = '0'; c <= '9'; ++c) t[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
    return t;
}
constexpr std::array<bool, 256> kTchar = make_tchar();

constexpr bool is_tchar(unsigned char c) { return kTchar[c]; }
constexpr bool is_ows(unsigned char c) { return c == ' ' || c == '\t'; }
constexpr bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
constexpr bool is_hex(unsigned char c) { return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }
constexpr bool is_vchar(unsigned char c) { return c > 0x20 && c < 0x7f; }
// Field values and chunk extensions: HTAB, SP, VCHAR and obs-text; no other control.
constexpr bool is_field_byte(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }
constexpr unsigned char lower(unsigned char c) { return c >= 'A' && c <= 'Z' ? c | 0x20 : c; }

constexpr std::string_view kContentLength = "content-length";
constexpr std::string_view kTransferEncoding = "transfer-encoding";
constexpr std::string_view kChunked = "chunked";
constexpr std::string_view kVersion = "HTTP/x.y";

constexpr const char* kBareLF = "bare LF (lines must end with CRLF)";
constexpr const char* kBareCR = "bare CR (lines must end with CRLF)";

}  // namespace

namespace detail {

FieldLines::Step FieldLines::value_byte(unsigned char c) {
    if (!is_field_byte(c)) return fail(c == '\n' ? kBareLF : "control character in a header field value");
    // Poco 1.11 rewrites "=?...?=" (and drops a lone "=?"): what it would see
    // is not what was sent, so such a value has no single reading.
    if (prev_eq_ && c == '?') return fail("encoded-word (=?) in a header field value");
    prev_eq_ = c == '=';
    if (kind_ == Kind::Other) return Step::More;
    if (is_ows(c)) {  // OWS around the token only
        if (token_ == 1) token_ = 2;
        return Step::More;
    }
    if (token_ == 2) {
        if (kind_ == Kind::ContentLength) return fail("invalid Content-Length (digits only)");
        te_ok_ = false;
        return Step::More;
    }
    token_ = 1;
    if (kind_ == Kind::ContentLength) {
        if (!is_digit(c)) return fail("invalid Content-Length (digits only)");
        const uint64_t d = c - '0';
        if (number_ > (static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) - d) / 10)
            return fail("Content-Length too large");
        number_ = number_ * 10 + d;
    } else if (te_len_ < kChunked.size() && lower(c) == static_cast<unsigned char>(kChunked[te_len_])) {
        ++te_len_;
    } else {
        te_ok_ = false;
    }
    return Step::More;
}

FieldLines::Step FieldLines::step(unsigned char c) {
    switch (s_) {
        case S::LineStart:
            if (c == '\r') {
                s_ = S::EndLF;
                return Step::More;
            }
            if (c == '\n') return fail(kBareLF);
            if (is_ows(c)) return fail("obsolete line folding (a line starting with whitespace)");
            if (c == ':') return fail("empty header field name");
            if (!is_tchar(c)) return fail("invalid character in a header field name");
            kind_ = Kind::Other;
            name_len_ = 0;
            maybe_cl_ = maybe_te_ = true;
            token_ = 0;
            prev_eq_ = false;
            number_ = 0;
            te_len_ = 0;
            te_ok_ = true;
            s_ = S::Name;
            [[fallthrough]];
        case S::Name:
            if (is_tchar(c)) {
                const unsigned char l = lower(c);
                maybe_cl_ = maybe_cl_ && name_len_ < kContentLength.size() && l == kContentLength[name_len_];
                maybe_te_ = maybe_te_ && name_len_ < kTransferEncoding.size() && l == kTransferEncoding[name_len_];
                if (name_len_ < UINT8_MAX) ++name_len_;
                return Step::More;
            }
            if (c == ':') {
                if (framing_fields_ && maybe_cl_ && name_len_ == kContentLength.size()) kind_ = Kind::ContentLength;
                if (framing_fields_ && maybe_te_ && name_len_ == kTransferEncoding.size())
                    kind_ = Kind::TransferEncoding;
                s_ = S::Value;
                return Step::More;
            }
            if (is_ows(c)) {  // which error depends on what follows
                s_ = S::NameWS;
                return Step::More;
            }
            if (c == '\r') return fail("header line without a colon");
            if (c == '\n') return fail(kBareLF);
            return fail("invalid character in a header field name");
        case S::NameWS:
            if (is_ows(c)) return Step::More;
            if (c == ':') return fail("whitespace between a header field name and its colon");
            if (c == '\r') return fail("header line without a colon");
            if (c == '\n') return fail(kBareLF);
            return fail("whitespace inside a header field name");
        case S::Value:
            if (c == '\r') {
                if (kind_ == Kind::ContentLength && token_ == 0) return fail("invalid Content-Length (digits only)");
                s_ = S::ValueLF;
                return Step::More;
            }
            return value_byte(c);
        case S::ValueLF:
            if (c != '\n') return fail(kBareCR);
            s_ = S::LineStart;
            return Step::FieldEnd;
        case S::EndLF:
            if (c != '\n') return fail(kBareCR);
            s_ = S::LineStart;  // fed no further
            return Step::SectionEnd;
    }
    return fail("internal error");
}

}  // namespace detail

void HttpHeadValidator::field_end() {
    using Kind = detail::FieldLines::Kind;
    if (fields_.kind() == Kind::ContentLength) {
        if (++cl_count_ > 1) return fail("more than one Content-Length header");
        content_length_ = fields_.content_length();
    } else if (fields_.kind() == Kind::TransferEncoding) {
        if (++te_count_ > 1) return fail("more than one Transfer-Encoding header");
        if (!fields_.te_is_chunked()) {
            unsupported_ = true;
            return fail("Transfer-Encoding other than chunked is not supported");
        }
        // RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
        if (http10_) return fail("Transfer-Encoding in an HTTP/1.0 request");
    } else {
        return;
    }
    if (cl_count_ && te_count_) fail("both Transfer-Encoding and Content-Length are set");
}

size_t HttpHeadValidator::feed(const char* data, size_t n) {
    if (state_ != Framing::Partial) return 0;
    for (size_t i = 0; i < n; ++i) {
        const auto c = static_cast<unsigned char>(data[i]);
        switch (s_) {
            case S::Start:
                // RFC 9112 2.2 lets a server skip empty lines here, but Poco 1.11
                // takes one for the end of an empty head: refuse them plainly.
                if (c == '\r' || c == '\n') return fail("empty line before the request line"), i + 1;
                if (!is_tchar(c)) return fail("invalid request method"), i + 1;
                s_ = S::Method;
                break;
            case S::Method:
                if (c == ' ') s_ = S::TargetFirst;
                else if (c == '\n') return fail(kBareLF), i + 1;
                else if (!is_tchar(c)) return fail("malformed request line (method SP target SP HTTP/x.y)"), i + 1;
                break;
            case S::TargetFirst:
            case S::Target:
                if (is_vchar(c)) s_ = S::Target;
                else if (c == ' ' && s_ == S::Target) s_ = S::Version;
                else if (c == '\n') return fail(kBareLF), i + 1;
                else return fail("malformed request line (method SP target SP HTTP/x.y)"), i + 1;
                break;
            case S::Version: {
                const char want = version_at_ < kVersion.size() ? kVersion[version_at_] : '\r';
                const bool ok = want == 'x' || want == 'y' ? is_digit(c) : c == static_cast<unsigned char>(want);
                if (!ok) return fail(c == '\n' ? kBareLF : "invalid HTTP version (HTTP/x.y)"), i + 1;
                if (want == 'x') http10_ = c == '1';
                if (want == 'y') http10_ = http10_ && c == '0';
                if (want == '\r') s_ = S::LineLF;
                else ++version_at_;
                break;
            }
            case S::LineLF:
                if (c != '\n') return fail(kBareCR), i + 1;
                s_ = S::Fields;
                break;
            case S::Fields:
                switch (fields_.step(c)) {
                    case detail::FieldLines::Step::More: break;
                    case detail::FieldLines::Step::FieldEnd:
                        field_end();
                        if (state_ == Framing::Invalid) return i + 1;
                        break;
                    case detail::FieldLines::Step::SectionEnd: state_ = Framing::Complete; return i + 1;
                    case detail::FieldLines::Step::Error: return fail(fields_.error()), i + 1;
                }
                break;
        }
    }
    return n;
}

size_t ChunkedBodyValidator::feed(const char* data, size_t n) {
    if (state_ != Framing::Partial) return 0;
    for (size_t i = 0; i < n; ++i) {
        if (s_ == S::Data) {  // the data itself is opaque: skip it in one step
            const size_t take = left_ < n - i ? static_cast<size_t>(left_) : n - i;
            left_ -= take;
            i += take;
            if (left_ == 0) s_ = S::DataCR;
            if (i == n) break;
        }
        const auto c = static_cast<unsigned char>(data[i]);
        switch (s_) {
            case S::SizeStart:
                if (!is_hex(c)) return fail(c == '\n' ? kBareLF : "invalid chunk size"), i + 1;
                s_ = S::Size;
                digits_ = 0;
                left_ = 0;
                [[fallthrough]];
            case S::Size:
                if (is_hex(c)) {
                    if (++digits_ > 8) return fail("chunk size longer than 8 hex digits"), i + 1;
                    left_ = left_ * 16 + static_cast<uint64_t>(is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
                } else if (c == ';') {
                    s_ = S::Ext;
                } else if (is_ows(c)) {
                    s_ = S::ExtBWS;
                } else if (c == '\r') {
                    s_ = S::SizeLF;
                } else {
                    return fail(c == '\n' ? kBareLF : "invalid chunk size"), i + 1;
                }
                break;
            case S::ExtBWS:  // whitespace after the size only before an extension
                if (c == ';') s_ = S::Ext;
                else if (!is_ows(c)) return fail("invalid chunk extension"), i + 1;
                break;
            case S::Ext:
                if (c == '\r') s_ = S::SizeLF;
                else if (!is_field_byte(c)) return fail(c == '\n' ? kBareLF : "invalid chunk extension"), i + 1;
                break;
            case S::SizeLF:
                if (c != '\n') return fail(kBareCR), i + 1;
                s_ = left_ ? S::Data : S::Trailer;
                break;
            case S::Data: break;  // handled above (left_ > 0 on entry)
            case S::DataCR:
                if (c != '\r') return fail("chunk data not followed by CRLF"), i + 1;
                s_ = S::DataLF;
                break;
            case S::DataLF:
                if (c != '\n') return fail("chunk data not followed by CRLF"), i + 1;
                s_ = S::SizeStart;
                break;
            case S::Trailer:
                switch (trailer_.step(c)) {
                    case detail::FieldLines::Step::More:
                    case detail::FieldLines::Step::FieldEnd: break;
                    case detail::FieldLines::Step::SectionEnd: state_ = Framing::Complete; return i + 1;
                    case detail::FieldLines::Step::Error: return fail(trailer_.error()), i + 1;
                }
                break;
        }
    }
    return n;
}

}  // namespace tailgate::server::frontend
