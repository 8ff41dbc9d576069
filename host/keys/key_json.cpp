#include "keys/key_json.hpp"

#include "keys/budget.hpp"
#include "keys/json.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>

namespace tailgate::keys {

namespace {

using rapidjson::Value;

ApiError bad(const std::string& field, const std::string& why) {
    return ApiError::bad_request("'" + field + "' " + why, field, "invalid_field");
}

std::string to_json(const Value& v) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    v.Accept(w);
    return buf.GetString();
}

std::string opt_json(const std::optional<int64_t>& v) { return v ? std::to_string(*v) : "null"; }
std::string opt_json(const std::optional<double>& v) { return v ? number_json(*v) : "null"; }
std::string str_or_null(const std::string& s) { return s.empty() ? "null" : json_quote(s); }
std::string time_or_null(TimeMs t) { return t > 0 ? json_quote(iso_time(t)) : "null"; }

// The members both keys and teams have.
std::string limits_members(const Limits& l, TimeMs reset_at, double spend, double loser_spend) {
    std::string out = "\"spend\":" + number_json(spend) + ",\"loser_spend\":" + number_json(loser_spend) +
                      ",\"max_budget\":" + opt_json(l.max_budget);
    out += ",\"remaining_budget\":" + (l.max_budget ? number_json(std::max(0.0, *l.max_budget - spend)) : "null");
    out += ",\"budget_duration\":" + str_or_null(l.budget_duration) + ",\"budget_reset_at\":" + time_or_null(reset_at);
    out += ",\"rpm_limit\":" + opt_json(l.rpm) + ",\"tpm_limit\":" + opt_json(l.tpm) +
           ",\"max_parallel_requests\":" + opt_json(l.max_parallel);
    return out;
}

// One field's parser: reads `v` into the record or says what is wrong.
template <class R>
using FieldFn = std::optional<ApiError> (*)(const char* name, const Value& v, R& rec, TimeMs now);
template <class R>
struct Field {
    const char* name;
    FieldFn<R> apply;
};

std::optional<ApiError> set_count(const char* name, const Value& v, std::optional<int64_t>& out) {
    if (v.IsNull()) {
        out.reset();
        return std::nullopt;
    }
    if (!v.IsInt64() || v.GetInt64() < 0) return bad(name, "must be a non-negative integer or null");
    out = v.GetInt64();
    return std::nullopt;
}

std::optional<ApiError> set_text(const char* name, const Value& v, std::string& out) {
    if (v.IsNull()) {
        out.clear();
        return std::nullopt;
    }
    if (!v.IsString() || v.GetStringLength() > 256) return bad(name, "must be a string (at most 256 bytes) or null");
    out.assign(v.GetString(), v.GetStringLength());
    return std::nullopt;
}

std::optional<ApiError> set_models(const char* name, const Value& v, std::vector<std::string>& out) {
    if (v.IsNull()) {
        out.clear();
        return std::nullopt;
    }
    if (!v.IsArray()) return bad(name, "must be a list of model group names");
    std::vector<std::string> models;
    for (const auto& m : v.GetArray()) {
        if (!m.IsString() || m.GetStringLength() == 0) return bad(name, "must hold non-empty strings");
        models.emplace_back(m.GetString(), m.GetStringLength());
    }
    out = std::move(models);
    return std::nullopt;
}

std::optional<ApiError> set_metadata(const char* name, const Value& v, std::string& out) {
    if (v.IsNull()) {
        out = "{}";
        return std::nullopt;
    }
    if (!v.IsObject()) return bad(name, "must be a JSON object");
    out = to_json(v);
    if (out.size() > 16384) return bad(name, "is larger than 16 KiB");
    return std::nullopt;
}

std::optional<ApiError> set_budget(const char* name, const Value& v, std::optional<double>& out) {
    if (v.IsNull()) {
        out.reset();
        return std::nullopt;
    }
    if (!v.IsNumber() || !std::isfinite(v.GetDouble()) || v.GetDouble() < 0)
        return bad(name, "must be a non-negative number of USD or null");
    out = v.GetDouble();
    return std::nullopt;
}

// budget_duration restarts the period from now (LiteLLM does the same).
std::optional<ApiError> set_duration(const char* name, const Value& v, Limits& l, TimeMs& reset_at, TimeMs now) {
    if (v.IsNull()) {
        l.budget_duration.clear();
        reset_at = 0;
        return std::nullopt;
    }
    const auto p = v.IsString() ? parse_period(std::string_view(v.GetString(), v.GetStringLength())) : std::nullopt;
    if (!p) return bad(name, "must be a period like \"30s\", \"10m\", \"24h\", \"30d\" or \"1mo\", or null");
    l.budget_duration.assign(v.GetString(), v.GetStringLength());
    reset_at = advance(now, *p);
    return std::nullopt;
}

std::optional<ApiError> set_bool(const char* name, const Value& v, bool& out) {
    if (v.IsNull()) {
        out = false;
        return std::nullopt;
    }
    if (!v.IsBool()) return bad(name, "must be true or false");
    out = v.GetBool();
    return std::nullopt;
}

// Key expiry: "duration" (from now, LiteLLM's field) or "expires" (a time).
std::optional<ApiError> set_lifetime(const char* name, const Value& v, TimeMs& expires, TimeMs now) {
    if (v.IsNull()) {
        expires = 0;
        return std::nullopt;
    }
    if (!v.IsString()) return bad(name, "must be a string or null");
    const std::string_view s(v.GetString(), v.GetStringLength());
    if (std::string_view(name) == "duration") {
        if (s == "permanent" || s.empty()) {
            expires = 0;
            return std::nullopt;
        }
        const auto p = parse_period(s);
        if (!p) return bad(name, "must be a period like \"30d\", \"permanent\" or null");
        expires = advance(now, *p);
        return std::nullopt;
    }
    const auto t = parse_iso_time(s);
    if (!t) return bad(name, "must be an ISO 8601 time (2030-01-31T00:00:00Z) or null");
    expires = *t;
    return std::nullopt;
}

#define LIMIT_FIELDS(R)                                                                                                \
    Field<R>{"rpm_limit", [](const char* n, const Value& v, R& r, TimeMs) { return set_count(n, v, r.limits.rpm); }}, \
        Field<R>{"tpm_limit", [](const char* n, const Value& v, R& r, TimeMs) { return set_count(n, v, r.limits.tpm); }}, \
        Field<R>{"max_parallel_requests",                                                                              \
                 [](const char* n, const Value& v, R& r, TimeMs) { return set_count(n, v, r.limits.max_parallel); }},  \
        Field<R>{"max_budget",                                                                                         \
                 [](const char* n, const Value& v, R& r, TimeMs) { return set_budget(n, v, r.limits.max_budget); }},   \
        Field<R>{"budget_duration",                                                                                    \
                 [](const char* n, const Value& v, R& r, TimeMs now) {                                                 \
                     return set_duration(n, v, r.limits, r.budget_reset_at, now);                                      \
                 }},                                                                                                   \
        Field<R>{"models", [](const char* n, const Value& v, R& r, TimeMs) { return set_models(n, v, r.models); }},   \
        Field<R>{"metadata",                                                                                           \
                 [](const char* n, const Value& v, R& r, TimeMs) { return set_metadata(n, v, r.metadata_json); }},     \
        Field<R>{"blocked", [](const char* n, const Value& v, R& r, TimeMs) { return set_bool(n, v, r.blocked); }}

const Field<KeyRecord> kKeyFields[] = {
    LIMIT_FIELDS(KeyRecord),
    {"key_alias", [](const char* n, const Value& v, KeyRecord& k, TimeMs) { return set_text(n, v, k.key_alias); }},
    {"team_id", [](const char* n, const Value& v, KeyRecord& k, TimeMs) { return set_text(n, v, k.team_id); }},
    {"user_id", [](const char* n, const Value& v, KeyRecord& k, TimeMs) { return set_text(n, v, k.user_id); }},
    {"duration", [](const char* n, const Value& v, KeyRecord& k, TimeMs now) { return set_lifetime(n, v, k.expires, now); }},
    {"expires", [](const char* n, const Value& v, KeyRecord& k, TimeMs now) { return set_lifetime(n, v, k.expires, now); }},
};

const Field<TeamRecord> kTeamFields[] = {
    LIMIT_FIELDS(TeamRecord),
    {"team_alias", [](const char* n, const Value& v, TeamRecord& t, TimeMs) { return set_text(n, v, t.team_alias); }},
};

// LiteLLM fields that would change what a key may do, which Tailgate does not
// implement: refused rather than silently ignored.
const char* const kUnsupported[] = {"model_max_budget", "model_rpm_limit", "model_tpm_limit", "aliases",
                                    "allowed_routes", "permissions", "soft_budget", "guardrails",
                                    "allowed_cache_controls", "enforced_params"};

template <class R, size_t N>
std::optional<ApiError> apply_fields(const Value& body, R& rec, TimeMs now, const Field<R> (&fields)[N]) {
    for (const char* name : kUnsupported) {
        auto it = body.FindMember(name);
        if (it == body.MemberEnd() || it->value.IsNull()) continue;
        if ((it->value.IsObject() || it->value.IsArray()) && it->value.Empty()) continue;
        return ApiError::bad_request(std::string("'") + name + "' is not supported by Tailgate", name, "unsupported_field");
    }
    for (const Field<R>& f : fields) {
        auto it = body.FindMember(f.name);
        if (it == body.MemberEnd()) continue;
        if (auto e = f.apply(f.name, it->value, rec, now)) return e;
    }
    return std::nullopt;
}

int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string url_decode(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+') out += ' ';
        else if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
            out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
            i += 2;
        } else out += s[i];
    }
    return out;
}

}  // namespace

