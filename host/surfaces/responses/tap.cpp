#include "surfaces/responses/tap.hpp"

#include "surfaces/responses/json.hpp"
#include "surfaces/responses/surface.hpp"

#include <charconv>

namespace tailgate::surfaces::responses {

using namespace json;

namespace {

// The sequence_number of an event, found without parsing it (every event has one).
int64_t sequence_number(std::string_view data) {
    constexpr std::string_view kKey = "\"sequence_number\":";
    const size_t at = data.rfind(kKey);
    if (at == std::string_view::npos) return -1;
    size_t i = at + kKey.size();
    while (i < data.size() && data[i] == ' ') ++i;
    int64_t n = -1;
    std::from_chars(data.data() + i, data.data() + data.size(), n);
    return n;
}

// Only lifecycle events are parsed whole; a delta cannot hold these words unescaped.
bool maybe_lifecycle(std::string_view data) {
    for (std::string_view t : {"\"response.created\"", "\"response.completed\"", "\"response.incomplete\"",
                               "\"response.failed\"", "\"type\":\"error\""})
        if (data.find(t) != std::string_view::npos) return true;
    return false;
}

}  // namespace

void Tap::on_bytes(std::string_view bytes) {
    if (!stream_) {
        if (!keep_) return;
        rapidjson::Document d;
        d.Parse(bytes.data(), bytes.size());
        const std::string_view st = str(d, "status");
        if (!d.HasParseError() && (st == "completed" || st == "incomplete")) keep(d, d.GetAllocator());
        return;
    }
    framer_.feed(bytes, [&](std::string_view data) {
        on_event(data);
        return true;
    });
}

void Tap::on_event(std::string_view data) {
    if (const int64_t n = sequence_number(data); n > last_seq_) last_seq_ = n;
    if (!maybe_lifecycle(data)) return;
    rapidjson::Document d;
    d.Parse(data.data(), data.size());
    if (!d.HasParseError() && d.IsObject()) on_lifecycle(d);
}

void Tap::on_lifecycle(rapidjson::Document& d) {
    const std::string_view type = str(d, "type");
    if (type == "error") saw_error_ = true;
    if (type == "response.failed") saw_failed_ = true;
    auto r = d.FindMember("response");
    if (r == d.MemberEnd() || !r->value.IsObject()) return;
    if (type == "response.created") {
        id_ = str(r->value, "id");
        if (const Value* c = member(r->value, "created_at"); c && c->IsInt64()) created_at_ = c->GetInt64();
        created_.CopyFrom(r->value, created_.GetAllocator());
    } else if ((type == "response.completed" || type == "response.incomplete") && keep_) {
        keep(r->value, d.GetAllocator());
    }
}

void Tap::keep(rapidjson::Value& response, rapidjson::Document::AllocatorType& a) {
    id_ = str(response, "id");
    if (!previous_id_.empty()) {
        if (auto p = response.FindMember("previous_response_id"); p != response.MemberEnd())
            p->value.SetString(previous_id_.c_str(), static_cast<rapidjson::SizeType>(previous_id_.size()), a);
        else
            response.AddMember("previous_response_id", rapidjson::Value(previous_id_.c_str(), a), a);
    }
    if (const Value* c = member(response, "created_at"); c && c->IsInt64()) created_at_ = c->GetInt64();
    finished_ = text(response);
    const Value* out = member(response, "output");
    output_ = out && out->IsArray() ? text(*out) : std::string("[]");
}

void Tap::stream_error(const ApiError& e, std::string& out) {
    // A native upstream may have said it already: the client reads each once.
    if (saw_failed_) return;
    if (!saw_error_) error_event(e, static_cast<uint64_t>(++last_seq_), out);
    if (!created_.IsObject()) return;  // no response.created reached the client: nothing to fail
    auto& a = created_.GetAllocator();
    created_.RemoveMember("status");
    created_.AddMember("status", "failed", a);
    rapidjson::Value err(rapidjson::kObjectType);
    const std::string code = e.code.empty() ? "server_error" : e.code;
    err.AddMember("code", rapidjson::Value(code.c_str(), a), a);
    err.AddMember("message", rapidjson::Value(e.message.c_str(), a), a);
    created_.RemoveMember("error");
    created_.AddMember("error", err, a);
    out += "event: response.failed\ndata: {\"type\":\"response.failed\",\"sequence_number\":";
    out += std::to_string(++last_seq_);
    out += ",\"response\":";
    out += text(created_);
    out += "}\n\n";
}

}  // namespace tailgate::surfaces::responses
