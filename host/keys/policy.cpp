#include "keys/policy.hpp"

#include "keys/json.hpp"

namespace tailgate::keys {

namespace {

ApiError error(int status, const char* type, std::string msg, const char* code, const char* param = "") {
    ApiError e;
    e.status = status;
    e.type = type;
    e.message = std::move(msg);
    e.code = code;
    e.param = param;
    return e;
}

bool allows_all(const std::vector<std::string>& allowed) {
    if (allowed.empty()) return true;
    for (const auto& m : allowed)
        if (m == "*" || m == "all-proxy-models") return true;
    return false;
}

bool wildcard_match(std::string_view pattern, std::string_view name) {
    const size_t star = pattern.find('*');
    if (star == std::string_view::npos) return pattern == name;
    const std::string_view head = pattern.substr(0, star), tail = pattern.substr(star + 1);
    return name.size() >= head.size() + tail.size() && name.substr(0, head.size()) == head &&
           name.substr(name.size() - tail.size()) == tail;
}

std::string budget_message(const char* who, double spend, double max) {
    return std::string("Budget has been exceeded! ") + who + " Current cost: " + number_json(spend) +
           ", Max budget: " + number_json(max);
}

const std::vector<std::string> kEmpty;

}  // namespace

bool model_allowed(const std::vector<std::string>& allowed, std::string_view model) {
    if (allows_all(allowed)) return true;
    for (const auto& m : allowed)
        if (wildcard_match(m, model)) return true;
    return false;
}

const std::vector<std::string>& allowed_models(const Caller& c) {
    if (c.key && !c.key->models.empty()) return c.key->models;
    if (c.team) return c.team->models;
    return kEmpty;
}

std::optional<ApiError> check_standing(const Caller& c, TimeMs now) {
    if (!c.key) return std::nullopt;
    const KeyRecord& k = *c.key;
    if (k.blocked) return ApiError::unauthorized("This key is blocked");
    if (k.expires > 0 && now >= k.expires) return ApiError::unauthorized("This key expired at " + iso_time(k.expires));
    if (c.team && c.team->blocked) return ApiError::unauthorized("This key's team is blocked");
    if (k.limits.max_budget) {
        const double spend = c.key_usage->spend(k.limits, now);
        if (spend >= *k.limits.max_budget)
            return error(400, "budget_exceeded", budget_message("Key", spend, *k.limits.max_budget), "400");
    }
    if (c.team && c.team->limits.max_budget) {
        const double spend = c.team_usage->spend(c.team->limits, now);
        if (spend >= *c.team->limits.max_budget)
            return error(400, "budget_exceeded",
                         budget_message(("Team=" + c.team->team_id).c_str(), spend, *c.team->limits.max_budget), "400");
    }
    return std::nullopt;
}

std::optional<ApiError> check_models(const Caller& c, std::span<const std::string> models) {
    if (!c.key) return std::nullopt;
    for (const auto& m : models) {
        const bool by_key = model_allowed(c.key->models, m);
        const bool by_team = !c.team || model_allowed(c.team->models, m);
        if (by_key && by_team) continue;
        const auto& list = by_key ? c.team->models : c.key->models;
        return error(403, "permission_error",
                     std::string(by_key ? "This key's team" : "This key") + " is not allowed to access model '" + m +
                         "'. Allowed models: " + string_list_json(list),
                     "model_not_allowed", "model");
    }
    return std::nullopt;
}

ApiError over_limit_error(const std::string& who, const OverLimit& o) {
    ApiError e = error(429, "rate_limit_error", who + " is over its " + o.what + "; retry after " +
                                                    std::to_string(o.retry_after_s) + "s",
                       "rate_limit_exceeded");
    e.retry_after_s = o.retry_after_s;
    return e;
}

std::optional<ApiError> admit(const Caller& c, TimeMs now, Lease& lease) {
    if (!c.key) return std::nullopt;
    const Limits& kl = c.key->limits;
    if (auto o = c.key_usage->admit(kl, now)) return over_limit_error("This key", *o);
    if (c.team) {
        if (auto o = c.team_usage->admit(c.team->limits, now)) {
            c.key_usage->unadmit(now);
            return over_limit_error("This key's team", *o);
        }
    }
    if (!c.key_usage->enter(kl))
        return over_limit_error("This key", OverLimit{"max_parallel_requests " + std::to_string(*kl.max_parallel), 1});
    if (c.team && !c.team_usage->enter(c.team->limits)) {
        c.key_usage->leave();
        return over_limit_error("This key's team",
                                OverLimit{"max_parallel_requests " + std::to_string(*c.team->limits.max_parallel), 1});
    }
    lease = Lease(c.key_usage, c.team ? c.team_usage : nullptr);
    return std::nullopt;
}

}  // namespace tailgate::keys
