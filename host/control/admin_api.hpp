// The admin HTTP API as plain functions of (path argument, body) -> (status,
// JSON): no HTTP types here, so the server's table maps each route to one of
// these and unit tests call them directly. Every answer is JSON; errors are
// OpenAI-shaped. Nothing returned ever holds a secret (api keys are "***").
#pragma once

#include "control/control_plane.hpp"

#include <string>
#include <string_view>

namespace tailgate::control {

struct AdminRequest {
    std::string arg;       // what the route's trailing '*' matched (a deployment id, "id/drain", ...)
    std::string body;      // request body (may be empty)
    std::string key_hash;  // key_hash_prefix of the caller's key, for the change log
};

struct AdminReply {
    int status = 200;
    std::string body;
};

class AdminApi {
public:
    explicit AdminApi(ControlPlane& cp) : cp_(cp) {}
    using Handler = AdminReply (AdminApi::*)(const AdminRequest&);

    AdminReply reload(const AdminRequest&);
    AdminReply config(const AdminRequest&);
    AdminReply list_deployments(const AdminRequest&);
    AdminReply add_deployment(const AdminRequest&);
    AdminReply patch_deployment(const AdminRequest&);
    AdminReply delete_deployment(const AdminRequest&);
    AdminReply deployment_action(const AdminRequest&);  // POST {id}/drain, {id}/undrain
    AdminReply router_settings(const AdminRequest&);
    AdminReply patch_router_settings(const AdminRequest&);
    AdminReply routing_state(const AdminRequest&);
    AdminReply routing_preview(const AdminRequest&);
    // LiteLLM's model management: /model/new, /model/update, /model/delete, /model/info.
    AdminReply model_new(const AdminRequest&);
    AdminReply model_update(const AdminRequest&);
    AdminReply model_delete(const AdminRequest&);
    AdminReply model_info(const AdminRequest&);

    // For the dashboard: revision, last result, each deployment's drain state.
    AdminReply status(const AdminRequest&);

private:
    AdminReply change(Change c, bool litellm_shape);
    AdminReply update(const std::string& id, const std::string& patch, const std::string& key_hash, bool litellm);
    ControlPlane& cp_;
};

}  // namespace tailgate::control