std::string key_json(const KeyRecord& k, double live_spend) {
    std::string out = "{\"token\":" + json_quote(k.token) + ",\"key_name\":" + json_quote(k.key_name) +
                      ",\"key_alias\":" + str_or_null(k.key_alias) + ",\"team_id\":" + str_or_null(k.team_id) +
                      ",\"user_id\":" + str_or_null(k.user_id) + ",\"models\":" + string_list_json(k.models) +
                      ",\"metadata\":" + k.metadata_json + ",";
    out += limits_members(k.limits, k.budget_reset_at, live_spend, k.loser_spend);
    out += ",\"expires\":" + time_or_null(k.expires) + ",\"blocked\":" + (k.blocked ? "true" : "false") +
           ",\"created_at\":" + time_or_null(k.created_at) + ",\"updated_at\":" + time_or_null(k.updated_at) + "}";
    return out;
}

std::string team_json(const TeamRecord& t, double live_spend) {
    std::string out = "{\"team_id\":" + json_quote(t.team_id) + ",\"team_alias\":" + str_or_null(t.team_alias) +
                      ",\"models\":" + string_list_json(t.models) + ",\"metadata\":" + t.metadata_json + ",";
    out += limits_members(t.limits, t.budget_reset_at, live_spend, t.loser_spend);
    out += ",\"blocked\":" + std::string(t.blocked ? "true" : "false") + ",\"created_at\":" + time_or_null(t.created_at) +
           ",\"updated_at\":" + time_or_null(t.updated_at) + "}";
    return out;
}

std::optional<ApiError> apply_key_fields(const Value& body, KeyRecord& k, TimeMs now) {
    return apply_fields(body, k, now, kKeyFields);
}

std::optional<ApiError> apply_team_fields(const Value& body, TeamRecord& t, TimeMs now) {
    return apply_fields(body, t, now, kTeamFields);
}

std::optional<ApiError> parse_object(const std::string& body, rapidjson::Document& doc) {
    return parse_json_object(body.empty() ? std::string_view("{}") : std::string_view(body), doc);
}

std::map<std::string, std::string> parse_query(const std::string& query) {
    std::map<std::string, std::string> out;
    size_t i = 0;
    while (i <= query.size()) {
        const size_t amp = std::min(query.find('&', i), query.size());
        const std::string_view part(query.data() + i, amp - i);
        const size_t eq = part.find('=');
        if (!part.empty())
            out[url_decode(part.substr(0, eq))] = eq == std::string_view::npos ? "" : url_decode(part.substr(eq + 1));
        i = amp + 1;
    }
    return out;
}

}  // namespace tailgate::keys
