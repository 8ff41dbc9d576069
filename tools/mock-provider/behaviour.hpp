// Pure (I/O free) part of the mock provider: knobs, random decisions per
// request, routing and the OpenAI-shaped payloads it answers with.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <rapidjson/document.h>

namespace tailgate::mock {

// Every knob that can be set on the command line and changed at runtime
// through POST /mock/config. Durations are milliseconds.
struct Settings {
  double ttft_ms = 50;
  std::string ttft_dist = "fixed";  // fixed | uniform | lognormal
  double ttft_max_ms = 0;           // uniform upper bound; lognormal cap when > 0
  double ttft_sigma = 0.5;          // lognormal sigma
  double chunk_delay_ms = 10;
  int chunks = 8;
  double straggler_prob = 0;
  double straggler_mult = 20;

  double fail_rate = 0;
  int fail_status = 500;
  double fail_delay_ms = 0;        // injected errors are sent after this delay
  double retry_after = -1;         // seconds, -1 = no Retry-After header
  double retry_after_ms = -1;      // -1 = no retry-after-ms header
  double reset_before = 0;         // probability of closing without any response
  int reset_mid_stream_after = -1;  // chunk count, -1 = off
  bool stall = false;               // never answer
  int stall_mid_stream_after = -1;  // chunk count, -1 = off
  bool headers_at_ttft = false;     // stream: hold headers + role chunk until TTFT
  bool reset_after_headers = false; // RST right after the response head, before any body byte
  // Garbage responses: "" (off), non_json, html_error, bad_sse, truncated_chunked,
  // huge_body, no_done (see README.md).
  std::string garbage;
  int garbage_after = 2;            // streams: content chunks sent before the garbage
  double huge_body_mib = 65;        // size of the huge_body payload

  std::vector<std::string> models{"mock-model"};

  // The API key the provider APIs accept: the Messages API's x-api-key ("" = any
  // non-empty one) and Bedrock's Bearer API key ("" = none).
  std::string api_key;
  // Streams: an error event (in the API's own shape) instead of content chunk K, then a clean end.
  int error_event_after = -1;
  // Bedrock (bedrock.cpp): the AWS key whose SigV4 signatures are accepted ("" secret = unsigned is fine).
  std::string aws_access_key_id, aws_secret_access_key, aws_session_token;
  // Vertex (google.cpp): the PEM public key that verifies service-account JWTs
  // ("" = tokens are not checked), and the lifetime of the tokens issued.
  std::string google_public_key;
  double token_ttl_s = 3600;
};

std::string settings_to_json(const Settings& s);

// The values `garbage` accepts, "" first.
bool valid_garbage_mode(std::string_view mode);

// "50ms", "1.5s", "200us" or a bare number (milliseconds). False on garbage.
bool parse_duration_ms(std::string_view text, double& out_ms);

// Merges the members of `patch` (a JSON object) into `s`. Returns an error
// message (and leaves `s` untouched) on an unknown key or a wrong type.
std::string merge_settings(Settings& s, const rapidjson::Value& patch);

// Validates knob values; returns an error message or "".
std::string validate_settings(const Settings& s);

// Random decisions taken once when a request arrives.
struct Plan {
  bool reset_before = false;
  bool fail = false;
  bool straggler = false;
  double ttft_ms = 0;
};

Plan sample_plan(const Settings& s, std::mt19937_64& rng);

enum class Endpoint {
  chat, completions, embeddings, models, model, responses, messages, converse, token,
  moderations, images, speech, transcriptions, translations, image_edits, image_variations,  // media.hpp
  unknown
};

struct Route {
  Endpoint endpoint = Endpoint::unknown;
  std::string deployment;  // Azure /openai/deployments/{dep}/...
  std::string model_id;    // GET /models/{id}; Bedrock's /model/{id}/converse
  bool stream = false;     // Bedrock: /converse-stream
  bool vertex = false;     // Vertex's /v1/projects/{p}/locations/{l}/endpoints/openapi/...
};

// `path` is the request target without the query string.
Route route(std::string_view method, std::string_view path);

// What to send back for one request. For streams, `first` goes out with the
// headers, `steps[i]` at TTFT + i * chunk_delay, then `tail` right after the
// last step. Every string in them is one complete SSE event ("data: ...\n\n").
std::string error_body(int status, std::string_view message);

struct Reply {
  int status = 200;
  bool stream = false;
  std::string body;  // non-stream body (or the error body)
  std::vector<std::string> first;
  std::vector<std::vector<std::string>> steps;
  std::vector<std::string> tail;
  std::string model;
  // What the fault modes send, in the API's own shape (OpenAI's unless set).
  std::string end_event = "data: [DONE]\n\n";  // the tail event garbage=no_done leaves out
  std::string error_event;                      // error_event_after's event
  std::string (*error_body)(int status, std::string_view message) = &mock::error_body;
  std::string stream_content_type = "text/event-stream";
  std::string content_type = "application/json";  // of a non-stream body
};

using Headers = std::vector<std::pair<std::string, std::string>>;  // names lower-cased

// A refusal before any reply is built (a bad signature or token): its status
// (0 = authorized) and body.
struct Denial {
  int status = 0;
  std::string body;
};
Denial authorize(const Route& r, const Settings& s, std::string_view method, std::string_view target,
                 const Headers& headers, std::string_view body);

struct ReplyContext {
  const Settings& settings;
  const std::string& name;  // instance name, used in the generated words
  std::uint64_t seq;        // request number, used in ids
  const Headers* headers = nullptr;
};

// The generated answer: `chunks` words NAME-0 NAME-1 ...; piece i is word i
// with a separating space before all but the first.
std::vector<std::string> words_of(const std::string& name, int chunks);
std::string join(const std::vector<std::string>& words);
std::string piece(const std::vector<std::string>& words, std::size_t i);
int count_words(std::string_view s);

// Builds the answer to an API request. Malformed input gives a 400 reply.
Reply build_reply(const Route& r, std::string_view body, const ReplyContext& ctx);

// OpenAI-shaped error body {"error":{message,type,param,code}} (declared above, for Reply).


}  // namespace tailgate::mock
