// The host's own words for what a request is and what happens to its attempts.
//
// The plugin ABI (<tailgate/plugin_abi.h>) has C equivalents of most of these;
// the host never uses those inside, only at the plugin boundary, where
// host/plugin/abi_convert.hpp translates both ways. So a new endpoint kind or
// a new attempt state is a change here, and an ABI change only if plugins must
// see it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tailgate {

// The API a client request came in on.
// Append only: plugins see these values through tg_endpoint (plugin/abi_convert.cpp).
enum class Endpoint : uint8_t {
    Chat,
    Completions,
    Embeddings,
    Responses,  // OpenAI's Responses API (/v1/responses)
    Messages,   // Anthropic's Messages API (/v1/messages)
    // OpenAI's other endpoints, passed through to OpenAI-wire deployments
    // (providers/operations.hpp says how each is sent and read).
    Moderations,          // /v1/moderations
    ImageGenerations,     // /v1/images/generations
    AudioSpeech,          // /v1/audio/speech: binary audio, streamed
    AudioTranscriptions,  // /v1/audio/transcriptions: multipart/form-data
    AudioTranslations,    // /v1/audio/translations: multipart/form-data
    ImageEdits,           // /v1/images/edits: multipart/form-data
    ImageVariations,      // /v1/images/variations: multipart/form-data
};
inline constexpr size_t kEndpointCount = static_cast<size_t>(Endpoint::ImageVariations) + 1;

// How an attempt of a plan is launched (the executor's rules, executor.hpp).
enum class Launch : uint8_t {
    AtStart,     // with attempt 0 (race)
    AfterDelay,  // `delay` after the previous launch unless committed (hedge)
    OnFailure,   // once nothing runs and the last failure was retryable (retry/fallback)
};

// What happened to one attempt.
enum class EventType : uint8_t {
    Started,
    FirstByte,   // first content byte of a stream
    Success,
    Failure,
    Cancelled,
    Refused,     // a hedge not launched: its strategy's admit() said no
    ShadowDone,  // a lost primary kept running as a latency sample finished
};

// Why an attempt failed. Metrics label and index counters by it (kErrorClassCount).
enum class ErrorClass : uint8_t {
    None,
    Connect,        // DNS / TCP / TLS
    Timeout,        // connect, first-byte, first-content or total
    RateLimit,      // 429
    Server,         // 5xx, 409, or an error event inside a stream
    Auth,           // 401 / 403
    NotFound,       // 404
    BadRequest,     // other 4xx: the request's fault, never retried
    Protocol,       // an upstream response we cannot use
    ContextWindow,  // the prompt is too long for the model
};
inline constexpr size_t kErrorClassCount = static_cast<size_t>(ErrorClass::ContextWindow) + 1;

// Label of an error class in metrics and logs ("server", "timeout", ...; "other" for None).
const char* error_class_name(ErrorClass c);

// Why the host cancelled an attempt.
enum class CancelReason : uint8_t {
    None,
    Lost,        // another attempt committed first (its latency is then a lower bound)
    ClientGone,  // the client disconnected
};

// A deployment's health as the health strategy last published it.
enum class Health : uint8_t { Healthy, Cooling, HalfOpen };
inline constexpr size_t kHealthCount = static_cast<size_t>(Health::HalfOpen) + 1;

// Label of a health state in metrics ("healthy", "cooling", "half_open").
const char* health_name(Health h);

// Latency of one deployment for one metric, in milliseconds; samples == 0: no data.
struct LatencySummary {
    uint64_t samples = 0;
    double mean_ms = 0;
    double p50_ms = 0;
    double p90_ms = 0;
    double p95_ms = 0;
    double p99_ms = 0;
};

// A consistent snapshot of one deployment's live state (router::DeploymentState).
struct DeploymentStats {
    uint32_t in_flight = 0;
    uint64_t attempts = 0;
    uint64_t successes = 0;
    uint64_t failures = 0;  // cancelled attempts excluded
    Health health = Health::Healthy;
    int64_t cooldown_until_ms = 0;  // router clock; 0 when not cooling
    LatencySummary ttft;             // time to first content byte (streams)
    LatencySummary total;            // total latency (non-stream)
};

// Most models a client may list in one request ("a,b,c"), and most attempts a
// strategy chain may plan for one group. The plugin ABI has the same bound
// (abi_convert.cpp checks they agree).
inline constexpr uint32_t kMaxAttempts = 16;

}  // namespace tailgate
