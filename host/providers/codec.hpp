// The provider codec seam: everything the gateway knows about one upstream API
// family — how to address and authenticate a call, how to shape its body, and
// how to read what comes back — behind one interface. Dispatch (commit rule,
// race/hedge, metrics) sees only the normalized summary a decoder returns.
//
// Adding a provider:
//   1. a directory host/providers/<name>/ with a Codec subclass (see openai/ for a
//      pass-through codec, azure/ for one that only changes URL and auth);
//   2. one line in kProviders (providers/registry.cpp): the config prefix, the codec,
//      the default api_base, the API-key environment variables.
// Nothing in dispatch, router or server changes. A codec whose upstream speaks
// another wire format (Anthropic Messages, Gemini, Bedrock) decodes its frames
// into Events and hands them to the EventSink it was given: the client surface's
// renderer, which writes OpenAI-shaped bytes (surfaces/openai/). When the wire
// formats match, no sink is given and the upstream's bytes pass through as they are.
#pragma once

#include "common/vocabulary.hpp"
#include "providers/request.hpp"
#include "upstream/client.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tailgate::providers {

// A wire format: what bytes look like on one side of the gateway. Same wire on
// both sides = pass-through. (A codec for a new wire adds its value here.)
// OpenAI is chat completions (and the other OpenAI endpoints); OpenAIResponses is
// OpenAI's Responses API, which only some OpenAI-wire providers serve.
enum class Wire : uint8_t { OpenAI, Anthropic, Gemini, Bedrock, OpenAIResponses };

// An upstream's error, normalized: from an error status (Codec::decode_error) or
// an error event inside a stream.
struct UpstreamError {
    ErrorClass error_class = ErrorClass::None;
    int http_status = 0;          // 0 inside a stream
    std::string message;          // scrubbed of credentials; never the raw body
    int64_t retry_after_ms = -1;  // -1: the upstream did not say
};

// Token counts; -1 when the upstream did not report them. prompt_tokens is the
// whole input (OpenAI's sense), cache reads and writes included.
struct Usage {
    int64_t prompt_tokens = -1;
    int64_t completion_tokens = -1;
    int64_t cached_tokens = -1;          // of prompt_tokens, read from the provider's prompt cache
    int64_t cache_creation_tokens = -1;  // of prompt_tokens, written to it (Anthropic bills them apart)
};

// One normalized event. Views point into the decoder's parse of the current
// frame and are valid only during EventSink::on_event.
struct Event {
    // Reasoning: a model's thinking (chat's reasoning_content, Messages' thinking blocks).
    enum class Kind : uint8_t { Start, Content, ToolCall, Usage, Finish, Error, Done, Reasoning };
    Kind kind = Kind::Content;
    uint32_t choice = 0;          // which choice (n > 1)
    std::string_view text;        // Content, Reasoning: the delta; Finish: finish_reason; Start: response id
    std::string_view model;       // Start: the upstream's model name
    struct ToolCall {
        uint32_t index = 0;
        std::string_view id, name, arguments;  // arguments: a fragment of the JSON text
    } tool;
    Usage usage;                  // Usage
    const UpstreamError* error = nullptr;  // Error
};

inline Event make_event(Event::Kind kind, uint32_t choice = 0) {
    Event e;
    e.kind = kind;
    e.choice = choice;
    return e;
}

// The Error event of a stream's error; `err` is the decoder's, kept for stream_error().
inline Event error_event(const UpstreamError& err) {
    Event e = make_event(Event::Kind::Error);
    e.error = &err;
    return e;
}

// Receives decoded events; a surface's renderer (surfaces/) writes client bytes from them.
class EventSink {
public:
    virtual ~EventSink() = default;
    virtual void on_event(const Event& e) = 0;
    // The client bytes rendered since the last take (appended to `out`).
    virtual void take(std::string& out) = 0;
};
using EventSinkPtr = std::unique_ptr<EventSink>;

// What one feed of a stream decoded to: the summary dispatch needs, and the
// bytes for the client. Flags cover only the complete frames of this feed.
struct Decoded {
    bool content = false;    // a content or tool-call delta: the commit point of a race/hedge
    bool done = false;       // the upstream's end-of-stream marker
    bool malformed = false;  // a frame the client could not parse; decoding stopped there
    const UpstreamError* error = nullptr;  // an error event (the first one); owned by the decoder
    // The complete frames up to a malformed one, as the client gets them: a view
    // of the fed bytes (pass-through) or of the decoder's own buffer. Valid until
    // the next feed and while the fed bytes live.
    std::string_view client;
};

// What a complete 2xx body decoded to.
struct BodyDecoded {
    bool ok = false;      // false: not a response the client could use (e.g. not JSON)
    Usage usage;
    std::string problem;  // why not ok, for the error message
};

// Reads one attempt's response. Stateful: one per attempt.
class ResponseDecoder {
public:
    virtual ~ResponseDecoder() = default;
    // Streams: the next bytes; frames may be split anywhere. After a malformed
    // frame, later feeds decode nothing.
    virtual Decoded feed(std::string_view bytes) = 0;
    // Bytes of an incomplete frame held back (not in any `client` yet).
    virtual size_t pending() const = 0;
    virtual bool saw_done() const = 0;
    // What saw_done() waits for, for error messages ("[DONE]", "response.completed").
    virtual std::string_view end_marker() const { return "[DONE]"; }
    virtual const UpstreamError* stream_error() const = 0;  // the first error event, if any
    virtual const std::string& malformed_excerpt() const = 0;
    virtual Usage usage() const = 0;  // the last usage a stream reported
    // Non-stream: a complete 2xx body. A translating decoder rewrites `body` into
    // the client's wire format in place; pass-through leaves it untouched.
    virtual BodyDecoded decode_body(std::string& body) = 0;
};
using ResponseDecoderPtr = std::unique_ptr<ResponseDecoder>;

