#include "server/upstream_transport.hpp"

#include "common/api_error.hpp"
#include "providers/openai/codec.hpp"

#include <boost/asio/post.hpp>

#include <atomic>
#include <mutex>

namespace tailgate::server {

namespace {

// An attempt whose request cannot be built yet: its deployment's access token is
// still being fetched (the first request after start; later ones find it cached).
// It starts on the io context once the credentials wake it; when they cannot be
// had, the handler hears a connect error (retryable, the deployment cools down).
// The handler is never called from inside start(): the executor holds its lock.
class DeferredCall final : public upstream::Call, public std::enable_shared_from_this<DeferredCall> {
public:
    using Starter = std::function<upstream::CallPtr()>;
    DeferredCall(boost::asio::io_context& io, const providers::Credentials& credentials, Starter start,
                 std::shared_ptr<upstream::Handler> handler)
        : io_(io), credentials_(credentials), start_(std::move(start)), handler_(std::move(handler)) {}

    void arm() {
        auto self = shared_from_this();
        if (credentials_.ready([self] { self->wake(); })) wake();
    }

    void cancel() override {
        upstream::CallPtr inner;
        {
            std::lock_guard lk(mu_);
            cancelled_ = true;
            inner = inner_;
        }
        if (inner) inner->cancel();
    }
    void pause() override { forward(true); }
    void resume() override { forward(false); }

private:
    void wake() {
        boost::asio::post(io_, [self = shared_from_this()] { self->begin(); });
    }

    void begin() {
        std::unique_lock lk(mu_);
        if (cancelled_ || begun_) return;
        begun_ = true;
        if (std::string why = credentials_.unavailable(); !why.empty()) {
            lk.unlock();
            handler_->on_error(upstream::ErrorKind::Connect, why);
            return;
        }
        upstream::CallPtr inner = start_();
        inner_ = inner;
        const bool paused = paused_;
        lk.unlock();
        if (!inner) handler_->on_error(upstream::ErrorKind::Connect, "the request was abandoned");
        else if (paused) inner->pause();
    }

    void forward(bool pause) {
        upstream::CallPtr inner;
        {
            std::lock_guard lk(mu_);
            paused_ = pause;
            inner = inner_;
        }
        if (!inner) return;
        if (pause) inner->pause();
        else inner->resume();
    }

    boost::asio::io_context& io_;
    const providers::Credentials& credentials_;  // the deployment's; its generation outlives the attempt
    Starter start_;
    std::shared_ptr<upstream::Handler> handler_;
    std::mutex mu_;
    upstream::CallPtr inner_;
    bool cancelled_ = false, begun_ = false, paused_ = false;
};

// A request its codec refused to build (RequestRefused): nothing goes upstream;
// the attempt reads as that upstream's 400, so it fails as a bad request (no
// retry, no cooldown) with the codec's message.
class RefusedCall final : public upstream::Call, public std::enable_shared_from_this<RefusedCall> {
public:
    RefusedCall(std::shared_ptr<upstream::Handler> handler, std::string message)
        : handler_(std::move(handler)), body_("{\"error\":{\"message\":" + json_quote(message) +
                                               ",\"type\":\"invalid_request_error\",\"param\":null,\"code\":null}}") {}

    void answer(boost::asio::io_context& io) {
        boost::asio::post(io, [self = shared_from_this()] {
            if (self->cancelled_.load()) return;
            upstream::ResponseHead head;
            head.status = 400;
            head.headers = {{"content-type", "application/json"}};
            self->handler_->on_head(head);
            self->handler_->on_body(self->body_);
            self->handler_->on_done();
        });
    }
    void cancel() override { cancelled_.store(true); }

private:
    std::shared_ptr<upstream::Handler> handler_;
    std::string body_;
    std::atomic<bool> cancelled_{false};
};

}  // namespace

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

UpstreamTransport::Sent UpstreamTransport::sent(const providers::Codec& codec) const {
    if (chat_ && !surfaces::native(surface_, codec)) return {Endpoint::Chat, *chat_};
    return {endpoint_, *body_};
}

upstream::CallPtr UpstreamTransport::start(uint32_t index, std::shared_ptr<upstream::Handler> handler) {
    const providers::Credentials* credentials = cfg_.deployments[deployments_[index]].upstream.credentials.get();
    if (!credentials || credentials->ready(nullptr)) return start_now(index, std::move(handler));
    auto starter = [weak = weak_from_this(), index, handler]() -> upstream::CallPtr {
        auto self = weak.lock();  // the executor let go of the plan: nothing to start
        return self ? self->start_now(index, handler) : nullptr;
    };
    auto call = std::make_shared<DeferredCall>(client_.io(), *credentials, std::move(starter), handler);
    call->arm();
    return call;
}

upstream::CallPtr UpstreamTransport::start_now(uint32_t index, std::shared_ptr<upstream::Handler> handler) {
    const auto& d = cfg_.deployments[deployments_[index]];
    const Sent s = sent(codec(index));
    upstream::Request req;
    try {
        req = build(d, cfg_.router, s.op, stream_, s.body, models_[index], timeouts_);
    } catch (const providers::RequestRefused& e) {
        auto refused = std::make_shared<RefusedCall>(std::move(handler), e.what());
        refused->answer(client_.io());
        return refused;
    }
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
    return c.decoder_for(sent(c).op, surfaces::sink_for(surface_, c, *body_, stream_), models_[index]);
}

}  // namespace tailgate::server
