#include "upstream/call.hpp"
#include "upstream/http_syntax.hpp"

#include <boost/asio/connect.hpp>

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <sys/socket.h>

#include <cerrno>
#include <charconv>

namespace tailgate::upstream::detail {

void UpstreamCall::begin() {
    if (finished_) return;
    if (cancelled()) {
        do_cancel();
        return;
    }
    if (!handler_) {
        finished_ = true;
        return;
    }
    total_deadline_ = deadline_after(Clock::now(), req_.total_timeout);
    if (head_.empty() && (req_.origin.host.empty() || !build_head())) {
        fail(ErrorKind::Protocol, "invalid request (method, target, header name or value)");
        return;
    }
    if (req_.origin.port.empty()) req_.origin.port = req_.origin.tls ? "443" : "80";
    key_ = pool_key(req_.origin);
    conn_ = core_->take(key_);
    if (conn_) {
        reused_ = true;
        conn_counted_ = true;
        core_->count_reuse();
        send();
    } else {
        connect();
    }
}

// The fast path, on the caller's thread (under entry_mu_): with an idle plain
// connection in the pool, send the request with one non-blocking sendmsg and start
// reading, so the io thread is not woken just to send (an epoll interrupt and a
// context switch per request). It never calls the handler (the caller may hold
// the executor's lock); whatever it cannot finish continues on the strand.
// False: nothing was started, begin() does it all.
bool UpstreamCall::start_inline() {
    if (finished_ || cancelled() || !handler_ || req_.origin.tls || req_.origin.host.empty()) return false;
    if (req_.origin.port.empty()) req_.origin.port = "80";
    if (!build_head()) {
        head_.clear();  // begin() reports it
        return false;
    }
    key_ = pool_key(req_.origin);
    conn_ = core_->take(key_);
    if (!conn_) return false;  // begin() connects
    total_deadline_ = deadline_after(Clock::now(), req_.total_timeout);
    reused_ = true;
    conn_counted_ = true;
    core_->count_reuse();
    iovec iov[2] = {{head_.data(), head_.size()}, {const_cast<char*>(req_.body.data()), req_.body.size()}};
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = req_.body.empty() ? 1 : 2;
    const ssize_t n = ::sendmsg(conn_->plain->native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    const int err = n < 0 ? errno : 0;
    if (n == static_cast<ssize_t>(head_.size() + req_.body.size())) {
        on_write({});  // arms the header timer and starts reading
    } else if (n < 0 && err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
        error_code ec(err, boost::system::system_category());
        asio::post(strand_, locked([self = shared_from_this(), ec] { self->on_write(ec); }));  // stale: retry
    } else {
        written_ = n > 0 ? static_cast<size_t>(n) : 0;
        asio::post(strand_, locked([self = shared_from_this()] { self->send(); }));
    }
    return true;
}

void UpstreamCall::connect() {
    reused_ = false;
    conn_counted_ = false;
    conn_ = std::make_unique<Conn>(core_->io().get_executor());
    set_phase(Phase::Connect, req_.connect_timeout);
    error_code ec;
    const auto host = bare_host(req_.origin.host);
    const auto addr = asio::ip::make_address(std::string(host), ec);
    if (!ec) {   // literal IP: no resolver
        uint16_t port = 0;
        auto [p, perr] = std::from_chars(req_.origin.port.data(), req_.origin.port.data() + req_.origin.port.size(), port);
        if (perr != std::errc() || p != req_.origin.port.data() + req_.origin.port.size()) {
            fail(ErrorKind::Connect, "invalid port '" + req_.origin.port + "'");
            return;
        }
        conn_->plain->async_connect(tcp::endpoint(addr, port),
                                    on_strand([self = shared_from_this()](error_code e) { self->on_connect(e); }));
        return;
    }
    if (!resolver_) resolver_.emplace(strand_);
    resolver_->async_resolve(
        std::string(host), req_.origin.port,
        on_strand([self = shared_from_this()](error_code e, tcp::resolver::results_type results) {
            self->on_resolve(e, std::move(results));
        }));
}

void UpstreamCall::on_resolve(error_code ec, tcp::resolver::results_type results) {
    if (finished_) return;
    if (ec) {
        fail(ErrorKind::Connect, "resolving " + where() + " failed: " + ec.message());
        return;
    }
    asio::async_connect(*conn_->plain, results,
                        on_strand([self = shared_from_this()](error_code e, const tcp::endpoint&) {
                            self->on_connect(e);
                        }));
}

void UpstreamCall::on_connect(error_code ec) {
    if (finished_) return;
    if (ec) {
        fail(ErrorKind::Connect, "connect to " + where() + " failed: " + ec.message());
        return;
    }
    core_->count_connect();
    conn_counted_ = true;
    error_code ignored;
    conn_->plain->set_option(tcp::no_delay(true), ignored);
    if (req_.origin.tls) {
        start_tls();
    } else {
        send();
    }
}

void UpstreamCall::start_tls() {
    auto& c = *conn_;
    c.tls.emplace(std::move(*c.plain), core_->ssl_ctx());
    c.plain.reset();
    SSL* ssl = c.tls->native_handle();
    const std::string host(bare_host(req_.origin.host));
    error_code ec;
    asio::ip::make_address(host, ec);
    const bool ip_ok = !ec;
    if (!ip_ok) SSL_set_tlsext_host_name(ssl, host.c_str());   // SNI: names only (RFC 6066)
    if (req_.origin.ssl_verify) {
        c.tls->set_verify_mode(ssl::verify_peer);
        // Hostname / IP check inside OpenSSL's verifier: a mismatch surfaces as a proper
        // verify result (X509_V_ERR_HOSTNAME_MISMATCH / IP_ADDRESS_MISMATCH).
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (ip_ok) {
            X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
        } else {
            X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
        }
    } else {
        c.tls->set_verify_mode(ssl::verify_none);
    }
    c.tls->async_handshake(ssl::stream_base::client,
                           on_strand([self = shared_from_this()](error_code e) { self->on_handshake(e); }));
}

void UpstreamCall::on_handshake(error_code ec) {
    if (finished_) return;
    if (ec) {
        const long result = SSL_get_verify_result(conn_->tls->native_handle());
        if (req_.origin.ssl_verify && result != X509_V_OK) {
            fail(ErrorKind::Connect, "TLS certificate verification failed for " + where() + ": " +
                                         X509_verify_cert_error_string(result));
        } else {
            fail(ErrorKind::Connect, "TLS handshake with " + where() + " failed: " + ec.message());
        }
        return;
    }
    send();
}

}  // namespace tailgate::upstream::detail
