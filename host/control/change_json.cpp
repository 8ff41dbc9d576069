// A revision of the log as JSON: how replicas hand changes to each other
// through the fleet's log in Redis (issue 18). The payload is kept as the
// exact text the admin change carried.
#include "control/store.hpp"
#include "common/api_error.hpp"

#include <rapidjson/document.h>

namespace tailgate::control {

std::string change_json(const Change& c) {
    return "{\"revision\":" + std::to_string(c.revision) + ",\"at_ms\":" + std::to_string(c.at_ms) +
           ",\"origin\":" + json_quote(c.origin) + ",\"key_hash\":" + json_quote(c.key_hash) +
           ",\"op\":" + json_quote(c.op) + ",\"target\":" + json_quote(c.target) +
           ",\"payload\":" + json_quote(c.payload) + "}";
}

std::optional<Change> change_from_json(std::string_view json) {
    rapidjson::Document doc;
    doc.Parse(json.data(), json.size());
    if (doc.HasParseError() || !doc.IsObject()) return std::nullopt;
    auto str = [&](const char* k, std::string& out) {
        auto it = doc.FindMember(k);
        if (it == doc.MemberEnd() || !it->value.IsString()) return false;
        out.assign(it->value.GetString(), it->value.GetStringLength());
        return true;
    };
    Change c;
    auto rev = doc.FindMember("revision");
    auto at = doc.FindMember("at_ms");
    if (rev == doc.MemberEnd() || !rev->value.IsUint64() || at == doc.MemberEnd() || !at->value.IsInt64())
        return std::nullopt;
    c.revision = rev->value.GetUint64();
    c.at_ms = at->value.GetInt64();
    if (!str("origin", c.origin) || !str("key_hash", c.key_hash) || !str("op", c.op) || !str("target", c.target) ||
        !str("payload", c.payload))
        return std::nullopt;
    return c;
}

}  // namespace tailgate::control
