// What the management endpoints share (keys/key_api.cpp, team_api.cpp, spend_api.cpp).
#pragma once

#include "keys/key_api.hpp"
#include "keys/key_json.hpp"

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace tailgate::keys {

// Thrown inside a database job to answer with `error` (the job's transaction rolls back).
struct Refusal : std::exception {
    explicit Refusal(ApiError e) : error(std::move(e)) {}
    ApiError error;
};

inline MgmtReply reply(int status, std::string body) { return MgmtReply{status, std::move(body)}; }
inline MgmtReply fail(const ApiError& e) { return MgmtReply{e.status, e.body()}; }

// Runs a handler, answering a Refusal with its error, a duplicate row with 400
// and a database failure with 503.
MgmtReply guarded(const std::function<MgmtReply()>& fn);

std::optional<ApiError> string_array(const rapidjson::Value& body, const char* name, std::vector<std::string>& out);
std::string query_value(const std::map<std::string, std::string>& q, const char* name);
int64_t query_int(const std::map<std::string, std::string>& q, const char* name, int64_t fallback);

// Spend in the current period: the live value when the key is cached here.
double live_spend(KeyService& svc, const KeyRecord& k);
double live_team_spend(KeyService& svc, const TeamRecord& t);

}  // namespace tailgate::keys
