// multipart/form-data (RFC 7578) as the audio endpoints receive it: a small,
// strict parser that records where each part lies in the client's body, and a
// rewriter that replaces one field's value and leaves every other byte as it
// came (the audio file is never copied part by part).
//
// Strict: the body must start with the first delimiter (no preamble), every part
// needs `Content-Disposition: form-data; name="..."`, header lines end in CRLF,
// the close delimiter must come; what follows it (the epilogue) is ignored.
// Bounded: parts, header bytes per part, names and field values (Limits).
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace tailgate::providers::multipart {

struct Limits {
    size_t max_parts = 64;
    size_t max_part_header_bytes = 4096;  // one part's header block
    size_t max_name_bytes = 256;          // a part's name and filename
};

struct Part {
    std::string name;
    std::optional<std::string> filename;  // set for file parts
    std::string content_type;             // the part's own, "" when absent
    size_t begin = 0, end = 0;            // the value: body[begin, end)
};

// A parse failure: what is wrong, for the client's 400.
struct Error {
    std::string message;
};

class Form {
public:
    // The boundary of a Content-Type header value ("multipart/form-data; boundary=x").
    static std::variant<std::string, Error> boundary_of(std::string_view content_type);
    static std::variant<Form, Error> parse(std::string_view content_type, std::string body, const Limits& limits = {});

    const std::vector<Part>& parts() const { return parts_; }
    const std::string& body() const { return body_; }
    const std::string& boundary() const { return boundary_; }
    // The Content-Type to send the (rebuilt) body with.
    std::string content_type() const { return "multipart/form-data; boundary=" + boundary_; }

    // The first part named `name`; null when absent.
    const Part* find(std::string_view name) const;
    std::string_view value(const Part& p) const { return std::string_view(body_).substr(p.begin, p.end - p.begin); }
    // The body with the value of field `name` replaced by `value` (every other
    // byte as received), or with a part of that name added before the close
    // delimiter when there is none.
    std::string with_field(std::string_view name, std::string_view value) const;

private:
    std::string body_;
    std::string boundary_;
    std::vector<Part> parts_;
    size_t close_at_ = 0;  // where the close delimiter's CRLF begins
};

}  // namespace tailgate::providers::multipart
