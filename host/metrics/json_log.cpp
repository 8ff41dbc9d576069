#include "metrics/json_log.hpp"

#include "common/api_error.hpp"
#include "common/utf8.hpp"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/pattern_formatter.h>

#include <cmath>
#include <cstdio>

namespace tailgate::logfmt {

namespace {

class MessageFlag final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
        std::string_view p(msg.payload.data(), msg.payload.size());
        thread_local std::string buf;
        buf.clear();
        if (!p.empty() && p.front() == kStructuredMarker) {
            buf.assign(p.substr(1));
        } else {
            buf += "\"msg\":\"";
            json_escape_into(buf, p);
            buf += '"';
        }
        dest.append(buf.data(), buf.data() + buf.size());
    }
    std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<MessageFlag>(); }
};

// Text mode: the message with every byte a terminal or a log parser could
// take for structure escaped as \xNN — control characters (a JSON-decoded
// model name with "\n" would forge a log line, ESC sequences in a URI would
// drive the operator's terminal), C1 controls, DEL and invalid UTF-8.
class TextMessageFlag final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
        std::string_view p(msg.payload.data(), msg.payload.size());
        thread_local std::string buf;
        buf.clear();
        append_printable(buf, p);
        dest.append(buf.data(), buf.data() + buf.size());
    }
    std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<TextMessageFlag>(); }
};

}  // namespace

void append_printable(std::string& out, std::string_view s) {
    static const char* hex = "0123456789abcdef";
    auto escape = [&](unsigned char c) {
        out += "\\x";
        out += hex[c >> 4];
        out += hex[c & 15];
    };
    out.reserve(out.size() + s.size());
    for (size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
            ++i;
            continue;
        }
        const size_t n = c >= 0x80 ? utf8_sequence_length(s, i) : 0;
        const bool c1 = n == 2 && c == 0xC2 && static_cast<unsigned char>(s[i + 1]) < 0xA0;  // U+0080..U+009F
        if (n == 0 || c1) {
            escape(c);
            ++i;
        } else {
            out.append(s.substr(i, n));
            i += n;
        }
    }
}

std::unique_ptr<spdlog::formatter> make_formatter(bool json) {
    auto f = std::make_unique<spdlog::pattern_formatter>();
    if (json) {
        f->add_flag<MessageFlag>('*').set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l",%*})");
    } else {
        f->add_flag<TextMessageFlag>('*').set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %*");
    }
    return f;
}

std::optional<std::string> compact_json(std::string_view json) {
    rapidjson::Document d;
    d.Parse<rapidjson::kParseValidateEncodingFlag>(json.data(), json.size());
    if (d.HasParseError()) return std::nullopt;
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    if (!d.Accept(w)) return std::nullopt;
    return std::string(sb.GetString(), sb.GetSize());
}

void Fields::key(std::string_view k) {
    if (!s_.empty()) s_ += ',';
    s_ += '"';
    json_escape_into(s_, k);
    s_ += "\":";
}

Fields& Fields::str(std::string_view k, std::string_view v) {
    key(k);
    s_ += '"';
    json_escape_into(s_, v);
    s_ += '"';
    return *this;
}

Fields& Fields::num(std::string_view k, double v, int decimals) {
    key(k);
    if (std::isfinite(v))
        s_ += fmt::format("{:.{}f}", v, decimals);
    else
        s_ += "null";
    return *this;
}

Fields& Fields::integer(std::string_view k, int64_t v) {
    key(k);
    s_ += std::to_string(v);
    return *this;
}

Fields& Fields::boolean(std::string_view k, bool v) {
    key(k);
    s_ += v ? "true" : "false";
    return *this;
}

Fields& Fields::null(std::string_view k) {
    key(k);
    s_ += "null";
    return *this;
}

Fields& Fields::raw(std::string_view k, std::string_view json) {
    key(k);
    s_ += json;
    return *this;
}

std::string structured(const Fields& f) {
    std::string out(1, kStructuredMarker);
    out += f.members();
    return out;
}

}  // namespace tailgate::logfmt
