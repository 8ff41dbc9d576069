// What a virtual key (and its team) allows, as pure functions: the answers the
// request path gives, OpenAI-shaped.
//
//   blocked key or team, expired key .......... 401 authentication_error
//   model outside the key's or team's list .... 403 permission_error, naming the allowed models
//   rpm / tpm / max_parallel_requests ......... 429 rate_limit_error + Retry-After (capped by the caller)
//   spend at or over max_budget ............... 400 budget_exceeded, as LiteLLM answers: retrying
//       cannot help until the budget period resets, and a 429 would make the OpenAI
//       SDK retry (twice, by default) for nothing; LiteLLM's clients match on the type.
#pragma once

#include "common/api_error.hpp"
#include "keys/cache.hpp"

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tailgate::keys {

// LiteLLM's model lists: empty allows every model, so do "*" and
// "all-proxy-models"; "openai/*" allows every name it matches; others are exact.
bool model_allowed(const std::vector<std::string>& allowed, std::string_view model);

// Blocked, expired, over budget: what refuses a caller whatever the request.
std::optional<ApiError> check_standing(const Caller& c, TimeMs now);
// Each of `models` must be allowed by the key and by its team.
std::optional<ApiError> check_models(const Caller& c, std::span<const std::string> models);
// The models a caller may use, for the 403 message and GET /models ("" entries never).
const std::vector<std::string>& allowed_models(const Caller& c);

ApiError over_limit_error(const std::string& who, const OverLimit& o);

// A request in flight, counted against max_parallel_requests of the key and
// its team until this goes (at the end of the response).
class Lease {
public:
    Lease() = default;
    Lease(UsagePtr key, UsagePtr team) : key_(std::move(key)), team_(std::move(team)) {}
    Lease(Lease&& o) noexcept = default;
    Lease& operator=(Lease&& o) noexcept {
        release();
        key_ = std::move(o.key_);
        team_ = std::move(o.team_);
        return *this;
    }
    ~Lease() { release(); }
    void release() {
        if (key_) key_->leave();
        if (team_) team_->leave();
        key_.reset();
        team_.reset();
    }

private:
    UsagePtr key_, team_;
};

// rpm, tpm and max_parallel_requests of the key, then of its team; on success
// `lease` holds the parallel slots.
std::optional<ApiError> admit(const Caller& c, TimeMs now, Lease& lease);

}  // namespace tailgate::keys
