#include "fleet/redis_connection.hpp"

#include <hiredis/hiredis.h>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <stdexcept>

namespace tailgate::fleet {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr size_t kReadChunk = 64 * 1024;

// One command in the Redis protocol (hiredis's formatter: binary-safe).
std::string format(const std::vector<std::string>& argv) {
    std::vector<const char*> ptrs;
    std::vector<size_t> lens;
    ptrs.reserve(argv.size());
    lens.reserve(argv.size());
    for (const auto& a : argv) {
        ptrs.push_back(a.data());
        lens.push_back(a.size());
    }
    char* cmd = nullptr;
    const int n = redisFormatCommandArgv(&cmd, static_cast<int>(argv.size()), ptrs.data(), lens.data());
    if (n < 0 || cmd == nullptr) throw std::bad_alloc();
    std::string out(cmd, static_cast<size_t>(n));
    redisFreeCommand(cmd);
    return out;
}

}  // namespace

bool is_error(const redisReply* r) { return r == nullptr || r->type == REDIS_REPLY_ERROR; }
bool is_nil(const redisReply* r) { return r != nullptr && r->type == REDIS_REPLY_NIL; }

std::string reply_text(const redisReply* r) {
    if (r == nullptr) return {};
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR)
        return std::string(r->str, r->len);
    return {};
}

long long reply_integer(const redisReply* r, long long def) {
    if (r == nullptr) return def;
    if (r->type == REDIS_REPLY_INTEGER) return r->integer;
    if (r->type == REDIS_REPLY_STRING) {
        char* end = nullptr;
        const std::string s(r->str, r->len);
        const long long v = std::strtoll(s.c_str(), &end, 10);
        if (end != s.c_str() && *end == '\0') return v;
    }
    return def;
}

std::shared_ptr<asio::ssl::context> make_tls_context(const std::string& ca_file, bool verify) {
    namespace ssl = asio::ssl;
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                     ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    boost::system::error_code ec;
    if (!ca_file.empty()) {
        ctx->load_verify_file(ca_file, ec);
        if (ec) throw std::runtime_error("cannot load the CA bundle '" + ca_file + "': " + ec.message());
    } else {
        ctx->set_default_verify_paths(ec);
        if (ec) throw std::runtime_error("cannot load the system's CA certificates: " + ec.message());
    }
    ERR_clear_error();
    ctx->set_verify_mode(verify ? ssl::verify_peer : ssl::verify_none);
    return ctx;
}

RedisConnection::RedisConnection(Strand strand, RedisEndpoint endpoint)
    : strand_(strand), ep_(std::move(endpoint)), resolver_(strand_), socket_(strand_), connect_timer_(strand_),
      reader_(redisReaderCreate()) {
    if (reader_ == nullptr) throw std::bad_alloc();
    in_.resize(kReadChunk);
}

RedisConnection::~RedisConnection() {
    boost::system::error_code ec;
    socket_.close(ec);
    redisReaderFree(reader_);
}

void RedisConnection::connect(Done done) {
    done_ = std::move(done);
    state_ = State::Connecting;
    auto self = shared_from_this();
    connect_timer_.expires_after(ep_.connect_timeout);
    connect_timer_.async_wait(asio::bind_executor(strand_, [self](const boost::system::error_code& ec) {
        if (ec || self->state_ != State::Connecting) return;
        self->finish_connect("no connection within " + std::to_string(self->ep_.connect_timeout.count()) + "ms");
    }));
    // The resolver runs getaddrinfo on its own thread: a slow DNS never holds an Asio thread.
    resolver_.async_resolve(ep_.host, std::to_string(ep_.port),
                            asio::bind_executor(strand_, [self](const boost::system::error_code& ec,
                                                                tcp::resolver::results_type results) {
                                self->on_resolved(ec, std::move(results));
                            }));
}

void RedisConnection::on_resolved(const boost::system::error_code& ec, tcp::resolver::results_type results) {
    if (state_ != State::Connecting) return;
    if (ec) return finish_connect("cannot resolve " + ep_.host + ": " + ec.message());
    auto self = shared_from_this();
    asio::async_connect(socket_, results,
                        asio::bind_executor(strand_, [self](const boost::system::error_code& e, const tcp::endpoint&) {
                            self->on_connected(e);
                        }));
}

void RedisConnection::on_connected(const boost::system::error_code& ec) {
    if (state_ != State::Connecting) return;
    if (ec) return finish_connect(ec.message());
    boost::system::error_code ignore;
    socket_.set_option(tcp::no_delay(true), ignore);
    if (ep_.tls) return start_tls();
    handshake();
}

// TLS over the connected socket; the connect timer still runs.
void RedisConnection::start_tls() {
    tls_.emplace(socket_, *ep_.tls);
    SSL* ssl = tls_->native_handle();
    const std::string name = ep_.tls_server_name.empty() ? ep_.host : ep_.tls_server_name;
    boost::system::error_code ec;
    asio::ip::make_address(name, ec);
    const bool is_ip = !ec;
    if (!is_ip) SSL_set_tlsext_host_name(ssl, name.c_str());  // SNI: names only (RFC 6066)
    if (ep_.tls_verify) {
        tls_->set_verify_mode(asio::ssl::verify_peer);
        // The name (or IP) is checked by OpenSSL's verifier itself, so a mismatch is a
        // verify result like any other (X509_V_ERR_HOSTNAME_MISMATCH / IP_ADDRESS_MISMATCH).
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (is_ip)
            X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
        else
            X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
    } else {
        tls_->set_verify_mode(asio::ssl::verify_none);
    }
    auto self = shared_from_this();
    tls_->async_handshake(asio::ssl::stream_base::client,
                          asio::bind_executor(strand_, [self](const boost::system::error_code& e) {
                              if (self->state_ != State::Connecting) return;
                              if (!e) return self->handshake();
                              const long v = SSL_get_verify_result(self->tls_->native_handle());
                              ERR_clear_error();
                              if (v != X509_V_OK)
                                  return self->finish_connect(std::string("TLS: certificate verification failed (") +
                                                              X509_verify_cert_error_string(v) + ")");
                              self->finish_connect("TLS handshake failed: " + e.message());
                          }));
}

