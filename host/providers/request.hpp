// The internal request: what a client surface (surfaces/) parsed from the
// client's body, and what a codec builds the upstream body from.
//
// The client's members are kept as bytes, not a DOM: an OpenAI-wire codec
// forwards them verbatim except `model` (the deployment's) and the dropped
// fields, spliced once per attempt; a translating codec reads the spans it needs.
#pragma once

#include "providers/multipart.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tailgate::providers {

// What a surface keeps of a request beyond the forwarded members, for its own
// renderer (e.g. the Responses API's echoed fields and the response id).
struct SurfaceContext {
    virtual ~SurfaceContext() = default;
};

struct ParsedBody {
    std::string model;          // as sent (may be a comma list)
    bool stream = false;
    bool fastest_response = false;
    std::optional<int> num_retries;
    std::optional<double> timeout_s;
    std::optional<double> stream_timeout_s;
    std::optional<std::vector<std::string>> fallbacks;  // model groups, in order
    std::vector<std::string> strategies;                 // per-request chain
    std::string overrides_json = "{}";  // gateway-only fields, as a JSON object
    std::string metadata_json = "{}";
    // The first field naming an upstream or its credentials (api_key, api_base,
    // base_url, ...), top level or inside extra_body; "" when none. The gateway
    // refuses such a request unless general_settings.allow_client_side_credentials.
    std::string client_credential;
    // The forwarded members without `model`, comma-joined, no braces: `"messages":[...],"stream":true`.
    std::string members;
    // Where each of them lies in `members` (key, [begin, end)), for dropping some per deployment.
    struct Span {
        std::string key;
        size_t begin = 0, end = 0;
    };
    std::vector<Span> spans;

    // A member's value as JSON text (`members` holds `"key":value`).
    std::string_view value_of(const Span& span) const;
    // The first member named `key`; null when absent.
    const Span* find(std::string_view key) const;

    // Surfaces other than chat also give the request as a chat completions body,
    // sent to deployments that do not speak their wire (Codec::wire_for): here,
    // made at parse time (Responses), or on demand by Surface::to_chat (Messages,
    // only for a plan with such a deployment). Null when there is none, with the
    // reason in `as_chat_error` when the request cannot be put that way.
    std::shared_ptr<const ParsedBody> as_chat;
    std::string as_chat_error;
    std::shared_ptr<const SurfaceContext> context;  // the surface's own; may be null

    // A multipart/form-data request (audio transcriptions): the client's form,
    // forwarded as it came with its `model` field rewritten; `members` is then empty.
    std::shared_ptr<const multipart::Form> form;
    // `model` was absent and is the operation's default group (moderations).
    bool model_defaulted = false;
    // The Content-Type of the upstream body: "" for JSON, the form's otherwise.
    std::string content_type() const { return form ? form->content_type() : std::string(); }

    // The OpenAI-wire upstream body for one deployment; top-level fields named in
    // `drop` are left out (LiteLLM's drop_params / additional_drop_params). A
    // form: the client's bytes with the model field replaced (`drop` does not apply).
    std::string body_for(std::string_view upstream_model, const std::vector<std::string>& drop = {}) const;
};

}  // namespace tailgate::providers
