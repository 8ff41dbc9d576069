// LiteLLM's key, team and spend management endpoints, as plain functions of
// (path argument, query, body) -> (status, JSON): no HTTP types here; the
// server's table maps each route to one (master key only). Every error is
// OpenAI-shaped. A key appears in an answer only when it is created or
// regenerated ("key"); everything else names keys by token (their SHA-256).
//
//   POST /key/generate      POST /key/update     POST /key/delete    GET /key/info?key=
//   GET  /key/list          POST /key/regenerate (or /key/{key}/regenerate)
//   POST /key/block         POST /key/unblock
//   POST /team/new          POST /team/update    POST /team/delete   GET /team/info?team_id=
//   GET  /team/list
//   GET  /spend/logs        GET  /global/spend/report
#pragma once

#include "keys/service.hpp"

#include <string>

namespace tailgate::keys {

struct MgmtRequest {
    std::string arg;    // what the route's '*' matched
    std::string query;  // after '?', undecoded
    std::string body;
};

struct MgmtReply {
    int status = 200;
    std::string body;
};

class KeyApi {
public:
    explicit KeyApi(KeyService& svc) : svc_(svc) {}
    using Handler = MgmtReply (KeyApi::*)(const MgmtRequest&);

    MgmtReply key_generate(const MgmtRequest&);
    MgmtReply key_info(const MgmtRequest&);
    MgmtReply key_update(const MgmtRequest&);
    MgmtReply key_delete(const MgmtRequest&);
    MgmtReply key_list(const MgmtRequest&);
    MgmtReply key_regenerate(const MgmtRequest&);
    MgmtReply key_block(const MgmtRequest&);
    MgmtReply key_unblock(const MgmtRequest&);

    MgmtReply team_new(const MgmtRequest&);
    MgmtReply team_info(const MgmtRequest&);
    MgmtReply team_update(const MgmtRequest&);
    MgmtReply team_delete(const MgmtRequest&);
    MgmtReply team_list(const MgmtRequest&);

    MgmtReply spend_logs(const MgmtRequest&);
    MgmtReply global_spend_report(const MgmtRequest&);

private:
    MgmtReply set_blocked(const MgmtRequest& r, bool blocked);
    KeyService& svc_;
};

}  // namespace tailgate::keys
