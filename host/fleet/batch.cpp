#include "fleet/batch.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>

namespace tailgate::fleet {

namespace {

constexpr int kVersion = 1;
// Positions in an outcome array.
enum Field : rapidjson::SizeType {
    kDep, kType, kAttempt, kLaunch, kStream, kElapsed, kTtft, kErrc, kStatus, kRetryAfter, kPrompt, kCompletion,
    kCancel, kAge, kFieldCount
};

template <class E>
std::optional<E> enum_of(int64_t v, E last) {
    if (v < 0 || v > static_cast<int64_t>(last)) return std::nullopt;
    return static_cast<E>(v);
}

void write_outcome(rapidjson::Writer<rapidjson::StringBuffer>& w, const Outbox::Event& e, int64_t now) {
    const Outcome& o = e.outcome;
    w.StartArray();
    w.Uint(e.deployment);
    w.Uint(static_cast<unsigned>(o.type));
    w.Uint(o.attempt);
    w.Uint(static_cast<unsigned>(o.launch));
    w.Uint(o.stream ? 1 : 0);
    w.Double(std::isfinite(o.elapsed_ms) ? o.elapsed_ms : 0);
    w.Double(std::isfinite(o.ttft_ms) ? o.ttft_ms : -1);
    w.Uint(static_cast<unsigned>(o.error_class));
    w.Int(o.http_status);
    w.Int64(o.retry_after_ms);
    w.Int64(o.prompt_tokens);
    w.Int64(o.completion_tokens);
    w.Uint(static_cast<unsigned>(o.cancel_reason));
    w.Int64(now - o.at_wall_ms);
    w.EndArray();
}

std::optional<Outcome> read_outcome(const rapidjson::Value& a, int64_t sent) {
    if (!a.IsArray() || a.Size() < kFieldCount) return std::nullopt;
    for (rapidjson::SizeType i = 0; i < kFieldCount; ++i)
        if (!a[i].IsNumber()) return std::nullopt;
    Outcome o;
    auto type = enum_of(a[kType].GetInt64(), EventType::ShadowDone);
    auto launch = enum_of(a[kLaunch].GetInt64(), Launch::OnFailure);
    auto errc = enum_of(a[kErrc].GetInt64(), ErrorClass::ContextWindow);
    auto cancel = enum_of(a[kCancel].GetInt64(), CancelReason::ClientGone);
    if (!type || !launch || !errc || !cancel || !a[kAttempt].IsUint()) return std::nullopt;
    o.type = *type;
    o.launch = *launch;
    o.error_class = *errc;
    o.cancel_reason = *cancel;
    o.attempt = a[kAttempt].GetUint();
    o.stream = a[kStream].GetInt64() != 0;
    o.elapsed_ms = a[kElapsed].GetDouble();
    o.ttft_ms = a[kTtft].GetDouble();
    o.http_status = a[kStatus].IsInt() ? a[kStatus].GetInt() : 0;
    o.retry_after_ms = a[kRetryAfter].GetInt64();
    o.prompt_tokens = a[kPrompt].GetInt64();
    o.completion_tokens = a[kCompletion].GetInt64();
    o.at_wall_ms = sent - a[kAge].GetInt64();
    return o;
}

}  // namespace

std::string encode_batch(const std::string& replica, const Outbox& out, int64_t now_wall_ms) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("v");
    w.Int(kVersion);
    w.Key("r");
    w.String(replica.data(), static_cast<rapidjson::SizeType>(replica.size()));
    w.Key("t");
    w.Int64(now_wall_ms);
    w.Key("d");
    w.StartArray();
    for (const auto& id : out.deployments) w.String(id.data(), static_cast<rapidjson::SizeType>(id.size()));
    w.EndArray();
    w.Key("e");
    w.StartArray();
    for (const auto& e : out.events) write_outcome(w, e, now_wall_ms);
    w.EndArray();
    w.Key("m");
    w.StartArray();
    for (const auto& m : out.messages) {
        w.StartArray();
        w.String(m.topic.data(), static_cast<rapidjson::SizeType>(m.topic.size()));
        w.String(m.payload.data(), static_cast<rapidjson::SizeType>(m.payload.size()));
        w.EndArray();
    }
    w.EndArray();
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
}

std::optional<Batch> decode_batch(std::string_view json) {
    rapidjson::Document doc;
    doc.Parse(json.data(), json.size());
    if (doc.HasParseError() || !doc.IsObject()) return std::nullopt;
    auto member = [&](const char* k) -> const rapidjson::Value* {
        auto it = doc.FindMember(k);
        return it == doc.MemberEnd() ? nullptr : &it->value;
    };
    const auto *v = member("v"), *r = member("r"), *t = member("t"), *d = member("d"), *e = member("e"),
               *m = member("m");
    if (!v || !v->IsInt() || v->GetInt() != kVersion || !r || !r->IsString() || !t || !t->IsInt64() || !d ||
        !d->IsArray() || !e || !e->IsArray())
        return std::nullopt;
    Batch b;
    b.replica.assign(r->GetString(), r->GetStringLength());
    b.sent_wall_ms = t->GetInt64();
    std::vector<std::string> ids;
    for (const auto& id : d->GetArray()) {
        if (!id.IsString()) return std::nullopt;
        ids.emplace_back(id.GetString(), id.GetStringLength());
    }
    for (const auto& a : e->GetArray()) {
        auto o = read_outcome(a, b.sent_wall_ms);
        if (!o || !a[kDep].IsUint() || a[kDep].GetUint() >= ids.size()) continue;  // skip what we cannot read
        b.outcomes.push_back(RemoteOutcome{ids[a[kDep].GetUint()], b.replica, *o});
    }
    if (m && m->IsArray())
        for (const auto& x : m->GetArray())
            if (x.IsArray() && x.Size() == 2 && x[0].IsString() && x[1].IsString())
                b.messages.push_back(Message{std::string(x[0].GetString(), x[0].GetStringLength()),
                                             std::string(x[1].GetString(), x[1].GetStringLength())});
    return b;
}

}  // namespace tailgate::fleet
