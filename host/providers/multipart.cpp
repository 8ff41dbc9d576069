#include "providers/multipart.hpp"

#include <algorithm>
#include <cctype>
#include <functional>

namespace tailgate::providers::multipart {

namespace {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// RFC 2046 bchars: what a boundary may contain (a space, but not as the last character).
bool is_bchar(char c) {
    if (std::isalnum(static_cast<unsigned char>(c))) return true;
    return std::string_view("'()+_,-./:=? ").find(c) != std::string_view::npos;
}

bool is_token_char(char c) {
    if (std::isalnum(static_cast<unsigned char>(c))) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// Header parameters: `; key=value` or `; key="quoted \" value"`, after the main value.
// Returns false on a malformed list; keys are lower-cased.
bool parse_params(std::string_view s, std::vector<std::pair<std::string, std::string>>& out, std::string& why) {
    while (true) {
        s = trim(s);
        if (s.empty()) return true;
        if (s.front() != ';') {
            why = "expected ';' between parameters";
            return false;
        }
        s.remove_prefix(1);
        s = trim(s);
        if (s.empty()) return true;  // a trailing ';'
        size_t k = 0;
        while (k < s.size() && is_token_char(s[k])) ++k;
        if (k == 0 || k >= s.size() || s[k] != '=') {
            why = "malformed parameter";
            return false;
        }
        std::string key(s.substr(0, k));
        for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        s.remove_prefix(k + 1);
        std::string value;
        if (!s.empty() && s.front() == '"') {
            size_t i = 1;
            bool closed = false;
            for (; i < s.size(); ++i) {
                if (s[i] == '\\' && i + 1 < s.size()) {
                    value += s[++i];
                } else if (s[i] == '"') {
                    closed = true;
                    break;
                } else {
                    value += s[i];
                }
            }
            if (!closed) {
                why = "unterminated quoted parameter";
                return false;
            }
            s.remove_prefix(i + 1);
        } else {
            size_t i = 0;
            while (i < s.size() && s[i] != ';' && s[i] != ' ' && s[i] != '\t') ++i;
            value.assign(s.substr(0, i));
            s.remove_prefix(i);
        }
        for (const auto& [k2, v2] : out)
            if (k2 == key) {
                why = "parameter '" + key + "' given twice";
                return false;
            }
        out.emplace_back(std::move(key), std::move(value));
    }
}

bool printable_name(std::string_view s) {
    for (unsigned char c : s)
        if (c < 0x20 || c == 0x7f) return false;
    return true;
}

}  // namespace

std::variant<std::string, Error> Form::boundary_of(std::string_view content_type) {
    const size_t semi = content_type.find(';');
    if (!iequals(trim(content_type.substr(0, semi)), "multipart/form-data"))
        return Error{"Content-Type must be multipart/form-data for this endpoint"};
    if (semi == std::string_view::npos) return Error{"multipart/form-data without a boundary parameter"};
    std::vector<std::pair<std::string, std::string>> params;
    std::string why;
    if (!parse_params(content_type.substr(semi), params, why)) return Error{"Content-Type: " + why};
    for (const auto& [k, v] : params) {
        if (k != "boundary") continue;
        if (v.empty() || v.size() > 70) return Error{"multipart boundary must be 1 to 70 characters"};
        if (v.back() == ' ' || !std::all_of(v.begin(), v.end(), is_bchar))
            return Error{"multipart boundary has characters RFC 2046 does not allow"};
        return v;
    }
    return Error{"multipart/form-data without a boundary parameter"};
}

std::variant<Form, Error> Form::parse(std::string_view content_type, std::string body, const Limits& limits) {
    auto b = boundary_of(content_type);
    if (auto* e = std::get_if<Error>(&b)) return *e;
    Form f;
    f.boundary_ = std::move(std::get<std::string>(b));
    f.body_ = std::move(body);
    const std::string_view s = f.body_;
    const std::string first = "--" + f.boundary_;
    const std::string delim = "\r\n--" + f.boundary_;
    const std::boyer_moore_horspool_searcher search(delim.begin(), delim.end());
    if (s.substr(0, first.size()) != first) return Error{"multipart body does not start with its boundary"};
    size_t pos = first.size();
    while (true) {
        // After a delimiter: "--" closes the form, CRLF starts a part.
        if (s.substr(pos, 2) == "--") {
            f.close_at_ = pos - delim.size();  // its CRLF (a form with no part is refused below)
            break;
        }
        if (s.substr(pos, 2) != "\r\n") return Error{"multipart boundary not followed by CRLF"};
        pos += 2;
        if (f.parts_.size() == limits.max_parts)
            return Error{"multipart form has more than " + std::to_string(limits.max_parts) + " parts"};
        // The part's header block, up to an empty line (none at all: CRLF right away).
        size_t block_end = pos, value_begin = pos + 2;
        if (s.substr(pos, 2) != "\r\n") {
            const size_t head_end = s.substr(pos, limits.max_part_header_bytes + 4).find("\r\n\r\n");
            if (head_end == std::string_view::npos)
                return Error{s.size() - pos > limits.max_part_header_bytes
                                 ? "multipart part headers exceed " + std::to_string(limits.max_part_header_bytes) +
                                       " bytes"
                                 : std::string("multipart part headers are not terminated")};
            block_end = pos + head_end;
            value_begin = block_end + 4;
        }
        Part part;
        bool disposition = false;
        std::string_view block = s.substr(pos, block_end - pos);
        while (!block.empty()) {
            const size_t eol = block.find("\r\n");
            std::string_view line = block.substr(0, eol);
            block = eol == std::string_view::npos ? std::string_view() : block.substr(eol + 2);
            if (line.find('\r') != std::string_view::npos || line.find('\n') != std::string_view::npos)
                return Error{"multipart part header line has a bare CR or LF"};
            const size_t colon = line.find(':');
            if (colon == std::string_view::npos || colon == 0)
                return Error{"malformed multipart part header line"};
            std::string_view name = line.substr(0, colon);
            std::string_view value = trim(line.substr(colon + 1));
            if (iequals(name, "content-disposition")) {
                if (disposition) return Error{"multipart part has two Content-Disposition headers"};
                disposition = true;
                const size_t semi = value.find(';');
                if (!iequals(trim(value.substr(0, semi)), "form-data"))
                    return Error{"multipart part's Content-Disposition is not form-data"};
                std::vector<std::pair<std::string, std::string>> params;
                std::string why;
                if (semi != std::string_view::npos && !parse_params(value.substr(semi), params, why))
                    return Error{"multipart Content-Disposition: " + why};
                for (auto& [k, v] : params) {
                    if (k == "name") part.name = std::move(v);
                    else if (k == "filename") part.filename = std::move(v);
                }
            } else if (iequals(name, "content-type")) {
                part.content_type.assign(value);
            }
        }
        if (!disposition) return Error{"multipart part without Content-Disposition"};
        if (part.name.empty()) return Error{"multipart part without a name"};
        if (part.name.size() > limits.max_name_bytes ||
            (part.filename && part.filename->size() > limits.max_name_bytes))
            return Error{"multipart part name or filename longer than " + std::to_string(limits.max_name_bytes) +
                         " bytes"};
        if (!printable_name(part.name) || (part.filename && !printable_name(*part.filename)))
            return Error{"multipart part name or filename has control characters"};
        part.begin = value_begin;
        // The value runs to the next delimiter.
        const auto it = std::search(s.begin() + static_cast<std::ptrdiff_t>(part.begin), s.end(), search);
        if (it == s.end()) return Error{"multipart body ends inside part '" + part.name + "' (no closing boundary)"};
        part.end = static_cast<size_t>(it - s.begin());
        pos = part.end + delim.size();
        f.parts_.push_back(std::move(part));
    }
    if (f.parts_.empty()) return Error{"multipart form has no parts"};
    return f;
}

const Part* Form::find(std::string_view name) const {
    for (const auto& p : parts_)
        if (p.name == name) return &p;
    return nullptr;
}

std::string Form::with_field(std::string_view name, std::string_view value) const {
    std::string out;
    if (const Part* p = find(name)) {
        out.reserve(body_.size() + value.size());
        out.append(body_, 0, p->begin);
        out.append(value);
        out.append(body_, p->end, std::string::npos);
        return out;
    }
    // A new part just before the close delimiter ("\r\n--boundary--").
    out.reserve(body_.size() + value.size() + name.size() + boundary_.size() + 64);
    out.append(body_, 0, close_at_);
    out += "\r\n--";
    out += boundary_;
    out += "\r\nContent-Disposition: form-data; name=\"";
    for (char c : name) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    out += "\"\r\n\r\n";
    out.append(value);
    out.append(body_, close_at_, std::string::npos);
    return out;
}

}  // namespace tailgate::providers::multipart