// AUTH and SELECT go first in the pipeline; their replies decide the connect.
void RedisConnection::handshake() {
    start_read();
    auto self = shared_from_this();
    auto check = [self](const char* what) {
        return [self, what](const redisReply* r) {
            if (self->state_ != State::Connecting) return;
            // The server's error text for AUTH says nothing about the password itself.
            if (is_error(r)) self->finish_connect(std::string(what) + " refused: " + reply_text(r));
        };
    };
    if (!ep_.password.empty()) {
        std::vector<std::string> auth{"AUTH"};
        if (!ep_.username.empty()) auth.push_back(ep_.username);
        auth.push_back(ep_.password);
        command(std::move(auth), check("AUTH"));
    }
    if (ep_.db != 0) command({"SELECT", std::to_string(ep_.db)}, check("SELECT"));
    command({"PING"}, [self](const redisReply* r) {
        if (self->state_ != State::Connecting) return;
        self->finish_connect(is_error(r) ? "PING refused: " + reply_text(r) : "");
    });
}

void RedisConnection::finish_connect(const std::string& error) {
    connect_timer_.cancel();
    if (error.empty()) {
        state_ = State::Open;
    } else {
        state_ = State::Closed;
        resolver_.cancel();
        boost::system::error_code ignore;
        socket_.close(ignore);
        fail_pending();
    }
    if (auto done = std::move(done_)) done(error);
}

void RedisConnection::command(std::vector<std::string> argv, ReplyFn fn) {
    if (state_ == State::Closed || state_ == State::Idle) {
        if (fn) fn(nullptr);
        return;
    }
    out_ += format(argv);
    pending_.push_back(Pending{std::move(fn), std::chrono::steady_clock::now()});
    ++commands_;
    if (!write_busy_) start_write();
}

void RedisConnection::start_write() {
    if (out_.empty() || state_ == State::Closed) return;
    write_busy_ = true;
    writing_.swap(out_);
    out_.clear();
    auto self = shared_from_this();
    auto done = asio::bind_executor(strand_, [self](const boost::system::error_code& ec, size_t) {
        self->write_busy_ = false;
        self->writing_.clear();
        if (ec) return self->fail("write: " + ec.message());
        self->start_write();
    });
    if (tls_)
        asio::async_write(*tls_, asio::buffer(writing_), std::move(done));
    else
        asio::async_write(socket_, asio::buffer(writing_), std::move(done));
}

void RedisConnection::start_read() {
    auto self = shared_from_this();
    auto done = asio::bind_executor(strand_,
                                    [self](const boost::system::error_code& ec, size_t n) { self->on_read(ec, n); });
    if (tls_)
        tls_->async_read_some(asio::buffer(in_), std::move(done));
    else
        socket_.async_read_some(asio::buffer(in_), std::move(done));
}

void RedisConnection::on_read(const boost::system::error_code& ec, size_t n) {
    if (state_ == State::Closed) return;
    if (ec)
        return fail(ec == asio::error::eof || ec == asio::ssl::error::stream_truncated ? "connection closed by Redis"
                                                                                        : "read: " + ec.message());
    if (redisReaderFeed(reader_, in_.data(), n) != REDIS_OK) return fail("unreadable reply from Redis");
    for (;;) {
        void* raw = nullptr;
        if (redisReaderGetReply(reader_, &raw) != REDIS_OK) return fail("unreadable reply from Redis");
        if (raw == nullptr) break;
        std::unique_ptr<redisReply, void (*)(void*)> reply(static_cast<redisReply*>(raw), freeReplyObject);
        if (pending_.empty()) return fail("a reply nobody asked for");
        ReplyFn fn = std::move(pending_.front().fn);
        pending_.pop_front();
        if (fn) fn(reply.get());
        if (state_ == State::Closed) return;  // a callback closed us
    }
    start_read();
}

Millis RedisConnection::oldest_pending(std::chrono::steady_clock::time_point now) const {
    if (pending_.empty()) return Millis(0);
    return std::chrono::duration_cast<Millis>(now - pending_.front().sent);
}

void RedisConnection::fail(const std::string& why) {
    if (state_ == State::Closed) return;
    const bool was_open = state_ == State::Open;
    if (state_ == State::Connecting) return finish_connect(why);
    state_ = State::Closed;
    boost::system::error_code ignore;
    socket_.close(ignore);
    fail_pending();
    if (was_open && on_closed) on_closed(why);
}

void RedisConnection::close() {
    if (state_ == State::Closed) return;
    on_closed = nullptr;
    done_ = nullptr;
    state_ = State::Closed;
    connect_timer_.cancel();
    resolver_.cancel();
    boost::system::error_code ignore;
    socket_.close(ignore);
    fail_pending();
}

void RedisConnection::fail_pending() {
    auto pending = std::move(pending_);
    pending_.clear();
    out_.clear();
    for (auto& p : pending)
        if (p.fn) p.fn(nullptr);
}

}  // namespace tailgate::fleet
