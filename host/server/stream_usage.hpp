// A stream's usage for spend: when the client did not ask for it
// (stream_options.include_usage), the gateway asks the upstream anyway and
// takes the usage chunk out again before the client sees it, so the client
// gets the stream it asked for and the key is charged what the provider counted.
#pragma once

#include "providers/codec.hpp"
#include "server/request_body.hpp"

namespace tailgate::server {

// Adds "include_usage": true to the body's stream_options (creating it) unless
// the client set it itself. Returns true when it did (the usage chunk is then
// the gateway's to remove).
bool inject_stream_usage(ParsedBody& body);

// Wraps a stream's decoder: SSE events of the client bytes whose chunk only
// carries usage (no choices) are left out; everything else passes as it came.
providers::ResponseDecoderPtr strip_usage_chunks(providers::ResponseDecoderPtr inner);

}  // namespace tailgate::server