// What a codec keeps per deployment beyond the Target's strings (AWS keys and
// region, a service account's access-token source). Made once at config load
// (Codec::credentials) and shared, immutable or internally synchronized, by
// every request to the deployment.
class Credentials {
public:
    virtual ~Credentials() = default;
    // Whether a request can be built now. When not (an access token still being
    // fetched), `wake` is called once, from another thread, when it can be built
    // or the fetch failed (then `unavailable()` says why).
    virtual bool ready(std::function<void()> wake) const {
        (void)wake;
        return true;
    }
    // Why requests cannot be built, "" when they can.
    virtual std::string unavailable() const { return {}; }
    // Secret values to scrub from logs and messages, besides the api_key.
    virtual std::vector<std::string> secrets() const { return {}; }
    // The deployment is about to serve: start what the first request would wait for.
    virtual void warm() const {}
};
using CredentialsPtr = std::shared_ptr<const Credentials>;

// A deployment's provider-specific settings at config load: litellm_params
// values (os.environ/ resolved) and the environment. Valid during the call only.
struct DeploymentParams {
    std::string_view upstream_model;
    std::string_view api_key;  // the deployment's (config or environment), "" when none
    std::function<std::optional<std::string>(const std::string& key)> param;  // litellm_params.<key>
    std::function<std::optional<std::string>(const std::string& name)> env;   // an environment variable
};

// Where and how to reach one deployment: views of its config, resolved at load.
struct Target {
    bool tls = true;
    std::string_view host;
    std::string_view port;
    std::string_view base_path;    // path prefix without trailing '/', e.g. "/v1"
    std::string_view api_version;  // providers that version their API in the URL
    std::string_view api_key;      // "" when none
    bool ssl_verify = true;
    const Credentials* credentials = nullptr;  // the codec's own (Codec::credentials), or null
};

// Thrown by Codec::build for a request the upstream's API cannot express (a
// Bedrock deployment asked for several choices, an image by http URL): nothing
// is sent, and the attempt fails as that upstream's 400 with this message.
struct RequestRefused : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// One upstream call to build.
struct CallSpec {
    const Target& target;
    Endpoint op;
    bool stream = false;
    std::string_view model;                        // the upstream model name
    const ParsedBody& request;                     // the client's request, parsed once
    const std::vector<std::string>& dropped;       // top-level fields to leave out
};

class Codec {
public:
    virtual ~Codec() = default;
    virtual std::string_view name() const = 0;
    virtual Wire wire() const = 0;
    // The wire this codec speaks for a client operation. When it differs from the
    // client surface's, the gateway translates: a surface that gives its request
    // in chat form too (ParsedBody::as_chat) is sent as chat completions, and the
    // decoded events are rendered by the surface (surfaces/surface.hpp).
    virtual Wire wire_for(Endpoint op) const {
        (void)op;
        return wire();
    }

    // Config time: checks and completes a deployment's address (e.g. Azure's
    // deployment path and default api-version). Returns an error message, or "".
    virtual std::string resolve(std::string& base_path, std::string& api_version,
                                std::string_view upstream_model) const {
        (void)base_path, (void)api_version, (void)upstream_model;
        return {};
    }

    // Whether the upstream can answer a client operation at all, natively or
    // through chat (Anthropic has no embeddings). A plan with a deployment that
    // cannot is refused before anything is sent.
    virtual bool serves(Endpoint op) const {
        (void)op;
        return true;
    }

    // Config time, for providers whose address or auth is more than api_base and
    // api_key: the api_base to use when the deployment names none ("" = required;
    // the registry's default_api_base comes first), and the codec's credentials
    // (null when it needs none; `error` set when they are missing or invalid).
    virtual std::string default_base(const DeploymentParams& p) const {
        (void)p;
        return {};
    }
    virtual CredentialsPtr credentials(const DeploymentParams& p, std::string& error) const {
        (void)p, (void)error;
        return nullptr;
    }

    // Request path: fills origin, target (path + query), headers incl. auth, and body.
    // Timeouts and forwarded client headers are the caller's.
    virtual void build(const CallSpec& call, upstream::Request& out) const = 0;

    // A decoder for one attempt. `sink` (may be null) renders client bytes when
    // this codec's wire differs from the client's; null means pass-through.
    virtual ResponseDecoderPtr decoder(EventSinkPtr sink) const = 0;
    // The same for the operation the call was built for (a codec that reads
    // another API's responses for some operations, e.g. OpenAI's Responses API).
    virtual ResponseDecoderPtr decoder(Endpoint op, EventSinkPtr sink) const {
        (void)op;
        return decoder(std::move(sink));
    }
    // The same, knowing the model the attempt asked for (for upstreams whose
    // responses do not name it, e.g. Bedrock). What the transport calls.
    virtual ResponseDecoderPtr decoder_for(Endpoint op, EventSinkPtr sink, std::string_view model) const {
        (void)model;
        return decoder(op, std::move(sink));
    }

    // An error status: its class, message and retry-after.
    virtual UpstreamError decode_error(const upstream::ResponseHead& head, std::string_view body) const = 0;
};

// Retry-After / retry-after-ms in milliseconds (capped at one hour), -1 when absent.
int64_t retry_after_ms(const upstream::ResponseHead& head);

// True for classes worth another attempt.
bool is_retryable(ErrorClass c);

// A printable start of a body, for error messages.
std::string excerpt(std::string_view body);

}  // namespace tailgate::providers
