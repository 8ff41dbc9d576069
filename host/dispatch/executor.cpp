#include "dispatch/executor.hpp"
#include "common/fast_rng.hpp"
#include "common/redact.hpp"
#include "providers/openai/codec.hpp"

#include <algorithm>
#include <optional>
#include <random>

namespace tailgate::dispatch {

namespace {

constexpr size_t kMaxErrorBody = 64 * 1024;

// Rank used to pick the error a client sees when every attempt failed: the
// one that tells the most about the request itself wins.
int informativeness(ErrorClass c) {
    switch (c) {
        case ErrorClass::BadRequest:
        case ErrorClass::ContextWindow: return 7;  // about the request itself
        case ErrorClass::RateLimit: return 6;      // says when to come back
        case ErrorClass::Auth:
        case ErrorClass::NotFound: return 5;
        case ErrorClass::Server: return 4;
        case ErrorClass::Timeout: return 3;
        case ErrorClass::Protocol: return 2;
        case ErrorClass::Connect: return 1;
        default: return 0;
    }
}

const char* type_for_status(int status) {
    switch (status) {
        case 400: case 404: case 409: case 413: case 422: return "invalid_request_error";
        case 401: return "authentication_error";
        case 403: return "permission_error";
        case 429: return "rate_limit_error";
        default: return "api_error";
    }
}

// An upstream's error event after the commit point, as the client's stream ends.
ApiError stream_error(const providers::UpstreamError& e) {
    return ApiError::bad_gateway("upstream stream error: " + e.message, "upstream_stream_error");
}

// Declared before an entry point's lock: the downstream's flush() runs once the
// lock is released.
struct FlushAfterUnlock {
    Downstream& d;
    ~FlushAfterUnlock() { d.flush(); }
};

}  // namespace

const providers::Codec& Transport::codec(uint32_t) const { return providers::openai::codec(); }

ErrorClass classify_status(int status, std::string_view body) { return providers::openai::classify_status(status, body); }
std::string upstream_message(std::string_view body) { return providers::openai::upstream_message(body); }

// ---------------------------------------------------------------------------

struct Executor::Attempt {
    AttemptRecord rec;
    upstream::CallPtr call;
    upstream::ResponseHead head;
    bool head_ok = false;   // 2xx
    std::string buffer;     // pre-commit client bytes of a stream, non-stream body, or error body
    providers::ResponseDecoderPtr decoder;  // from launch on
    Scheduler::TimerPtr first_content_timer;
};

class Executor::CallbackHandler final : public upstream::Handler {
public:
    CallbackHandler(std::shared_ptr<Executor> ex, uint32_t i) : ex_(std::move(ex)), i_(i) {}
    void on_head(const upstream::ResponseHead& head) override { ex_->on_head(i_, head); }
    void on_body(std::string_view bytes) override { ex_->on_body(i_, bytes); }
    void on_done() override { ex_->on_done(i_); }
    void on_error(upstream::ErrorKind kind, const std::string& message) override {
        ex_->on_error(i_, kind, message);
    }

private:
    std::shared_ptr<Executor> ex_;  // keeps the executor alive while the call runs
    uint32_t i_;
};

Executor::Executor(Plan plan, Scheduler& scheduler, std::shared_ptr<Transport> transport,
                   std::shared_ptr<Downstream> downstream, std::shared_ptr<Observer> observer)
    : plan_(std::move(plan)),
      scheduler_(scheduler),
      transport_(std::move(transport)),
      downstream_(std::move(downstream)),
      observer_(std::move(observer)) {
    attempts_.reserve(plan_.attempts.size());
    for (size_t i = 0; i < plan_.attempts.size(); ++i) attempts_.push_back(std::make_unique<Attempt>());
}

Executor::~Executor() = default;

void Executor::start() {
    FlushAfterUnlock flush{*downstream_};
    std::lock_guard lk(mu_);
    // Cancelled before it started (a client that hung up at once): launching
    // now would run an attempt nobody waits for, outside admission.
    if (done_) return;
    if (attempts_.empty()) {
        done_ = true;
        downstream_->fail(ApiError::unavailable("no deployment available for this request"));
        return;
    }
    started_at_ = scheduler_.now();
    launch_locked(0);
    advance_locked();
}

void Executor::cancel() {
    FlushAfterUnlock flush{*downstream_};
    std::lock_guard lk(mu_);
    if (done_) return;
    done_ = true;
    launch_timer_.reset();
    for (uint32_t i = 0; i < attempts_.size(); ++i)
        if (attempts_[i]->rec.state == AttemptState::Running || attempts_[i]->rec.state == AttemptState::Shadow ||
            (attempts_[i]->rec.state == AttemptState::Won && committed_))
            cancel_attempt_locked(i, CancelReason::ClientGone);
}

void Executor::resume_reading() {
    std::lock_guard lk(mu_);
    if (!paused_ || !winner_ || done_) return;
    paused_ = false;
    if (auto& call = attempts_[*winner_]->call) call->resume();
}

bool Executor::finished() const {
    std::lock_guard lk(mu_);
    return done_;
}
uint32_t Executor::launched() const {
    std::lock_guard lk(mu_);
    return launched_;
}
std::vector<AttemptRecord> Executor::records() const {
    std::lock_guard lk(mu_);
    std::vector<AttemptRecord> out;
    out.reserve(attempts_.size());
    for (const auto& a : attempts_) out.push_back(a->rec);
    return out;
}

double Executor::elapsed_ms_locked(uint32_t i) const {
    auto d = scheduler_.now() - attempts_[i]->rec.launched_at;
    return std::chrono::duration<double, std::milli>(d).count();
}

void Executor::emit_locked(EventType type, uint32_t i, CancelReason why) {
    if (!observer_) return;
    const auto& r = attempts_[i]->rec;
    AttemptEvent ev{type, i, plan_.attempts[i].deployment};
    ev.elapsed_ms = elapsed_ms_locked(i);
    ev.ttft_ms = r.ttft_ms;
    ev.error_class = r.error_class;
    ev.http_status = r.http_status;
    ev.retry_after_ms = r.retry_after_ms;
    const bool body_usage = !plan_.stream && type == EventType::Success;
    const auto& dec = attempts_[i]->decoder;
    const providers::Usage streamed = dec ? dec->usage() : providers::Usage{};
    ev.prompt_tokens = body_usage ? r.prompt_tokens : streamed.prompt_tokens;
    ev.completion_tokens = body_usage ? r.completion_tokens : streamed.completion_tokens;
    ev.cancel_reason = why;
    observer_->on_attempt(ev);
}

void Executor::launch_locked(uint32_t i) {
    next_ = i + 1;
    ++launched_;
    ++running_;
    auto& a = *attempts_[i];
    a.rec.state = AttemptState::Running;
    a.rec.launched_at = scheduler_.now();
    emit_locked(EventType::Started, i);
    if (plan_.stream && plan_.first_content_timeout.count() > 0) {
        std::weak_ptr<Executor> weak = weak_from_this();
        a.first_content_timer = scheduler_.after(plan_.first_content_timeout, [weak, i] {
            if (auto self = weak.lock()) self->on_first_content_timeout(i);
        });
    }
    a.decoder = transport_->decoder(i);
    a.call = transport_->start(i, std::make_shared<CallbackHandler>(shared_from_this(), i));
}

void Executor::advance_locked() {
    while (!done_ && !committed_) {
        if (stop_launching_ && running_ == 0 && last_failure_ == ErrorClass::ContextWindow) {
            // The prompt is too long for this group: jump to the context-window fallbacks.
            uint32_t k = next_;
            while (k < attempts_.size() && !plan_.attempts[k].context_window_only) ++k;
            if (k < attempts_.size()) {
                next_ = k;
                stop_launching_ = false;
            }
        }
        if (next_ < attempts_.size() && plan_.attempts[next_].context_window_only &&
            last_failure_ != ErrorClass::ContextWindow) {
            next_ = static_cast<uint32_t>(attempts_.size());  // only for context-length failures
        }
        if (next_ >= attempts_.size() || stop_launching_) {
            if (running_ == 0) finish_failed_locked();
            return;
        }
        const AttemptSpec& spec = plan_.attempts[next_];
        if (running_ == 0) {
            // Everything launched so far has failed retryably.
            launch_timer_.reset();
            if (spec.launch == Launch::OnFailure && spec.delay.count() > 0) {
                std::weak_ptr<Executor> weak = weak_from_this();
                uint32_t i = next_;
                launch_timer_ = scheduler_.after(spec.delay, [weak, i] {
                    if (auto self = weak.lock()) {
                        FlushAfterUnlock flush{*self->downstream_};
                        std::lock_guard lk(self->mu_);
                        if (self->done_ || self->committed_ || self->next_ != i) return;
                        self->launch_locked(i);
                        self->advance_locked();
                    }
                });
                return;
            }
            launch_locked(next_);
            continue;
        }
        if (spec.launch == Launch::AtStart) {
            launch_locked(next_);
            continue;
        }
        if (spec.launch == Launch::AfterDelay && !launch_timer_ && !hedging_refused_) {
            auto prev_launch = attempts_[next_ - 1]->rec.launched_at;
            auto due = prev_launch + spec.delay - scheduler_.now();
            auto wait = std::max(std::chrono::duration_cast<std::chrono::microseconds>(due),
                                 std::chrono::microseconds(0));
            std::weak_ptr<Executor> weak = weak_from_this();
            uint32_t i = next_;
            launch_timer_ = scheduler_.after(wait, [weak, i] {
                if (auto self = weak.lock()) {
                    FlushAfterUnlock flush{*self->downstream_};
                    std::lock_guard lk(self->mu_);
                    self->launch_timer_.reset();
                    if (self->done_ || self->committed_ || self->next_ != i || self->stop_launching_) return;
                    if (self->running_ > 0 && self->plan_.admit) {
                        double since = std::chrono::duration<double, std::milli>(self->scheduler_.now() -
                                                                                 self->started_at_)
                                           .count();
                        if (!self->plan_.admit(i, since)) {
                            // Budget spent: this request goes on unhedged.
                            self->hedging_refused_ = true;
                            self->attempts_[i]->rec.state = AttemptState::Refused;
                            self->attempts_[i]->rec.launched_at = self->scheduler_.now();
                            self->next_ = i + 1;
                            self->emit_locked(EventType::Refused, i);
                            self->advance_locked();
                            return;
                        }
                    }
                    self->launch_locked(i);
                    self->advance_locked();
                }
            });
        }
        return;  // ON_FAILURE waits for the running ones
    }
}

void Executor::on_head(uint32_t i, const upstream::ResponseHead& head) {
    FlushAfterUnlock flush{*downstream_};
    std::lock_guard lk(mu_);
    auto& a = *attempts_[i];
    if (a.rec.state == AttemptState::Shadow) {
        a.head_ok = head.status >= 200 && head.status < 300;
        return;
    }
    if (done_ || a.rec.state != AttemptState::Running) return;
    a.head = head;
    a.rec.http_status = head.status;
    a.head_ok = head.status >= 200 && head.status < 300;
}

void Executor::on_body(uint32_t i, std::string_view bytes) {
    FlushAfterUnlock flush{*downstream_};
    std::lock_guard lk(mu_);
    auto& a = *attempts_[i];
    if (a.rec.state == AttemptState::Won) {
        if (!done_) on_committed_body(i, bytes);
        return;
    }
    if (a.rec.state == AttemptState::Shadow) {
        // Off the client's path: only watch for its first content.
        if (plan_.stream && a.rec.ttft_ms < 0 && a.head_ok && a.decoder->feed(bytes).content)
            a.rec.ttft_ms = elapsed_ms_locked(i);
        return;
    }
    if (done_ || a.rec.state != AttemptState::Running) return;
    if (!a.head_ok) {
        if (a.buffer.size() < kMaxErrorBody)
            a.buffer.append(bytes.substr(0, kMaxErrorBody - a.buffer.size()));
        return;
    }
    if (a.buffer.size() + a.decoder->pending() + bytes.size() > plan_.max_body_bytes) {
        if (a.call) a.call->cancel();
        fail_attempt_locked(i, ErrorClass::Protocol, 0, "upstream response exceeds the body limit", -1);
        return;
    }
    if (plan_.stream) on_stream_body(i, bytes);
    else a.buffer.append(bytes);
}

// A running stream before any commit: keep its client bytes until it wins.
void Executor::on_stream_body(uint32_t i, std::string_view bytes) {
    auto& a = *attempts_[i];
    const providers::Decoded r = a.decoder->feed(bytes);
    a.buffer.append(r.client);
    if (r.error && !r.content) {
        // An error event before any content: this attempt failed, others may still win.
        if (a.call) a.call->cancel();
        fail_attempt_locked(i, r.error->error_class, 0, "upstream stream error: " + r.error->message,
                            r.error->retry_after_ms);
        return;
    }
    if (r.content) {
        a.rec.ttft_ms = elapsed_ms_locked(i);
        emit_locked(EventType::FirstByte, i);
        commit_locked(i);
    }
    if (r.error) {
        // Content, then an error event, in one read: committed, and already failed.
        fail_committed_locked(i, r.error->error_class, stream_error(*r.error));
        return;
    }
    if (r.malformed) {
        // Events are taken in order: content before the malformed one (even in the
        // same read) was the commit point, so the outcome does not depend on how
        // the bytes were segmented.
        std::string msg = "upstream sent a malformed SSE event: " + a.decoder->malformed_excerpt();
        if (r.content) {
            fail_committed_locked(i, ErrorClass::Protocol, ApiError::bad_gateway(std::move(msg), "upstream_protocol_error"));
        } else {
            if (a.call) a.call->cancel();
            fail_attempt_locked(i, ErrorClass::Protocol, 0, std::move(msg), -1);
        }
    }
}

// The committed stream: relay whole, well-formed events only.
void Executor::on_committed_body(uint32_t i, std::string_view bytes) {
    auto& a = *attempts_[i];
    const providers::Decoded r = a.decoder->feed(bytes);
    if (!r.client.empty()) {
        // An upstream error event may quote the api key it was sent: scrub before relaying.
        if (contains_secret(r.client)) downstream_->data(redact(std::string(r.client)));
        else downstream_->data(r.client);
    }
    if (r.error) {
        // The stream failed: end it now, whatever the upstream does with its connection.
        fail_committed_locked(i, r.error->error_class, stream_error(*r.error));
    } else if (r.malformed) {
        fail_committed_locked(i, ErrorClass::Protocol,
                              ApiError::bad_gateway("upstream sent a malformed SSE event: " + a.decoder->malformed_excerpt(),
                                                    "upstream_protocol_error"));
    } else if (a.decoder->pending() > plan_.max_body_bytes) {
        fail_committed_locked(i, ErrorClass::Protocol,
                              ApiError::bad_gateway("upstream SSE event exceeds the body limit", "upstream_protocol_error"));
    } else if (!paused_ && a.call && downstream_->congested()) {
        paused_ = true;  // a slow client: stop reading the upstream (resume_reading)
        a.call->pause();
    }
}

void Executor::on_committed_done(uint32_t i) {
    auto& a = *attempts_[i];
    if (const providers::UpstreamError* e = a.decoder->stream_error()) {
        fail_committed_locked(i, e->error_class, stream_error(*e));
    } else if (!a.decoder->saw_done()) {
        fail_committed_locked(i, ErrorClass::Protocol,
                              ApiError::bad_gateway("upstream stream ended without " + std::string(a.decoder->end_marker()),
                                                    "upstream_stream_truncated"));
    } else {
        a.call.reset();
        --running_;
        done_ = true;
        a.rec.total_ms = elapsed_ms_locked(i);
        emit_locked(EventType::Success, i);
        downstream_->finish(nullptr);
    }
}

void Executor::on_done(uint32_t i) {
    FlushAfterUnlock flush{*downstream_};
    std::lock_guard lk(mu_);
    auto& a = *attempts_[i];
    if (a.rec.state == AttemptState::Won) {
        if (!done_) on_committed_done(i);
        return;
    }
    if (a.rec.state == AttemptState::Shadow) {
        shadow_event_locked(i, a.head_ok ? EventType::ShadowDone : EventType::Cancelled);
        return;
    }
    if (done_ || a.rec.state != AttemptState::Running) return;
    a.call.reset();
    if (!a.head_ok) {
        const providers::UpstreamError e = transport_->codec(i).decode_error(a.head, a.buffer);
        fail_attempt_locked(i, e.error_class, a.rec.http_status, e.message, e.retry_after_ms);
        return;
    }
    if (plan_.stream) {
        // A stream that ended without any content event (e.g. an empty answer):
        // it is still this attempt's complete, valid response.
        if (!a.decoder->saw_done()) {
            fail_attempt_locked(i, ErrorClass::Protocol, a.rec.http_status,
                                "upstream stream ended without " + std::string(a.decoder->end_marker()), -1);
            return;
        }
        a.rec.ttft_ms = elapsed_ms_locked(i);
        commit_locked(i);
        if (done_) return;
        --running_;
        done_ = true;
        a.rec.total_ms = elapsed_ms_locked(i);
        emit_locked(EventType::Success, i);
        downstream_->finish(nullptr);
        return;
    }
    // A 2xx body the client could not parse (an HTML page, a cut-off JSON) is
    // this attempt's failure, not a success to relay.
    const providers::BodyDecoded b = a.decoder->decode_body(a.buffer);
    if (!b.ok) {
        fail_attempt_locked(i, ErrorClass::Protocol, 0, b.problem, -1);
        return;
    }
    a.rec.prompt_tokens = b.usage.prompt_tokens;
    a.rec.completion_tokens = b.usage.completion_tokens;
    a.rec.total_ms = elapsed_ms_locked(i);
    commit_locked(i);
    --running_;
    done_ = true;
}

void Executor::on_error(uint32_t i, upstream::ErrorKind kind, const std::string& message) {
    FlushAfterUnlock flush{*downstream_};
    std::lock_guard lk(mu_);
    auto& a = *attempts_[i];
    if (a.rec.state == AttemptState::Shadow) {
        shadow_event_locked(i, EventType::Cancelled);  // no true latency after all: stays censored
        return;
    }
    a.call.reset();
    if (a.rec.state == AttemptState::Won) {
        if (done_) return;
        a.rec.error_message = message;
        fail_committed_locked(i, kind == upstream::ErrorKind::Timeout ? ErrorClass::Timeout : ErrorClass::Protocol,
                              kind == upstream::ErrorKind::Timeout
                                  ? ApiError::gateway_timeout("upstream stream stalled: " + message)
                                  : ApiError::bad_gateway("upstream connection lost mid-stream: " + message,
                                                          "upstream_stream_interrupted"));
        return;
    }
    if (done_ || a.rec.state != AttemptState::Running) return;
    ErrorClass cls = kind == upstream::ErrorKind::Timeout   ? ErrorClass::Timeout
                         : kind == upstream::ErrorKind::Connect ? ErrorClass::Connect
                                                                : ErrorClass::Protocol;
    fail_attempt_locked(i, cls, 0, message, -1);
}

void Executor::on_first_content_timeout(uint32_t i) {
    FlushAfterUnlock flush{*downstream_};
    std::lock_guard lk(mu_);
    auto& a = *attempts_[i];
    if (done_ || a.rec.state != AttemptState::Running) return;
    if (a.call) a.call->cancel();
    a.call.reset();
    fail_attempt_locked(i, ErrorClass::Timeout, 0,
                        "no content within stream_timeout of " +
                            std::to_string(plan_.first_content_timeout.count()) + " ms",
                        -1);
}

void Executor::fail_attempt_locked(uint32_t i, ErrorClass cls, int status, std::string message,
                                   int64_t retry_after) {
    auto& a = *attempts_[i];
    a.rec.state = AttemptState::Failed;
    a.rec.error_class = cls;
    a.rec.http_status = status;
    a.rec.error_message = std::move(message);
    a.rec.retry_after_ms = retry_after;
    a.rec.total_ms = elapsed_ms_locked(i);
    a.first_content_timer.reset();
    --running_;
    last_failure_ = cls;
    if (!is_retryable(cls)) stop_launching_ = true;
    emit_locked(EventType::Failure, i);
    advance_locked();
}

// The committed stream failed: stop its call, report it, end the client's stream with `e`.
void Executor::fail_committed_locked(uint32_t i, ErrorClass cls, const ApiError& e) {
    auto& a = *attempts_[i];
    if (a.call) a.call->cancel();
    a.call.reset();
    --running_;
    done_ = true;
    a.rec.error_class = cls;
    if (a.rec.error_message.empty()) a.rec.error_message = e.message;
    a.rec.total_ms = elapsed_ms_locked(i);
    emit_locked(EventType::Failure, i);
    downstream_->finish(&e);
}

void Executor::cancel_attempt_locked(uint32_t i, CancelReason why) {
    auto& a = *attempts_[i];
    if (a.call) a.call->cancel();
    a.call.reset();
    a.first_content_timer.reset();
    if (a.rec.state != AttemptState::Shadow) --running_;  // a shadow no longer counts as running
    a.rec.state = AttemptState::Cancelled;
    a.rec.total_ms = elapsed_ms_locked(i);
    emit_locked(EventType::Cancelled, i, why);
}

// A shadow finished (true latency known) or failed (still censored).
void Executor::shadow_event_locked(uint32_t i, EventType type) {
    auto& a = *attempts_[i];
    a.call.reset();
    a.rec.state = AttemptState::Cancelled;
    a.rec.total_ms = elapsed_ms_locked(i);
    emit_locked(type, i, type == EventType::Cancelled ? CancelReason::Lost : CancelReason::None);
}

void Executor::commit_locked(uint32_t i) {
    committed_ = true;
    winner_ = i;
    launch_timer_.reset();
    auto& a = *attempts_[i];
    a.rec.state = AttemptState::Won;
    a.first_content_timer.reset();
    for (uint32_t k = 0; k < attempts_.size(); ++k) {
        if (k == i || attempts_[k]->rec.state != AttemptState::Running) continue;
        if (k == 0 && plan_.shadow_sample_rate > 0) {
            auto& rng = FastRng::for_this_thread();
            if (std::uniform_real_distribution<double>(0, 1)(rng) < plan_.shadow_sample_rate) {
                // Keep the lost primary running to measure its true latency.
                attempts_[k]->rec.state = AttemptState::Shadow;
                attempts_[k]->first_content_timer.reset();
                attempts_[k]->buffer = std::string();
                --running_;
                continue;
            }
        }
        cancel_attempt_locked(k, CancelReason::Lost);
    }
    if (!plan_.stream) emit_locked(EventType::Success, i);
    downstream_->commit(i, a.head, std::move(a.buffer));
    a.buffer.clear();
}

void Executor::finish_failed_locked() {
    if (done_) return;
    done_ = true;
    launch_timer_.reset();
    int best = -1;
    uint32_t pick = 0;
    for (uint32_t k = 0; k < attempts_.size(); ++k) {
        const auto& r = attempts_[k]->rec;
        if (r.state != AttemptState::Failed) continue;
        int rank = informativeness(r.error_class);
        if (rank > best) {  // ties: the earliest attempt (the primary) speaks
            best = rank;
            pick = k;
        }
    }
    if (best < 0) {
        downstream_->fail(ApiError::unavailable("no attempt could be made"));
        return;
    }
    const auto& r = attempts_[pick]->rec;
    ApiError e;
    if (r.http_status >= 400) {
        e.status = r.http_status;
        e.type = type_for_status(r.http_status);
        e.message = r.error_message.empty() ? "upstream error" : r.error_message;
        e.code = r.error_class == ErrorClass::ContextWindow ? "context_length_exceeded" : "";
        if (r.retry_after_ms >= 0) e.retry_after_s = static_cast<long>((r.retry_after_ms + 999) / 1000);
    } else if (r.error_class == ErrorClass::Timeout) {
        e = ApiError::gateway_timeout("upstream timed out: " + r.error_message);
    } else if (r.error_class == ErrorClass::Connect) {
        e = ApiError::bad_gateway("cannot reach upstream: " + r.error_message);
    } else {
        e = ApiError::bad_gateway("bad upstream response: " + r.error_message, "upstream_protocol_error");
    }
    downstream_->fail(e);
}

}  // namespace tailgate::dispatch
