// Fuzz target: the strict request-head and chunked-body validators
// (server/frontend/http_head_validator.cpp). The input is a request as sent: a head and
// whatever follows it.
//
// Invariants:
//   - the verdict (state, bytes used, reason) is the same fed whole, byte by
//     byte, and in two pieces cut at an input-chosen point;
//   - a head the validator accepts is strict by a separate, naive reading done
//     here (CRLF lines only; method SP target SP HTTP/d.d; name ":" value with
//     tchar names, no controls in values; framing fields well formed, once);
//   - Poco (HTTPRequest::read) parses an accepted head, consuming exactly it, to
//     the same method, target, version and fields (names equal, values equal
//     after OWS trim), the same Content-Length and the same chunked-ness. Poco
//     may refuse only for its own size limits (answered 414/431 by the front end);
//   - after an accepted chunked head, the chunked-body validator and a naive
//     decoder here agree on valid / invalid / incomplete and on where it ends.
#include "server/frontend/http_head_validator.hpp"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPRequest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using tailgate::server::frontend::ChunkedBodyValidator;
using tailgate::server::frontend::Framing;
using tailgate::server::frontend::HttpHeadValidator;

namespace {

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "request_head invariant violated: %s\n", what);
        std::abort();
    }
}

struct Verdict {
    Framing state;
    size_t used;
    const char* error;  // fixed strings: compared by address is too strict, by text below
    bool same(const Verdict& o) const {
        return state == o.state && used == o.used &&
               (error == o.error || (error && o.error && std::strcmp(error, o.error) == 0));
    }
};

template <class V>
Verdict feed(std::string_view in, std::initializer_list<size_t> cuts) {
    V v;
    size_t used = 0, at = 0;
    auto step = [&](size_t end) {
        if (v.state() == Framing::Partial) used += v.feed(in.data() + at, end - at);
        at = end;
    };
    for (size_t c : cuts) step(c);
    step(in.size());
    if (v.state() == Framing::Invalid) check(v.error() && *v.error(), "a refusal has a reason");
    return {v.state(), used, v.error()};
}

template <class V>
Verdict bytewise(std::string_view in) {
    V v;
    size_t used = 0;
    for (size_t i = 0; i < in.size() && v.state() == Framing::Partial; ++i) used += v.feed(in.data() + i, 1);
    return {v.state(), used, v.error()};
}

template <class V>
Verdict split_invariant(std::string_view in, size_t cut) {
    const Verdict whole = feed<V>(in, {});
    check(whole.same(bytewise<V>(in)), "byte-by-byte feeding gives the same verdict");
    check(whole.same(feed<V>(in, {cut})), "split feeding gives the same verdict");
    check(whole.used <= in.size(), "no more bytes used than fed");
    if (whole.state == Framing::Partial) check(whole.used == in.size(), "a partial verdict used everything");
    return whole;
}

// ---- the naive reading -------------------------------------------------------

