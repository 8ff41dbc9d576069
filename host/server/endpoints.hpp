// The endpoint table's vocabulary and the pure steps of dispatching a request
// to a row: path normalisation, matching, 404/405, who needs the key and which
// key a request presents. No Poco, no sockets: unit-tested on their own.
//
// The rows themselves (kRoutes) live next to their handlers in gateway.cpp;
// endpoint_routes() exposes them read-only, for tests and listings.
#pragma once

#include "common/api_error.hpp"
#include "common/vocabulary.hpp"
#include "control/admin_api.hpp"
#include "server/gateway.hpp"

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace tailgate::server {

struct Call;  // one request as a handler sees it (gateway.cpp)

// Who may call an endpoint.
enum class Access {
    Open,           // probes
    Key,            // the master key (when one is set)
    Observability,  // the master key when general_settings.metrics_auth
    Admin,          // the master key, always (refused when none is set)
    Dashboard,      // the master key when one is set (the page itself has a login form)
};

// A row of the endpoint table: adding an endpoint is a handler plus a row.
struct EndpointRoute {
    const char* method;
    // Query and trailing '/' stripped. A final '*' matches the (non-empty) rest; a '*'
    // inside, one non-empty segment ("/openai/deployments/*/chat/completions").
    std::string_view path;
    Access access;
    void (Gateway::Impl::*handler)(Call&);
    bool v1 = false;       // also served under /v1 (LiteLLM accepts both)
    Endpoint api = Endpoint::Chat;
    bool metrics = false;  // only with general_settings.metrics on (else an unknown path)
    control::AdminApi::Handler admin = nullptr;  // admin routes (handler Impl::admin): the function serving it
};

std::span<const EndpointRoute> endpoint_routes();

// The request target without its query ("/v1/models?x" -> "/v1/models").
std::string_view path_only(std::string_view uri);
// What the table matches: path_only, then trailing '/' removed (the root stays "/").
std::string_view route_path(std::string_view uri);

// Whether `route` serves `path`; `arg` gets what its '*' matched.
bool path_matches(const EndpointRoute& route, std::string_view path, std::string& arg);

struct RouteMatch {
    const EndpointRoute* route = nullptr;  // null: see allowed
    std::string arg;                       // what the row's '*' matched
    std::string allowed;                   // no row for this method: the methods that have one ("GET, POST")
};
RouteMatch find_route(std::span<const EndpointRoute> table, std::string_view method, std::string_view path,
                      bool metrics_on);

// The answer when find_route found no row: 405 (set `Allow: allowed`) when the
// path exists for other methods, else 404. `uri` is quoted, cut to 200 bytes.
ApiError unmatched_route(const RouteMatch& m, std::string_view method, std::string_view uri);

bool needs_key(Access access, bool metrics_auth);

// A path segment (a route's '*') with its %XX escapes decoded; std::nullopt when
// an escape is malformed or it decodes to a control character or '/'.
std::optional<std::string> percent_decoded_segment(std::string_view segment);

// The key a request presents, in LiteLLM's order: "Authorization: Bearer k",
// else x-litellm-api-key (with or without "Bearer "), else api-key (Azure's),
// else x-api-key (Anthropic's). has_litellm_key: whether the x-litellm-api-key
// header is present at all.
std::string presented_key(std::string_view authorization, bool has_litellm_key, std::string_view litellm_key,
                          std::string_view api_key, std::string_view x_api_key = {});
// Compares without an early exit, so timing does not reveal the key prefix.
// An empty `key` matches nothing.
bool constant_time_equal(std::string_view presented, std::string_view key);

}  // namespace tailgate::server
