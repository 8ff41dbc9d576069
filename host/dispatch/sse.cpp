#include "dispatch/sse.hpp"

#include <rapidjson/document.h>

#include <cstring>

namespace tailgate::dispatch {

namespace {

bool nonempty_string(const rapidjson::Value& obj, const char* key) {
    auto it = obj.FindMember(key);
    return it != obj.MemberEnd() && it->value.IsString() && it->value.GetStringLength() > 0;
}

bool nonempty_array(const rapidjson::Value& obj, const char* key) {
    auto it = obj.FindMember(key);
    return it != obj.MemberEnd() && it->value.IsArray() && !it->value.Empty();
}

bool content_of(const rapidjson::Value& d) {
    if (!d.IsObject()) return false;
    auto choices = d.FindMember("choices");
    if (choices == d.MemberEnd() || !choices->value.IsArray()) return false;
    for (const auto& ch : choices->value.GetArray()) {
        if (!ch.IsObject()) continue;
        if (nonempty_string(ch, "text")) return true;  // legacy completions
        auto delta = ch.FindMember("delta");
        if (delta == ch.MemberEnd() || !delta->value.IsObject()) continue;
        const auto& dv = delta->value;
        if (nonempty_string(dv, "content") || nonempty_string(dv, "refusal") ||
            nonempty_string(dv, "reasoning_content") || nonempty_array(dv, "tool_calls"))
            return true;
        auto fc = dv.FindMember("function_call");
        if (fc != dv.MemberEnd() && fc->value.IsObject()) return true;
    }
    return false;
}

// Finds the end of the next event: the index just past a blank line.
size_t event_end(std::string_view s, size_t from) {
    for (size_t i = s.find('\n', from); i != std::string_view::npos; i = s.find('\n', i + 1)) {
        if (i + 1 < s.size() && s[i + 1] == '\n') return i + 2;
        if (i + 2 < s.size() && s[i + 1] == '\r' && s[i + 2] == '\n') return i + 3;
    }
    return std::string_view::npos;
}

}  // namespace

void read_usage(std::string_view json, int64_t& prompt, int64_t& completion) {
    if (json.find("\"usage\"") == std::string_view::npos) return;
    rapidjson::Document d;
    d.Parse(json.data(), json.size());
    if (!d.HasParseError()) read_usage(d, prompt, completion);
}

void read_usage(const rapidjson::Value& d, int64_t& prompt, int64_t& completion) {
    if (!d.IsObject()) return;
    auto u = d.FindMember("usage");
    if (u == d.MemberEnd() || !u->value.IsObject()) return;
    auto p = u->value.FindMember("prompt_tokens");
    if (p != u->value.MemberEnd() && p->value.IsInt64()) prompt = p->value.GetInt64();
    auto c = u->value.FindMember("completion_tokens");
    if (c != u->value.MemberEnd() && c->value.IsInt64()) completion = c->value.GetInt64();
}

bool SseScanner::has_content(std::string_view json) {
    rapidjson::Document d;
    d.Parse(json.data(), json.size());
    return !d.HasParseError() && content_of(d);
}

bool SseScanner::on_event(std::string_view event, Result& r) {
    // Concatenate the event's data lines (normally exactly one).
    std::string joined;
    std::string_view data;
    int lines = 0;
    size_t pos = 0;
    while (pos < event.size()) {
        size_t nl = event.find('\n', pos);
        std::string_view line = event.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        pos = nl == std::string_view::npos ? event.size() : nl + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.rfind("data:", 0) != 0) continue;  // comments, event:, id:, retry:
        line.remove_prefix(5);
        if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
        if (lines++ == 0) {
            data = line;
        } else {
            if (lines == 2) joined.assign(data);
            joined += '\n';
            joined.append(line);
            data = joined;
        }
    }
    if (lines == 0) return true;  // comments, keep-alives
    if (data == "[DONE]") {
        done_ = r.done = true;
        return true;
    }
    rapidjson::Document d;
    d.Parse(data.data(), data.size());
    if (d.HasParseError() || !d.IsObject()) {
        malformed_ = r.malformed = true;
        malformed_data_.assign(data.substr(0, 100));
        return false;
    }
    if (auto e = d.FindMember("error"); e != d.MemberEnd() && !e->value.IsNull()) {
        error_ = r.error = true;
        error_data_.assign(data);
        return true;
    }
    read_usage(d, prompt_tokens_, completion_tokens_);
    if (!r.content && content_of(d)) r.content = true;
    return true;
}

size_t SseScanner::scan(std::string_view all, size_t from, Result& r) {
    size_t start = 0;
    for (size_t end = event_end(all, from); end != std::string_view::npos; end = event_end(all, start)) {
        if (!on_event(all.substr(start, end - start), r)) break;
        start = end;
    }
    return start;
}

SseScanner::Result SseScanner::feed(std::string_view bytes) {
    Result r;
    if (malformed_) return r;
    if (!partial_.empty()) {
        // Only re-scan from a little before the old end: the terminator may straddle the join.
        size_t from = partial_.size() >= 2 ? partial_.size() - 2 : 0;
        partial_.append(bytes);
        const size_t start = scan(partial_, from, r);
        ready_.assign(partial_, 0, start);
        partial_.erase(0, start);
        r.ready = ready_;
        return r;
    }
    const size_t start = scan(bytes, 0, r);
    r.ready = bytes.substr(0, start);  // the common case: no copy
    partial_.assign(bytes.substr(start));
    return r;
}

}  // namespace tailgate::dispatch
