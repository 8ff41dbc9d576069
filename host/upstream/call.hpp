// One upstream exchange (client.hpp's Call): its own strand, one timer re-armed
// to the nearest deadline, a pooled or new connection, and the response parsed
// in place as it arrives. Internal to host/upstream. The member definitions
// are split by concern: call.cpp (lifecycle, callbacks, deadlines, the request
// head), call_connect.cpp (pool, resolve, connect, TLS), call_exchange.cpp
// (write, read, parse, deliver).
#pragma once

#include "upstream/pool.hpp"
#include "upstream/response_parser.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace tailgate::upstream::detail {

class UpstreamCall final : public Call, public std::enable_shared_from_this<UpstreamCall> {
public:
    UpstreamCall(std::shared_ptr<Core> core, Request req, std::shared_ptr<Handler> handler)
        : core_(std::move(core)),
          strand_(asio::make_strand(core_->io())),
          timer_(strand_),
          req_(std::move(req)),
          handler_(std::move(handler)) {}

private:
    // Every handler of the call runs on its strand and under entry_mu_, which only
    // start_inline() contends for: a completion can come in on the io thread while the
    // caller's thread is still finishing the fast path.
    template <class F>
    auto locked(F&& f) {
        return [this, f = std::forward<F>(f)](auto&&... args) mutable {
            std::lock_guard lk(entry_mu_);
            f(std::forward<decltype(args)>(args)...);
        };
    }
    template <class F>
    auto on_strand(F&& f) {
        return asio::bind_executor(strand_, locked(std::forward<F>(f)));
    }

public:
    void start();

    void pause() override { paused_.store(true, std::memory_order_release); }

    void resume() override;
    void cancel() override;

private:
    enum class Phase { Connect, Header, Idle };

    // ---- helpers ------------------------------------------------------------------------

    bool cancelled() const { return cancel_requested_.load(std::memory_order_acquire); }

    std::string where() const;

    // Non-final callback. Returns false when the call must stop (cancelled meanwhile).
    template <class F>
    bool notify(F&& f) {
        if (cancelled() || !handler_) {
            if (!finished_) do_cancel();
            return false;
        }
        in_callback_ = true;
        bool threw = false;
        try {
            f(*handler_);
        } catch (...) {   // a throwing handler ends its call, never the io thread
            threw = true;
        }
        in_callback_ = false;
        if (threw) cancel_requested_.store(true, std::memory_order_release);
        if (cancelled()) {
            if (!finished_) do_cancel();
            handler_.reset();
            return false;
        }
        return true;
    }

    // Final callback: the handler reference is dropped once it returns.
    template <class F>
    void notify_final(F&& f) {
        auto h = std::move(handler_);
        if (!h || cancelled()) return;
        in_callback_ = true;
        try {
            f(*h);
        } catch (...) {
            // A throwing handler must not unwind into the io thread; its call is over anyway.
        }
        in_callback_ = false;
    }

    void release_io();
    void do_cancel();
    void fail(ErrorKind kind, std::string message);

    // ---- deadlines ------------------------------------------------------------------------

    void set_phase(Phase phase, Millis timeout);
    void arm_timer();
    void on_timer(error_code ec);

    // ---- request --------------------------------------------------------------------------

    bool build_head();

    // ---- connection -----------------------------------------------------------------------

    void begin();
    bool start_inline();
    void connect();
    void on_resolve(error_code ec, tcp::resolver::results_type results);
    void on_connect(error_code ec);
    void start_tls();
    void on_handshake(error_code ec);

    // ---- exchange -------------------------------------------------------------------------

    void send();
    void on_write(error_code ec);
    void retry();
    void read_more();
    void on_read(error_code ec, size_t n);
    void parse();
    void resume_reading();
    bool deliver_head(ResponseParser& p);
    bool deliver_body(const char* data, size_t size);
    void on_eof();
    void on_read_error(error_code ec);
    void complete();

    // Declaration order matters for destruction: the connection (and its ssl stream) dies
    // before core_ (which owns the ssl::context).
    std::shared_ptr<Core> core_;
    asio::strand<asio::io_context::executor_type> strand_;
    asio::steady_timer timer_;
    Request req_;
    std::shared_ptr<Handler> handler_;
    std::atomic<bool> cancel_requested_{false};
    std::mutex entry_mu_;  // see locked()
    std::atomic<bool> paused_{false};  // pause() asked; read by the strand
    bool stopped_reading_ = false;     // paused with no read pending (strand)
    size_t written_ = 0;   // request bytes the fast path sent

    std::string key_;
    std::string head_;
    std::optional<tcp::resolver> resolver_;
    ConnPtr conn_;
    std::optional<ResponseParser> parser_;

    Phase phase_ = Phase::Connect;
    Millis phase_timeout_{0};
    Clock::time_point phase_deadline_ = kNoDeadline;
    Clock::time_point total_deadline_ = kNoDeadline;
    Clock::time_point timer_expiry_{};
    bool timer_armed_ = false;

    bool finished_ = false;       // no more I/O and no more callbacks
    bool in_callback_ = false;
    bool reused_ = false;         // conn_ came from the pool
    bool retried_ = false;        // the one transparent retry is spent
    bool conn_counted_ = false;   // conn_ is established (counts in stats when discarded)
    bool received_any_ = false;   // any response byte on this attempt
    bool head_delivered_ = false;
};

}  // namespace tailgate::upstream::detail
