#include "keys/api_util.hpp"

#include <spdlog/spdlog.h>

#include <cstdlib>

namespace tailgate::keys {

MgmtReply guarded(const std::function<MgmtReply()>& fn) {
    try {
        return fn();
    } catch (const Refusal& r) {
        return fail(r.error);
    } catch (const store::DbError& e) {
        if (e.duplicate)
            return fail(ApiError::bad_request("A key with this value or key_alias (or a team with this team_id) "
                                              "already exists",
                                              "", "already_exists"));
        spdlog::warn("key store: {}", e.what());
        return fail(ApiError::unavailable("The key store is unavailable; retry later", 5));
    } catch (const std::exception& e) {
        spdlog::error("key management: {}", e.what());
        return fail(ApiError::internal("key management failed"));
    }
}

std::optional<ApiError> string_array(const rapidjson::Value& body, const char* name, std::vector<std::string>& out) {
    auto it = body.FindMember(name);
    if (it == body.MemberEnd() || it->value.IsNull()) return std::nullopt;
    if (!it->value.IsArray())
        return ApiError::bad_request(std::string("'") + name + "' must be a list of strings", name, "invalid_field");
    for (const auto& v : it->value.GetArray()) {
        if (!v.IsString())
            return ApiError::bad_request(std::string("'") + name + "' must be a list of strings", name, "invalid_field");
        out.emplace_back(v.GetString(), v.GetStringLength());
    }
    return std::nullopt;
}

std::string query_value(const std::map<std::string, std::string>& q, const char* name) {
    auto it = q.find(name);
    return it == q.end() ? std::string() : it->second;
}

int64_t query_int(const std::map<std::string, std::string>& q, const char* name, int64_t fallback) {
    const std::string v = query_value(q, name);
    if (v.empty()) return fallback;
    char* end = nullptr;
    const long long n = std::strtoll(v.c_str(), &end, 10);
    return *end ? fallback : n;
}

double live_spend(KeyService& svc, const KeyRecord& k) {
    CallerPtr c;
    if (svc.cache().find(k.token, now_ms(), c) == KeyCache::Hit::Found && c->key_usage)
        return c->key_usage->spend(k.limits, now_ms());
    return k.spend;
}

double live_team_spend(KeyService& svc, const TeamRecord& t) {
    if (!svc.cache().has_team(t.team_id)) return t.spend;
    return svc.cache().team_usage(t.team_id)->spend(t.limits, now_ms());
}

}  // namespace tailgate::keys
