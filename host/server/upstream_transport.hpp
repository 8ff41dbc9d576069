// Turns "attempt i of this plan" into an upstream HTTP request: the deployment's
// provider codec builds URL, auth and body (the model rewritten for that
// deployment); this adds the attempt's timeouts and forwarded client headers,
// and pairs the codec with the client surface for reading the response.
#pragma once

#include "config/config.hpp"
#include "dispatch/executor.hpp"
#include "server/request_body.hpp"
#include "surfaces/surface.hpp"
#include "upstream/client.hpp"

#include <memory>

namespace tailgate::server {

struct RequestTimeouts {
    std::optional<config::Millis> timeout;         // per request (extra_body)
    std::optional<config::Millis> stream_timeout;  // per request (extra_body)
};

class UpstreamTransport final : public dispatch::Transport, public std::enable_shared_from_this<UpstreamTransport> {
public:
    // captures: per routed group (AttemptSpec::group), what a '*' in a
    // deployment's upstream model stands for (RoutedPlan::captures).
    UpstreamTransport(upstream::Client& client, const config::Config& cfg, std::shared_ptr<const ParsedBody> body,
                      const dispatch::Plan& plan, const std::vector<std::string>& captures, Endpoint endpoint,
                      RequestTimeouts timeouts);
    upstream::CallPtr start(uint32_t index, std::shared_ptr<upstream::Handler> handler) override;
    const providers::Codec& codec(uint32_t index) const override;
    providers::ResponseDecoderPtr decoder(uint32_t index) const override;
    // Client headers every attempt passes on (general_settings.forward_client_headers).
    void forward(std::vector<std::pair<std::string, std::string>> headers) { forwarded_ = std::move(headers); }
    // Client headers only the attempts that pass the client's wire through get (anthropic-beta).
    void forward_native(std::vector<std::pair<std::string, std::string>> headers) {
        native_forwarded_ = std::move(headers);
    }

    // Path suffix per endpoint, e.g. "/chat/completions" (OpenAI's wire).
    static const char* path_for(Endpoint e);
    // The same for a body already built (tests): the codec's URL and auth, `body` as is.
    static upstream::Request build(const config::Deployment& d, const config::RouterSettings& rs, Endpoint e,
                                   bool stream, std::string body, const RequestTimeouts& t);
    // Builds the upstream request (exposed for tests).
    static upstream::Request build(const config::Deployment& d, const config::RouterSettings& rs, Endpoint e,
                                   bool stream, const ParsedBody& body, std::string_view model,
                                   const RequestTimeouts& t);

private:
    // What attempt `index` sends: the client's operation and body, or their chat
    // form when its deployment does not speak the surface's wire (Surface::to_chat).
    struct Sent {
        Endpoint op;
        const ParsedBody& body;
    };
    Sent sent(const providers::Codec& codec) const;
    // Builds and starts attempt `index` now (its credentials are ready).
    upstream::CallPtr start_now(uint32_t index, std::shared_ptr<upstream::Handler> handler);

    upstream::Client& client_;
    const config::Config& cfg_;
    std::shared_ptr<const ParsedBody> body_;
    std::shared_ptr<const ParsedBody> chat_;  // body_ as chat, when an attempt needs it (Surface::to_chat)
    std::vector<uint32_t> deployments_;
    std::vector<std::string> models_;  // per attempt: the model name sent upstream
    std::vector<std::pair<std::string, std::string>> forwarded_;
    std::vector<std::pair<std::string, std::string>> native_forwarded_;
    Endpoint endpoint_;
    const surfaces::Surface& surface_;
    bool stream_;
    RequestTimeouts timeouts_;
};

}  // namespace tailgate::server
