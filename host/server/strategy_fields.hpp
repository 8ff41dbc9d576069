// What strategy plugins may read of a request (the request members added in plugin ABI 1.1),
// taken from the parsed body and the head once, before routing.
#pragma once

#include "common/key_hash.hpp"
#include "router/router.hpp"
#include "server/request_body.hpp"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tailgate::server {

// Fills info.user, max_tokens, has_tools, has_response_format and
// prompt_tokens_estimate from `body`.
// Cheap: reads the spans parse_body recorded, decodes only `user`.
void fill_strategy_fields(const ParsedBody& body, router::RequestInfo& info);

}  // namespace tailgate::server
