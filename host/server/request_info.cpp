#include "server/request_info.hpp"

#include "common/json_flatten.hpp"
#include "server/strategy_fields.hpp"

namespace tailgate::server {

router::RequestInfo request_info(const ParsedBody& body, Endpoint endpoint, const std::string& request_id,
                                 const RequestTimeouts& timeouts) {
    router::RequestInfo info;
    info.request_id = request_id;
    info.model_group = body.model;
    info.endpoint = endpoint;
    info.stream = body.stream;
    info.overrides_json = body.overrides_json;
    if (body.overrides_json.size() > 2) info.overrides = flatten_json_object(body.overrides_json);  // not "{}"
    info.metadata_json = body.metadata_json;
    info.num_retries = body.num_retries;
    info.timeout = timeouts.timeout;
    info.fallbacks = body.fallbacks;
    info.strategies = body.strategies;
    fill_strategy_fields(body, info);  // user, max_tokens, tools, ... (what strategies may read)
    return info;
}

}  // namespace tailgate::server