bool tchar(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

struct Head {
    std::string method, target, version;
    std::vector<std::pair<std::string, std::string>> fields;  // name, trimmed value
    size_t longest_name = 0, longest_raw_value = 0;           // for Poco's limits
    std::optional<uint64_t> content_length;
    bool chunked = false;
};

// `h` is a head the validator accepted: each check here is one it must have made.
Head read_strictly(std::string_view h) {
    check(h.size() >= 4 && h.substr(h.size() - 4) == "\r\n\r\n", "an accepted head ends with an empty line");
    for (size_t i = 0; i < h.size(); ++i) {
        if (h[i] == '\r') check(i + 1 < h.size() && h[i + 1] == '\n', "no bare CR in an accepted head");
        if (h[i] == '\n') check(i > 0 && h[i - 1] == '\r', "no bare LF in an accepted head");
    }
    std::vector<std::string_view> lines;
    for (size_t at = 0; at < h.size();) {
        const size_t end = h.find("\r\n", at);
        lines.push_back(h.substr(at, end - at));
        at = end + 2;
    }
    check(lines.size() >= 2 && lines.back().empty(), "the head's last line is empty");
    lines.pop_back();
    Head out;
    const std::string_view rl = lines.front();
    const size_t sp1 = rl.find(' '), sp2 = rl.find(' ', sp1 + 1);
    check(sp1 != std::string_view::npos && sp2 != std::string_view::npos && rl.find(' ', sp2 + 1) == std::string_view::npos,
          "a request line has exactly two spaces");
    out.method = rl.substr(0, sp1);
    out.target = rl.substr(sp1 + 1, sp2 - sp1 - 1);
    out.version = rl.substr(sp2 + 1);
    check(!out.method.empty() && std::all_of(out.method.begin(), out.method.end(), tchar), "the method is a token");
    check(!out.target.empty() && std::all_of(out.target.begin(), out.target.end(),
                                             [](char c) { return c > 0x20 && c < 0x7f; }),
          "the target is visible ASCII");
    const std::string& v = out.version;
    check(v.size() == 8 && v.compare(0, 5, "HTTP/") == 0 && v[5] >= '0' && v[5] <= '9' && v[6] == '.' && v[7] >= '0' &&
              v[7] <= '9',
          "the version is HTTP/d.d");
    int cls = 0, tes = 0;
    for (size_t i = 1; i < lines.size(); ++i) {
        const std::string_view line = lines[i];
        const size_t colon = line.find(':');
        check(colon != std::string_view::npos && colon > 0, "a field line has a name and a colon");
        const std::string_view name = line.substr(0, colon), raw = line.substr(colon + 1);
        check(std::all_of(name.begin(), name.end(), tchar), "a field name is a token");
        for (unsigned char c : raw) check(c == '\t' || (c >= 0x20 && c != 0x7f), "no control in a field value");
        check(raw.find("=?") == std::string_view::npos, "no encoded-word in a field value");
        const std::string_view value = trim_ows(raw);
        out.longest_name = std::max(out.longest_name, name.size());
        size_t lead = 0;
        while (lead < raw.size() && (raw[lead] == ' ' || raw[lead] == '\t')) ++lead;
        out.longest_raw_value = std::max(out.longest_raw_value, raw.size() - lead);
        const std::string lname = lower(name);
        if (lname == "content-length") {
            ++cls;
            check(!value.empty() &&
                      std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; }),
                  "Content-Length is digits");
            uint64_t n = 0;
            for (char c : value) {
                check(n <= (static_cast<uint64_t>(INT64_MAX) - (c - '0')) / 10, "Content-Length fits in int64");
                n = n * 10 + static_cast<uint64_t>(c - '0');
            }
            out.content_length = n;
        }
        if (lname == "transfer-encoding") {
            ++tes;
            check(lower(value) == "chunked", "Transfer-Encoding is chunked");
            out.chunked = true;
        }
        out.fields.emplace_back(name, value);
    }
    check(cls <= 1 && tes <= 1 && !(cls && tes), "at most one framing field");
    if (tes) check(out.version != "HTTP/1.0", "no Transfer-Encoding in HTTP/1.0");
    return out;
}

bool poco_may_refuse(const Head& h) {  // Poco's own limits (HTTPRequest.h, MessageHeader.h)
    return h.method.size() >= 32 || h.target.size() >= 16384 || h.longest_name >= 256 ||
           h.longest_raw_value >= 8192 || h.fields.size() > 100;
}

void compare_with_poco(std::string_view head, const Head& ours, const HttpHeadValidator& v) {
    std::istringstream in{std::string(head)};
    Poco::Net::HTTPRequest req;
    try {
        req.read(in);
    } catch (const Poco::Exception&) {
        check(poco_may_refuse(ours), "Poco parses every accepted head within its limits");
        return;
    }
    check(in.peek() == std::char_traits<char>::eof(), "Poco consumes exactly the head");
    check(req.getMethod() == ours.method, "same method");
    check(req.getURI() == ours.target, "same request target");
    check(req.getVersion() == ours.version, "same version");
    std::vector<std::pair<std::string, std::string>> poco_fields(req.begin(), req.end());
    check(poco_fields.size() == ours.fields.size(), "same number of fields");
    auto by_name = [](const auto& a, const auto& b) { return lower(a.first) < lower(b.first); };
    auto mine = ours.fields;
    std::stable_sort(mine.begin(), mine.end(), by_name);
    std::stable_sort(poco_fields.begin(), poco_fields.end(), by_name);
    for (size_t i = 0; i < mine.size(); ++i) {
        check(poco_fields[i].first == mine[i].first, "same field name");
        check(poco_fields[i].second == mine[i].second, "same field value");
    }
    check(req.hasContentLength() == ours.content_length.has_value(), "same Content-Length presence");
    check(v.has_content_length() == ours.content_length.has_value(), "validator: same Content-Length presence");
    if (ours.content_length) {
        check(static_cast<uint64_t>(req.getContentLength64()) == *ours.content_length, "Poco: same Content-Length");
        check(v.content_length() == *ours.content_length, "validator: same Content-Length");
    }
    check(req.getChunkedTransferEncoding() == ours.chunked, "Poco: same chunked-ness");
    check(v.chunked() == ours.chunked, "validator: same chunked-ness");
}

enum class Line { Empty, Field, Bad, Unfinished };

