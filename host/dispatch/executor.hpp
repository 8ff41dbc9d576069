// The plan executor: runs the attempts a strategy chain planned for one request.
//
// Launch rules (common/vocabulary.hpp): attempt 0 at t=0; AT_START attempts
// with it (race); AFTER_DELAY attempts `delay` after the previous launch unless
// something committed, or at once when every running attempt has failed
// retryably (hedge); ON_FAILURE attempts after a backoff once nothing is
// running and the last failure was retryable (retry / fallback).
//
// Commit point: the first content event of a stream, or a complete 2xx
// response otherwise. The committed attempt wins; every other running attempt
// is cancelled (socket closed) and nothing more is launched. After commit a
// stream failure is reported to the Downstream as an error, never as a clean end.
//
// Thread-safety: every entry point takes the executor's mutex, so upstream
// callbacks, timers and cancel() may arrive from any thread. Downstream and
// Observer are called with that mutex held: they must be quick and must not
// call back into the executor.
#pragma once

#include "common/api_error.hpp"
#include "providers/codec.hpp"
#include "upstream/client.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace tailgate::dispatch {

using SteadyClock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

// Time and timers; the real one runs on Asio, tests inject a fake clock.
class Scheduler {
public:
    class Timer {
    public:
        virtual ~Timer() = default;
        virtual void cancel() = 0;  // the callback will not run afterwards
    };
    using TimerPtr = std::unique_ptr<Timer>;

    virtual ~Scheduler() = default;
    virtual SteadyClock::time_point now() = 0;
    virtual TimerPtr after(std::chrono::microseconds delay, std::function<void()> fn) = 0;
};

// Starts the upstream call for attempt `index` of the plan, and says how to
// read its response: the executor sees upstream bytes only through the
// attempt's codec and decoder (normalized events; client bytes).
class Transport {
public:
    virtual ~Transport() = default;
    virtual upstream::CallPtr start(uint32_t index, std::shared_ptr<upstream::Handler> handler) = 0;
    // The attempt's provider codec; OpenAI's unless overridden.
    virtual const providers::Codec& codec(uint32_t index) const;
    // A fresh decoder for the attempt's response (its codec's, with the client
    // surface's renderer when the wire formats differ).
    virtual providers::ResponseDecoderPtr decoder(uint32_t index) const { return codec(index).decoder(nullptr); }
};

// Where the winner's response goes (the client connection).
class Downstream {
public:
    virtual ~Downstream() = default;
    // The winner. `bytes` is the complete body (non-stream) or the SSE bytes
    // received so far (stream); later stream bytes arrive through data().
    virtual void commit(uint32_t attempt, const upstream::ResponseHead& head, std::string bytes) = 0;
    virtual void data(std::string_view bytes) = 0;
    // End of a committed stream; `error` set when it did not end cleanly.
    virtual void finish(const ApiError* error) = 0;
    // Nothing committed: the error the client gets.
    virtual void fail(const ApiError& error) = 0;
    // Called after each executor entry point released the executor's lock. The calls
    // above happen under that lock; a downstream that wakes another thread does it
    // here, so the woken thread (which on a busy core preempts the waker) does not
    // run straight into the lock and bounce back.
    virtual void flush() {}
    // Asked under the executor's lock after data(): true when the client is so far
    // behind that the winner's upstream socket should stop being read. The executor
    // then pauses it until resume_reading().
    virtual bool congested() { return false; }
};

struct AttemptEvent {
    EventType type;
    uint32_t attempt;
    uint32_t deployment;
    double elapsed_ms = 0;  // since the attempt launched
    double ttft_ms = -1;
    ErrorClass error_class = ErrorClass::None;
    int http_status = 0;
    int64_t retry_after_ms = -1;
    int64_t prompt_tokens = -1;
    int64_t completion_tokens = -1;
    CancelReason cancel_reason = CancelReason::None;
};

class Observer {
public:
    virtual ~Observer() = default;
    virtual void on_attempt(const AttemptEvent& ev) = 0;
};

struct AttemptSpec {
    uint32_t deployment = 0;
    Launch launch = Launch::AtStart;
    Millis delay{0};
    uint32_t group = 0;                // index into the routed groups (0 = requested, >0 = fallback)
    bool context_window_only = false;  // launched only after a context-length failure
};

