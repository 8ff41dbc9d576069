#include "server/stream_usage.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace tailgate::server {

namespace {

// The client's stream_options member, re-written with include_usage: true.
std::string with_usage(std::string_view member_text) {
    const size_t colon = member_text.find(':');
    rapidjson::Document d;
    if (colon != std::string_view::npos) {
        const std::string_view value = member_text.substr(colon + 1);
        d.Parse(value.data(), value.size());
    }
    if (d.HasParseError() || !d.IsObject()) d.SetObject();
    if (auto it = d.FindMember("include_usage"); it != d.MemberEnd()) d.RemoveMember(it);
    d.AddMember("include_usage", true, d.GetAllocator());
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    d.Accept(w);
    return std::string("\"stream_options\":") + buf.GetString();
}

bool asks_usage(std::string_view member_text) {
    const size_t colon = member_text.find(':');
    if (colon == std::string_view::npos) return false;
    rapidjson::Document d;
    const std::string_view value = member_text.substr(colon + 1);
    d.Parse(value.data(), value.size());
    if (d.HasParseError() || !d.IsObject()) return false;
    auto it = d.FindMember("include_usage");
    return it != d.MemberEnd() && it->value.IsBool() && it->value.GetBool();
}

// Rebuilds members/spans with `member` replacing the span at `index` (or appended).
void set_member(ParsedBody& body, size_t index, const std::string& member) {
    std::string members;
    std::vector<ParsedBody::Span> spans;
    auto add = [&](const std::string& key, std::string_view text) {
        if (!members.empty()) members += ',';
        spans.push_back(ParsedBody::Span{key, members.size(), members.size() + text.size()});
        members.append(text);
    };
    for (size_t i = 0; i < body.spans.size(); ++i) {
        const auto& sp = body.spans[i];
        if (i == index) add(sp.key, member);
        else add(sp.key, std::string_view(body.members).substr(sp.begin, sp.end - sp.begin));
    }
    if (index >= body.spans.size()) add("stream_options", member);
    body.members = std::move(members);
    body.spans = std::move(spans);
}

// Whether an SSE event's data is a chunk with usage and no choices.
bool usage_only(std::string_view event) {
    if (event.find("\"usage\"") == std::string_view::npos) return false;  // most chunks: no parse
    const size_t data = event.find("data:");
    if (data == std::string_view::npos) return false;
    std::string_view json = event.substr(data + 5);
    rapidjson::Document d;
    d.Parse(json.data(), json.size());
    if (d.HasParseError() || !d.IsObject()) return false;
    auto usage = d.FindMember("usage");
    if (usage == d.MemberEnd() || !usage->value.IsObject()) return false;
    auto choices = d.FindMember("choices");
    return choices == d.MemberEnd() || (choices->value.IsArray() && choices->value.Empty());
}

// The end of the SSE event starting at `from` (after its blank line), or npos.
size_t event_end(std::string_view s, size_t from) {
    for (size_t i = from; i < s.size(); ++i) {
        if (s[i] != '\n') continue;
        if (i + 1 < s.size() && s[i + 1] == '\n') return i + 2;
        if (i + 2 < s.size() && s[i + 1] == '\r' && s[i + 2] == '\n') return i + 3;
    }
    return std::string_view::npos;
}

class UsageStripper final : public providers::ResponseDecoder {
public:
    explicit UsageStripper(providers::ResponseDecoderPtr inner) : inner_(std::move(inner)) {}

    providers::Decoded feed(std::string_view bytes) override {
        providers::Decoded r = inner_->feed(bytes);
        const std::string_view in = r.client;
        if (in.find("\"usage\"") == std::string_view::npos) return r;
        out_.clear();
        size_t start = 0;
        for (size_t end = event_end(in, 0); end != std::string_view::npos; end = event_end(in, start)) {
            const std::string_view event = in.substr(start, end - start);
            if (!usage_only(event)) out_.append(event);
            start = end;
        }
        out_.append(in.substr(start));
        r.client = out_;
        return r;
    }
    size_t pending() const override { return inner_->pending(); }
    bool saw_done() const override { return inner_->saw_done(); }
    const providers::UpstreamError* stream_error() const override { return inner_->stream_error(); }
    const std::string& malformed_excerpt() const override { return inner_->malformed_excerpt(); }
    providers::Usage usage() const override { return inner_->usage(); }
    providers::BodyDecoded decode_body(std::string& body) override { return inner_->decode_body(body); }

private:
    providers::ResponseDecoderPtr inner_;
    std::string out_;
};

}  // namespace

bool inject_stream_usage(ParsedBody& body) {
    if (!body.stream) return false;
    size_t index = body.spans.size();
    for (size_t i = 0; i < body.spans.size(); ++i) {
        if (body.spans[i].key != "stream_options") continue;
        const auto& sp = body.spans[i];
        const std::string_view text = std::string_view(body.members).substr(sp.begin, sp.end - sp.begin);
        if (asks_usage(text)) return false;
        index = i;
    }
    std::string member = index < body.spans.size()
                             ? with_usage(std::string_view(body.members)
                                              .substr(body.spans[index].begin,
                                                      body.spans[index].end - body.spans[index].begin))
                             : std::string("\"stream_options\":{\"include_usage\":true}");
    set_member(body, index, member);
    return true;
}

providers::ResponseDecoderPtr strip_usage_chunks(providers::ResponseDecoderPtr inner) {
    return std::make_unique<UsageStripper>(std::move(inner));
}

}  // namespace tailgate::server
