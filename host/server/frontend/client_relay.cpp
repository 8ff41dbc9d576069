#include "server/frontend/client_relay.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>

#include <sys/socket.h>

#include <cerrno>

namespace tailgate::server::frontend {

void ClientRelay::start(boost::asio::io_context& io, DetachedClient client, std::shared_ptr<ConnectionResumer> resumer,
                        std::shared_ptr<ResponseSource> source, std::shared_ptr<Exchange> exchange,
                        const Options& options) {
    auto relay = std::make_shared<ClientRelay>(io, std::move(client), std::move(resumer), source, std::move(exchange),
                                               options);
    // Held until end() closes the source, so the relay lives as long as the exchange.
    source->set_notify([relay] { boost::asio::post(relay->strand_, [relay] { relay->pump(); }); });
    relay->watch_client();  // nothing else runs yet: safe off the strand
}

ClientRelay::ClientRelay(boost::asio::io_context& io, DetachedClient client, std::shared_ptr<ConnectionResumer> resumer,
                         std::shared_ptr<ResponseSource> source, std::shared_ptr<Exchange> exchange,
                         const Options& options)
    : strand_(boost::asio::make_strand(io)),
      socket_(io, client.fd),
      write_timer_(io),
      client_(std::move(client)),
      resumer_(std::move(resumer)),
      source_(std::move(source)),
      exchange_(std::move(exchange)),
      options_(options) {
    client_.fd = -1;
}

void ClientRelay::pump() {
    while (!ended_ && !writing_) {
        if (out_.empty()) {
            if (!source_->take(batch_)) return;
            last_ = exchange_->render(batch_, out_);
            resume_ = resume_ || batch_.resume;
        }
        write();
        if (writing_ || ended_) return;
        // A slow client had the upstream paused (bounded buffer); it took the backlog.
        if (resume_) {
            resume_ = false;
            source_->resume_reading();
        }
        if (last_) {
            end();
            return;
        }
    }
}

void ClientRelay::write() {
    const int fd = socket_.native_handle();
    while (written_ < out_.size()) {
        const ssize_t n = ::send(fd, out_.data() + written_, out_.size() - written_, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n >= 0) {
            written_ += static_cast<size_t>(n);
            continue;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            gone("client disconnected (write failed)");
            return;
        }
        // The client's receive window is full: wait, for a bounded time, until it reads.
        writing_ = true;
        auto self = shared_from_this();
        write_timer_.expires_after(options_.write_timeout);
        write_timer_.async_wait(boost::asio::bind_executor(strand_, [self](const boost::system::error_code& ec) {
            if (!ec && self->writing_) self->gone("client stopped reading (write timeout)");
        }));
        socket_.async_wait(boost::asio::posix::stream_descriptor::wait_write,
                           boost::asio::bind_executor(strand_, [self](const boost::system::error_code& ec) {
                               if (self->ended_) return;
                               self->writing_ = false;
                               self->write_timer_.cancel();
                               if (ec) self->gone("client disconnected (write failed)");
                               else self->pump();  // writes the rest of out_ first
                           }));
        return;
    }
    out_.clear();
    written_ = 0;
}

// A client that hangs up must cancel its upstream attempts at once, even
// while no byte flows (a non-stream request waiting for its completion).
void ClientRelay::watch_client() {
    socket_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                       boost::asio::bind_executor(strand_, [self = shared_from_this()](const boost::system::error_code& ec) {
                           self->on_readable(ec);
                       }));
}

void ClientRelay::on_readable(const boost::system::error_code& ec) {
    if (ended_ || ec) return;
    char c;
    const ssize_t n = ::recv(socket_.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return gone("client disconnected");
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return watch_client();
        return gone("client disconnected");
    }
    // Bytes of a pipelined next request: they wait for this response to end.
    // Stop watching (they keep the socket readable); a hang-up now shows as a failed write.
}

void ClientRelay::gone(const char* why) {
    if (ended_) return;
    exchange_->client_gone(why);
    source_->cancel();
    last_ = false;
    end();
}

void ClientRelay::end() {
    const bool keep_alive = last_ && exchange_->keep_alive();
    ended_ = true;
    write_timer_.cancel();
    source_->close();  // no more notifications: drops the source's hold on this relay
    client_.fd = socket_.release();  // also aborts the pending waits
    resumer_->resume(std::move(client_), keep_alive, [exchange = exchange_] { exchange->finish(); });
}

namespace {

class IdleClient final : public std::enable_shared_from_this<IdleClient> {
public:
    IdleClient(boost::asio::io_context& io, DetachedClient client, std::shared_ptr<ConnectionResumer> resumer)
        : strand_(boost::asio::make_strand(io)),
          socket_(io, client.fd),
          timer_(io),
          client_(std::move(client)),
          resumer_(std::move(resumer)) {
        client_.fd = -1;
    }

    void start(std::chrono::milliseconds timeout) {
        auto self = shared_from_this();
        timer_.expires_after(timeout);
        timer_.async_wait(boost::asio::bind_executor(strand_, [self](const boost::system::error_code& ec) {
            if (ec || self->done_) return;
            self->done_ = true;
            self->socket_.cancel();  // the descriptor closes with the last reference
        }));
        socket_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                           boost::asio::bind_executor(strand_, [self](const boost::system::error_code& ec) {
                               if (ec || self->done_) return;
                               self->done_ = true;
                               self->timer_.cancel();
                               // Readable: a request, or the client closing; Poco's read tells which.
                               self->client_.fd = self->socket_.release();
                               self->resumer_->resume(std::move(self->client_), true, {});
                           }));
    }

private:
    boost::asio::strand<boost::asio::io_context::executor_type> strand_;
    boost::asio::posix::stream_descriptor socket_;
    boost::asio::steady_timer timer_;
    DetachedClient client_;
    std::shared_ptr<ConnectionResumer> resumer_;
    bool done_ = false;
};

}  // namespace

void park_idle_client(boost::asio::io_context& io, DetachedClient client, std::shared_ptr<ConnectionResumer> resumer,
                      std::chrono::milliseconds timeout) {
    std::make_shared<IdleClient>(io, std::move(client), std::move(resumer))->start(timeout);
}

}  // namespace tailgate::server::frontend
