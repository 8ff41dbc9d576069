// Turns "attempt i of this plan" into an upstream HTTP request: URL shape per
// provider (OpenAI-compatible or Azure deployment URL), credentials, the body
// rewritten for that deployment's model, and the attempt's timeouts.
#pragma once

#include "config/config.hpp"
#include "dispatch/executor.hpp"
#include "server/request_body.hpp"
#include "upstream/client.hpp"

#include <memory>

namespace tailgate::server {

struct RequestTimeouts {
    std::optional<config::Millis> timeout;         // per request (extra_body)
    std::optional<config::Millis> stream_timeout;  // per request (extra_body)
};

class UpstreamTransport final : public dispatch::Transport {
public:
    // captures: per routed group (AttemptSpec::group), what a '*' in a
    // deployment's upstream model stands for (RoutedPlan::captures).
    UpstreamTransport(upstream::Client& client, const config::Config& cfg, std::shared_ptr<const ParsedBody> body,
                      const dispatch::Plan& plan, const std::vector<std::string>& captures, Endpoint endpoint,
                      RequestTimeouts timeouts);
    upstream::CallPtr start(uint32_t index, std::shared_ptr<upstream::Handler> handler) override;
    // Client headers every attempt passes on (general_settings.forward_client_headers).
    void forward(std::vector<std::pair<std::string, std::string>> headers) { forwarded_ = std::move(headers); }

    // Path suffix per endpoint, e.g. "/chat/completions".
    static const char* path_for(Endpoint e);
    // Builds the upstream request (exposed for tests).
    static upstream::Request build(const config::Deployment& d, const config::RouterSettings& rs, Endpoint e,
                                   bool stream, std::string body, const RequestTimeouts& t);

private:
    upstream::Client& client_;
    const config::Config& cfg_;
    std::shared_ptr<const ParsedBody> body_;
    std::vector<uint32_t> deployments_;
    std::vector<std::string> models_;  // per attempt: the model name sent upstream
    std::vector<const std::vector<std::string>*> drops_;  // per attempt: Deployment::dropped_fields
    std::vector<std::pair<std::string, std::string>> forwarded_;
    Endpoint endpoint_;
    bool stream_;
    RequestTimeouts timeouts_;
};

}  // namespace tailgate::server
