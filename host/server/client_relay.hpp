// The client side of an API response once Poco has read the request.
//
// The connection leaves Poco (detach_client) and the response is written from
// the Asio side, where the upstream sockets already live: no pool thread waits
// for an upstream or a slow client, so an open stream costs a socket and a few
// buffers, not a thread. When the response is over the connection goes back to
// Poco's pool (ConnectionResumer) for its next request.
//
// All of a relay's work runs on its strand. Executor callbacks only post there
// (ClientChannel's notify), so the relay never runs inside the executor's
// locks and may cancel or resume the executor freely.
#pragma once

#include "dispatch/executor.hpp"
#include "server/client_channel.hpp"
#include "server/client_connection.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace tailgate::server {

// Where a relay's response comes from: one executor through its channel
// (ExecutorSource), or several fanned in (the model-list answer). Called on
// the relay's strand, except set_notify (before anything runs).
class ResponseSource {
public:
    virtual ~ResponseSource() = default;
    // `notify` must be called (outside every lock) whenever take() may have something new.
    virtual void set_notify(std::function<void()> notify) = 0;
    // What is new for the client, without waiting; false when nothing is.
    virtual bool take(ClientChannel::Batch& out) = 0;
    virtual void cancel() = 0;          // the client is gone: stop every upstream attempt
    virtual void resume_reading() = 0;  // the client took the backlog: let a paused upstream read again
    virtual void close() = 0;           // the exchange is over: no more notifications
};

// One executor's output, as its channel hands it over.
class ExecutorSource final : public ResponseSource {
public:
    ExecutorSource(std::shared_ptr<ClientChannel> channel, dispatch::ExecutorPtr executor)
        : channel_(std::move(channel)), executor_(std::move(executor)) {}
    void set_notify(std::function<void()> notify) override { channel_->set_notify(std::move(notify)); }
    bool take(ClientChannel::Batch& out) override { return channel_->take(out); }
    void cancel() override { executor_->cancel(); }
    void resume_reading() override { executor_->resume_reading(); }
    void close() override { channel_->close(); }

private:
    std::shared_ptr<ClientChannel> channel_;
    dispatch::ExecutorPtr executor_;
};

class ClientRelay final : public std::enable_shared_from_this<ClientRelay> {
public:
    // What the relay writes: the HTTP side of one API exchange.
    class Exchange {
    public:
        virtual ~Exchange() = default;
        // Appends what `batch` means for the client to `out` (status line and
        // headers the first time, then body or chunk framing). True when the
        // response is complete with these bytes. On the relay's strand.
        virtual bool render(ClientChannel::Batch& batch, std::string& out) = 0;
        // The connection may be reused after the response.
        virtual bool keep_alive() const = 0;
        // The client went away (hang-up, failed write, write timeout) before the
        // end; the relay cancels the source. On the relay's strand.
        virtual void client_gone(const char* why) = 0;
        // The exchange is over (the last byte was written or the client is gone).
        // Runs on a Poco pool thread before the connection serves anything else:
        // logging and other bookkeeping that may block.
        virtual void finish() = 0;
    };

    struct Options {
        // A write that makes no progress for this long ends the exchange as if
        // the client had gone (a client that stopped reading; the upstream is
        // paused meanwhile, see ClientChannel::kHighWater).
        std::chrono::milliseconds write_timeout{60000};
    };

    // Call on the Poco thread, after detach_client() and before the executor
    // starts: from then on the executor's output reaches the client here.
    static void start(boost::asio::io_context& io, DetachedClient client, std::shared_ptr<ConnectionResumer> resumer,
                      std::shared_ptr<ResponseSource> source, std::shared_ptr<Exchange> exchange,
                      const Options& options);
    // One executor's response (the usual case).
    static void start(boost::asio::io_context& io, DetachedClient client, std::shared_ptr<ConnectionResumer> resumer,
                      std::shared_ptr<ClientChannel> channel, dispatch::ExecutorPtr executor,
                      std::shared_ptr<Exchange> exchange, const Options& options) {
        start(io, std::move(client), std::move(resumer),
              std::make_shared<ExecutorSource>(std::move(channel), std::move(executor)), std::move(exchange), options);
    }

    ClientRelay(boost::asio::io_context& io, DetachedClient client, std::shared_ptr<ConnectionResumer> resumer,
                std::shared_ptr<ResponseSource> source, std::shared_ptr<Exchange> exchange, const Options& options);
    ClientRelay(const ClientRelay&) = delete;
    ClientRelay& operator=(const ClientRelay&) = delete;

private:
    void pump();
    void write();
    void watch_client();
    void on_readable(const boost::system::error_code& ec);
    void gone(const char* why);
    void end();

    boost::asio::strand<boost::asio::io_context::executor_type> strand_;
    boost::asio::posix::stream_descriptor socket_;  // owns the client's fd until end()
    boost::asio::steady_timer write_timer_;
    DetachedClient client_;  // fd moved into socket_; the rest goes back with it
    std::shared_ptr<ConnectionResumer> resumer_;
    std::shared_ptr<ResponseSource> source_;
    std::shared_ptr<Exchange> exchange_;
    Options options_;

    ClientChannel::Batch batch_;
    std::string out_;     // rendered, not yet written
    size_t written_ = 0;  // of out_
    bool writing_ = false;  // waiting for the socket to take more
    bool last_ = false;     // out_ ends the response
    bool resume_ = false;   // once out_ is written, let the paused upstream read again
    bool ended_ = false;
};

// An idle keep-alive connection off the pool: when its next request arrives it
// goes back to Poco (resumer); when `timeout` passes first it is closed.
void park_idle_client(boost::asio::io_context& io, DetachedClient client, std::shared_ptr<ConnectionResumer> resumer,
                      std::chrono::milliseconds timeout);

}  // namespace tailgate::server
