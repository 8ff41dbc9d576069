// What routing needs from a parsed API request, built by one function for
// every path that routes (one model, a race, every result of a model list),
// so per-request overrides cannot be honoured on one path and lost on another.
#pragma once

#include "common/vocabulary.hpp"
#include "router/router.hpp"
#include "server/request_body.hpp"
#include "server/upstream_transport.hpp"

#include <string>

namespace tailgate::server {

// model_group is the body's model as sent; a caller routing one entry of a
// model list, or a race, sets model_group / race_groups afterwards.
router::RequestInfo request_info(const ParsedBody& body, Endpoint endpoint, const std::string& request_id,
                                 const RequestTimeouts& timeouts);

}  // namespace tailgate::server