// One trailer field line without its line end; `whole`: the line end follows.
// An unfinished line is Bad as soon as no continuation could make it a field.
Line judge_line(std::string_view line, bool whole) {
    if (line.empty()) return whole ? Line::Empty : Line::Unfinished;
    size_t i = 0;
    while (i < line.size() && tchar(line[i])) ++i;
    if (i == 0) return Line::Bad;
    if (i == line.size()) return whole ? Line::Bad : Line::Unfinished;  // no colon (yet)
    if (line[i] == ' ' || line[i] == '\t') {  // only ever bad: before a colon or inside a name
        size_t j = i;
        while (j < line.size() && (line[j] == ' ' || line[j] == '\t')) ++j;
        return j == line.size() && !whole ? Line::Unfinished : Line::Bad;
    }
    if (line[i] != ':') return Line::Bad;
    const std::string_view raw = line.substr(i + 1);
    for (unsigned char c : raw)
        if (!(c == '\t' || (c >= 0x20 && c != 0x7f))) return Line::Bad;
    if (raw.find("=?") != std::string_view::npos) return Line::Bad;
    return whole ? Line::Field : Line::Unfinished;
}

// A naive chunked-body reading: where the body ends (Complete), Invalid, or Partial.
struct BodyEnd {
    Framing state;
    size_t end = 0;
};

BodyEnd read_chunked(std::string_view b) {
    auto hex = [](char c) { return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); };
    auto ext_byte = [](unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); };
    size_t at = 0;
    for (;;) {
        size_t digits = 0;
        uint64_t size = 0;
        while (at < b.size() && hex(b[at])) {
            if (++digits > 8) return {Framing::Invalid};
            const char c = b[at++];
            size = size * 16 + static_cast<uint64_t>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
        }
        if (at == b.size()) return {Framing::Partial};
        if (digits == 0) return {Framing::Invalid};
        size_t ws = at;
        while (ws < b.size() && (b[ws] == ' ' || b[ws] == '\t')) ++ws;
        if (ws == b.size()) return {Framing::Partial};
        if (b[ws] == ';') {
            at = ws + 1;
            while (at < b.size() && b[at] != '\r' && ext_byte(static_cast<unsigned char>(b[at]))) ++at;
            if (at == b.size()) return {Framing::Partial};
        } else if (ws != at) {
            return {Framing::Invalid};  // whitespace only before an extension
        }
        if (b[at] != '\r') return {Framing::Invalid};
        if (++at == b.size()) return {Framing::Partial};
        if (b[at++] != '\n') return {Framing::Invalid};
        if (size == 0) break;
        if (b.size() - at < size) return {Framing::Partial};
        at += static_cast<size_t>(size);
        for (char want : {'\r', '\n'}) {
            if (at == b.size()) return {Framing::Partial};
            if (b[at++] != want) return {Framing::Invalid};
        }
    }
    for (;;) {  // trailer field lines, then the empty line
        const size_t lf = b.find('\n', at), cr = b.find('\r', at);
        const size_t stop = std::min(lf, cr);
        const std::string_view line = b.substr(at, stop == std::string_view::npos ? std::string_view::npos : stop - at);
        const Line verdict = judge_line(line, stop != std::string_view::npos);
        if (verdict == Line::Bad) return {Framing::Invalid};
        if (stop == std::string_view::npos) return {Framing::Partial};
        if (b[stop] == '\n') return {Framing::Invalid};  // bare LF
        if (stop + 1 == b.size()) return {Framing::Partial};
        if (b[stop + 1] != '\n') return {Framing::Invalid};  // bare CR
        if (verdict == Line::Empty) return {Framing::Complete, stop + 2};
        at = stop + 2;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    // The cut point comes from the input's last byte, so the fuzzer steers it.
    const size_t cut = size ? data[size - 1] % (size + 1) : 0;
    const Verdict head = split_invariant<HttpHeadValidator>(in, cut);
    if (head.state != Framing::Complete) return 0;

    HttpHeadValidator v;
    v.feed(in.data(), in.size());
    const std::string_view h = in.substr(0, head.used);
    const Head ours = read_strictly(h);
    compare_with_poco(h, ours, v);

    if (!v.chunked()) return 0;
    const std::string_view body = in.substr(head.used);
    const Verdict b = split_invariant<ChunkedBodyValidator>(body, body.empty() ? 0 : cut % (body.size() + 1));
    const BodyEnd naive = read_chunked(body);
    check(b.state == naive.state, "the chunked-body validator and the naive decoder agree");
    if (b.state == Framing::Complete) check(b.used == naive.end, "both end the body at the same byte");
    return 0;
}