struct Plan {
    std::vector<AttemptSpec> attempts;
    bool stream = false;
    Millis first_content_timeout{0};  // streams: attempt fails if no content by then; 0 = off
    size_t max_body_bytes = 64u * 1024 * 1024;
    // Asked before a delayed (hedge) attempt launches while others still run;
    // false = refused (budget): no further hedges for this request.
    std::function<bool(uint32_t attempt, double elapsed_ms)> admit;
    // Fraction of lost primaries (attempt 0) kept running to completion, off the
    // client's path, to measure what the primary alone would have given.
    double shadow_sample_rate = 0;
};

enum class AttemptState { NotLaunched, Running, Won, Failed, Cancelled, Refused, Shadow };

struct AttemptRecord {
    AttemptState state = AttemptState::NotLaunched;
    SteadyClock::time_point launched_at{};
    double ttft_ms = -1;
    double total_ms = -1;
    ErrorClass error_class = ErrorClass::None;
    int http_status = 0;
    int64_t retry_after_ms = -1;
    int64_t prompt_tokens = -1, completion_tokens = -1;  // a non-stream body's usage, once committed
    std::string error_message;  // upstream's message or ours; never contains credentials
};

// Under their earlier names (tests, fuzzers): the OpenAI codec's readers, and
// the provider-independent ones (providers/codec.hpp).
using providers::is_retryable;
using providers::retry_after_ms;
ErrorClass classify_status(int status, std::string_view body);
std::string upstream_message(std::string_view body);

class Executor : public std::enable_shared_from_this<Executor> {
public:
    Executor(Plan plan, Scheduler& scheduler, std::shared_ptr<Transport> transport,
             std::shared_ptr<Downstream> downstream, std::shared_ptr<Observer> observer);
    ~Executor();

    void start();
    // The client caught up after congested(): read the winner's upstream again.
    void resume_reading();
    // The client went away: cancel everything, tell nobody downstream.
    void cancel();

    bool finished() const;
    uint32_t launched() const;
    std::vector<AttemptRecord> records() const;

private:
    struct Attempt;
    class CallbackHandler;
    friend class CallbackHandler;

    void launch_locked(uint32_t i);
    void advance_locked();
    void on_head(uint32_t i, const upstream::ResponseHead& head);
    void on_body(uint32_t i, std::string_view bytes);
    void on_done(uint32_t i);
    void on_error(uint32_t i, upstream::ErrorKind kind, const std::string& message);
    void on_stream_body(uint32_t i, std::string_view bytes);
    void on_committed_body(uint32_t i, std::string_view bytes);
    void on_committed_done(uint32_t i);
    void on_first_content_timeout(uint32_t i);
    void fail_attempt_locked(uint32_t i, ErrorClass cls, int status, std::string message, int64_t retry_after);
    void commit_locked(uint32_t i);
    void fail_committed_locked(uint32_t i, ErrorClass cls, const ApiError& e);
    void shadow_event_locked(uint32_t i, EventType type);
    void succeed_locked(uint32_t i);
    void cancel_attempt_locked(uint32_t i, CancelReason why);
    void finish_failed_locked();
    void emit_locked(EventType type, uint32_t i, CancelReason why = CancelReason::None);
    double elapsed_ms_locked(uint32_t i) const;

    mutable std::mutex mu_;
    Plan plan_;
    Scheduler& scheduler_;
    std::shared_ptr<Transport> transport_;
    std::shared_ptr<Downstream> downstream_;
    std::shared_ptr<Observer> observer_;
    std::vector<std::unique_ptr<Attempt>> attempts_;
    uint32_t next_ = 0;        // next attempt to launch
    uint32_t launched_ = 0;    // attempts launched so far
    uint32_t running_ = 0;
    bool stop_launching_ = false;  // a non-retryable failure happened
    ErrorClass last_failure_ = ErrorClass::None;
    bool hedging_refused_ = false;  // admit() said no: no more delayed launches
    SteadyClock::time_point started_at_{};
    bool committed_ = false;
    bool done_ = false;
    bool paused_ = false;  // the winner's upstream is paused for a slow client
    std::optional<uint32_t> winner_;
    Scheduler::TimerPtr launch_timer_;
};

using ExecutorPtr = std::shared_ptr<Executor>;

}  // namespace tailgate::dispatch
