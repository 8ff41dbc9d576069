#include "plugin/abi_convert.hpp"

namespace tailgate::plugin {

static_assert(kMaxAttempts == TG_MAX_ATTEMPTS, "the host's attempt bound is the ABI's plan capacity");
static_assert(kEndpointCount == TG_ENDPOINT_IMAGE_VARIATIONS + 1, "every Endpoint has its tg_endpoint (append both)");

tg_endpoint to_abi(Endpoint e) {
    switch (e) {
        case Endpoint::Chat: return TG_ENDPOINT_CHAT;
        case Endpoint::Completions: return TG_ENDPOINT_COMPLETIONS;
        case Endpoint::Embeddings: return TG_ENDPOINT_EMBEDDINGS;
        case Endpoint::Responses: return TG_ENDPOINT_RESPONSES;
        case Endpoint::Messages: return TG_ENDPOINT_MESSAGES;
        case Endpoint::Moderations: return TG_ENDPOINT_MODERATIONS;
        case Endpoint::ImageGenerations: return TG_ENDPOINT_IMAGE_GENERATIONS;
        case Endpoint::AudioSpeech: return TG_ENDPOINT_AUDIO_SPEECH;
        case Endpoint::AudioTranscriptions: return TG_ENDPOINT_AUDIO_TRANSCRIPTIONS;
        case Endpoint::AudioTranslations: return TG_ENDPOINT_AUDIO_TRANSLATIONS;
        case Endpoint::ImageEdits: return TG_ENDPOINT_IMAGE_EDITS;
        case Endpoint::ImageVariations: return TG_ENDPOINT_IMAGE_VARIATIONS;
    }
    return TG_ENDPOINT_CHAT;
}

template <>
std::optional<Endpoint> from_abi<Endpoint>(uint32_t raw) {
    switch (raw) {
        case TG_ENDPOINT_CHAT: return Endpoint::Chat;
        case TG_ENDPOINT_COMPLETIONS: return Endpoint::Completions;
        case TG_ENDPOINT_EMBEDDINGS: return Endpoint::Embeddings;
        case TG_ENDPOINT_RESPONSES: return Endpoint::Responses;
        case TG_ENDPOINT_MESSAGES: return Endpoint::Messages;
        case TG_ENDPOINT_MODERATIONS: return Endpoint::Moderations;
        case TG_ENDPOINT_IMAGE_GENERATIONS: return Endpoint::ImageGenerations;
        case TG_ENDPOINT_AUDIO_SPEECH: return Endpoint::AudioSpeech;
        case TG_ENDPOINT_AUDIO_TRANSCRIPTIONS: return Endpoint::AudioTranscriptions;
        case TG_ENDPOINT_AUDIO_TRANSLATIONS: return Endpoint::AudioTranslations;
        case TG_ENDPOINT_IMAGE_EDITS: return Endpoint::ImageEdits;
        case TG_ENDPOINT_IMAGE_VARIATIONS: return Endpoint::ImageVariations;
    }
    return std::nullopt;
}

tg_launch to_abi(Launch l) {
    switch (l) {
        case Launch::AtStart: return TG_LAUNCH_AT_START;
        case Launch::AfterDelay: return TG_LAUNCH_AFTER_DELAY;
        case Launch::OnFailure: return TG_LAUNCH_ON_FAILURE;
    }
    return TG_LAUNCH_AT_START;
}

template <>
std::optional<Launch> from_abi<Launch>(uint32_t raw) {
    switch (raw) {
        case TG_LAUNCH_AT_START: return Launch::AtStart;
        case TG_LAUNCH_AFTER_DELAY: return Launch::AfterDelay;
        case TG_LAUNCH_ON_FAILURE: return Launch::OnFailure;
    }
    return std::nullopt;
}

tg_event_type to_abi(EventType t) {
    switch (t) {
        case EventType::Started: return TG_EVENT_STARTED;
        case EventType::FirstByte: return TG_EVENT_FIRST_BYTE;
        case EventType::Success: return TG_EVENT_SUCCESS;
        case EventType::Failure: return TG_EVENT_FAILURE;
        case EventType::Cancelled: return TG_EVENT_CANCELLED;
        case EventType::Refused: return TG_EVENT_REFUSED;
        case EventType::ShadowDone: return TG_EVENT_SHADOW_DONE;
    }
    return TG_EVENT_STARTED;
}

template <>
std::optional<EventType> from_abi<EventType>(uint32_t raw) {
    switch (raw) {
        case TG_EVENT_STARTED: return EventType::Started;
        case TG_EVENT_FIRST_BYTE: return EventType::FirstByte;
        case TG_EVENT_SUCCESS: return EventType::Success;
        case TG_EVENT_FAILURE: return EventType::Failure;
        case TG_EVENT_CANCELLED: return EventType::Cancelled;
        case TG_EVENT_REFUSED: return EventType::Refused;
        case TG_EVENT_SHADOW_DONE: return EventType::ShadowDone;
    }
    return std::nullopt;
}

tg_error_class to_abi(ErrorClass c) {
    switch (c) {
        case ErrorClass::None: return TG_ERRC_NONE;
        case ErrorClass::Connect: return TG_ERRC_CONNECT;
        case ErrorClass::Timeout: return TG_ERRC_TIMEOUT;
        case ErrorClass::RateLimit: return TG_ERRC_RATE_LIMIT;
        case ErrorClass::Server: return TG_ERRC_SERVER;
        case ErrorClass::Auth: return TG_ERRC_AUTH;
        case ErrorClass::NotFound: return TG_ERRC_NOT_FOUND;
        case ErrorClass::BadRequest: return TG_ERRC_BAD_REQUEST;
        case ErrorClass::Protocol: return TG_ERRC_PROTOCOL;
        case ErrorClass::ContextWindow: return TG_ERRC_CONTEXT_WINDOW;
    }
    return TG_ERRC_NONE;
}

template <>
std::optional<ErrorClass> from_abi<ErrorClass>(uint32_t raw) {
    switch (raw) {
        case TG_ERRC_NONE: return ErrorClass::None;
        case TG_ERRC_CONNECT: return ErrorClass::Connect;
        case TG_ERRC_TIMEOUT: return ErrorClass::Timeout;
        case TG_ERRC_RATE_LIMIT: return ErrorClass::RateLimit;
        case TG_ERRC_SERVER: return ErrorClass::Server;
        case TG_ERRC_AUTH: return ErrorClass::Auth;
        case TG_ERRC_NOT_FOUND: return ErrorClass::NotFound;
        case TG_ERRC_BAD_REQUEST: return ErrorClass::BadRequest;
        case TG_ERRC_PROTOCOL: return ErrorClass::Protocol;
        case TG_ERRC_CONTEXT_WINDOW: return ErrorClass::ContextWindow;
    }
    return std::nullopt;
}

tg_cancel_reason to_abi(CancelReason r) {
    switch (r) {
        case CancelReason::None: return TG_CANCEL_NONE;
        case CancelReason::Lost: return TG_CANCEL_LOST;
        case CancelReason::ClientGone: return TG_CANCEL_CLIENT_GONE;
    }
    return TG_CANCEL_NONE;
}

template <>
std::optional<CancelReason> from_abi<CancelReason>(uint32_t raw) {
    switch (raw) {
        case TG_CANCEL_NONE: return CancelReason::None;
        case TG_CANCEL_LOST: return CancelReason::Lost;
        case TG_CANCEL_CLIENT_GONE: return CancelReason::ClientGone;
    }
    return std::nullopt;
}

tg_health to_abi(Health h) {
    switch (h) {
        case Health::Healthy: return TG_HEALTH_HEALTHY;
        case Health::Cooling: return TG_HEALTH_COOLING;
        case Health::HalfOpen: return TG_HEALTH_HALF_OPEN;
    }
    return TG_HEALTH_HEALTHY;
}

template <>
std::optional<Health> from_abi<Health>(uint32_t raw) {
    switch (raw) {
        case TG_HEALTH_HEALTHY: return Health::Healthy;
        case TG_HEALTH_COOLING: return Health::Cooling;
        case TG_HEALTH_HALF_OPEN: return Health::HalfOpen;
    }
    return std::nullopt;
}

tg_latency_summary to_abi(const LatencySummary& s) {
    return tg_latency_summary{s.samples, s.mean_ms, s.p50_ms, s.p90_ms, s.p95_ms, s.p99_ms};
}

LatencySummary from_abi(const tg_latency_summary& s) {
    return LatencySummary{s.samples, s.mean_ms, s.p50_ms, s.p90_ms, s.p95_ms, s.p99_ms};
}

tg_deployment_stats to_abi(const DeploymentStats& s) {
    tg_deployment_stats out{};
    out.struct_size = sizeof out;
    out.in_flight = s.in_flight;
    out.attempts = s.attempts;
    out.successes = s.successes;
    out.failures = s.failures;
    out.health = to_abi(s.health);
    out.cooldown_until_ms = s.cooldown_until_ms;
    out.ttft = to_abi(s.ttft);
    out.total = to_abi(s.total);
    return out;
}

}  // namespace tailgate::plugin
