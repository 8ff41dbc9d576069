#include "server/upstream_transport.hpp"

namespace tailgate::server {

UpstreamTransport::UpstreamTransport(upstream::Client& client, const config::Config& cfg,
                                     std::shared_ptr<const ParsedBody> body, const dispatch::Plan& plan,
                                     const std::vector<std::string>& captures, Endpoint endpoint,
                                     RequestTimeouts timeouts)
    : client_(client),
      cfg_(cfg),
      body_(std::move(body)),
      endpoint_(endpoint),
      stream_(plan.stream),
      timeouts_(timeouts) {
    deployments_.reserve(plan.attempts.size());
    models_.reserve(plan.attempts.size());
    for (const auto& a : plan.attempts) {
        deployments_.push_back(a.deployment);
        const std::string_view capture = a.group < captures.size() ? std::string_view(captures[a.group]) : body_->model;
        const auto& d = cfg_.deployments[a.deployment];
        models_.push_back(config::upstream_model(d, capture));
        drops_.push_back(&d.dropped_fields);
    }
}

const char* UpstreamTransport::path_for(Endpoint e) {
    switch (e) {
        case Endpoint::Completions: return "/completions";
        case Endpoint::Embeddings: return "/embeddings";
        default: return "/chat/completions";
    }
}

upstream::Request UpstreamTransport::build(const config::Deployment& d, const config::RouterSettings& rs,
                                           Endpoint e, bool stream, std::string body, const RequestTimeouts& t) {
    const auto& u = d.upstream;
    upstream::Request req;
    req.origin = upstream::Origin{u.host, u.port, u.tls, u.ssl_verify};
    req.label = d.id;
    req.target = u.base_path;
    req.target += path_for(e);
    if (u.kind == config::ProviderKind::Azure) {
        req.target += "?api-version=";
        req.target += u.api_version;
        if (!u.api_key.empty()) req.headers.emplace_back("api-key", u.api_key.reveal());
    } else if (!u.api_key.empty()) {
        req.headers.emplace_back("Authorization", "Bearer " + u.api_key.reveal());
    }
    if (stream) req.headers.emplace_back("Accept", "text/event-stream");
    req.body = std::move(body);
    // total: request > deployment > router; first byte of a stream: stream_timeout, else total.
    config::Millis total = t.timeout ? *t.timeout : d.timeout ? *d.timeout : rs.timeout;
    std::optional<config::Millis> st = t.stream_timeout ? t.stream_timeout
                                       : d.stream_timeout ? d.stream_timeout
                                                          : rs.stream_timeout;
    req.connect_timeout = std::min(rs.connect_timeout, total);
    req.header_timeout = stream && st ? std::min(*st, total) : total;
    req.idle_timeout = total;
    req.total_timeout = total;
    return req;
}

upstream::CallPtr UpstreamTransport::start(uint32_t index, std::shared_ptr<upstream::Handler> handler) {
    const auto& d = cfg_.deployments[deployments_[index]];
    upstream::Request req =
        build(d, cfg_.router, endpoint_, stream_, body_->body_for(models_[index], *drops_[index]), timeouts_);
    req.headers.insert(req.headers.end(), forwarded_.begin(), forwarded_.end());
    return client_.start(std::move(req), std::move(handler));
}

}  // namespace tailgate::server
