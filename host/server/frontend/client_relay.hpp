// The client side of a relayed response (Request::relay, front_end.hpp).
//
// The connection leaves Poco (detached) and the response is written from
// the Asio side, where the upstream sockets already live: no pool thread waits
// for an upstream or a slow client, so an open stream costs a socket and a few
// buffers, not a thread. When the response is over the connection goes back to
// Poco's pool (ConnectionResumer) for its next request.
//
// All of a relay's work runs on its strand. Executor callbacks only post there
// (ClientChannel's notify), so the relay never runs inside the executor's
// locks and may cancel or resume the executor freely.
#pragma once

#include "server/frontend/detached_client.hpp"
#include "server/frontend/front_end.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace tailgate::server::frontend {

class ClientRelay final : public std::enable_shared_from_this<ClientRelay> {
public:
    using Exchange = frontend::Exchange;  // what the relay writes

    struct Options {
        // A write that makes no progress for this long ends the exchange as if
        // the client had gone (a client that stopped reading; the upstream is
        // paused meanwhile, see ClientChannel::kHighWater).
        std::chrono::milliseconds write_timeout{60000};
    };

    // Call on the Poco thread, once the connection is detached and before the executor
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

}  // namespace tailgate::server::frontend
