#include "server/upstream_transport.hpp"

#include "providers/openai/codec.hpp"
#include "server/stream_usage.hpp"

namespace tailgate::server {

UpstreamTransport::UpstreamTransport(upstream::Client& client, const config::Config& cfg,
                                     std::shared_ptr<const ParsedBody> body, const dispatch::Plan& plan,
                                     const std::vector<std::string>& captures, Endpoint endpoint,
                                     RequestTimeouts timeouts)
    : client_(client),
      cfg_(cfg),
      body_(std::move(body)),
      endpoint_(endpoint),
      surface_(surfaces::surface_for(endpoint)),
      stream_(plan.stream),
      timeouts_(timeouts) {
    deployments_.reserve(plan.attempts.size());
    models_.reserve(plan.attempts.size());
    for (const auto& a : plan.attempts) {
        deployments_.push_back(a.deployment);
        const std::string_view capture = a.group < captures.size() ? std::string_view(captures[a.group]) : body_->model;
        models_.push_back(config::upstream_model(cfg_.deployments[a.deployment], capture));
        if (!chat_ && !surfaces::native(surface_, config::codec_of(cfg_.deployments[a.deployment].upstream)))
            chat_ = surface_.to_chat(*body_);  // once, on the pool thread, and only when a deployment needs it
    }
}

const char* UpstreamTransport::path_for(Endpoint e) {
    return providers::openai::Codec::path_for(e);
}

upstream::Request UpstreamTransport::build(const config::Deployment& d, const config::RouterSettings& rs,
                                           Endpoint e, bool stream, const ParsedBody& body, std::string_view model,
                                           const RequestTimeouts& t) {
    upstream::Request req;
    const providers::Target target = d.upstream.target();
    config::codec_of(d.upstream).build(providers::CallSpec{target, e, stream, model, body, d.dropped_fields},
                                       req);
    req.label = d.id;
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

upstream::Request UpstreamTransport::build(const config::Deployment& d, const config::RouterSettings& rs,
                                           Endpoint e, bool stream, std::string body, const RequestTimeouts& t) {
    upstream::Request req = build(d, rs, e, stream, ParsedBody{}, d.upstream.model, t);
    req.body = std::move(body);
    return req;
}

bool UpstreamTransport::asks_usage(uint32_t index) const {
    if (!usage_body_) return false;
    const auto& d = cfg_.deployments[deployments_[index]];
    const providers::Codec& c = config::codec_of(d.upstream);
    if (sent(c).op != endpoint_) return false;  // translated to another API: its own usage
    return c.name() == "openai" || (c.name() == "azure" && d.upstream.api_version >= "2024-09-01");
}

UpstreamTransport::Sent UpstreamTransport::sent(const providers::Codec& codec) const {
    if (chat_ && !surfaces::native(surface_, codec)) return {Endpoint::Chat, *chat_};
    return {endpoint_, *body_};
}

upstream::CallPtr UpstreamTransport::start(uint32_t index, std::shared_ptr<upstream::Handler> handler) {
    const auto& d = cfg_.deployments[deployments_[index]];
    const Sent s = sent(codec(index));
    const ParsedBody& body = asks_usage(index) ? *usage_body_ : s.body;
    upstream::Request req = build(d, cfg_.router, s.op, stream_, body, models_[index], timeouts_);
    req.headers.insert(req.headers.end(), forwarded_.begin(), forwarded_.end());
    if (!native_forwarded_.empty() && surfaces::native(surface_, codec(index)))
        req.headers.insert(req.headers.end(), native_forwarded_.begin(), native_forwarded_.end());
    return client_.start(std::move(req), std::move(handler));
}

const providers::Codec& UpstreamTransport::codec(uint32_t index) const {
    return config::codec_of(cfg_.deployments[deployments_[index]].upstream);
}

providers::ResponseDecoderPtr UpstreamTransport::decoder(uint32_t index) const {
    const providers::Codec& c = codec(index);
    auto d = c.decoder(sent(c).op, surfaces::sink_for(surface_, c, *body_, stream_));
    return stream_ && asks_usage(index) ? strip_usage_chunks(std::move(d)) : std::move(d);
}

}  // namespace tailgate::server
