#include "upstream/pool.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <sys/socket.h>

#include <cerrno>
#include <stdexcept>

namespace tailgate::upstream::detail {

std::string pool_key(const Origin& o) {
    std::string key;
    key.reserve(o.host.size() + o.port.size() + 4);
    key += o.tls ? (o.ssl_verify ? 'S' : 's') : 'p';
    key += o.host;
    key += '|';
    key += o.port;
    return key;
}

// The system trust store, parsed once per process (OpenSSL 3 takes ~0.2 s to load the
// default CA bundle) and shared by every Client without a ca_file. X509_STORE is
// reference-counted and safe for concurrent verification; it is never freed.
X509_STORE* system_trust_store() {
    static X509_STORE* const store = [] {
        X509_STORE* s = X509_STORE_new();
        X509_STORE_set_default_paths(s);   // a missing system store is not fatal
        ERR_clear_error();
        return s;
    }();
    return store;
}

Core::Core(asio::io_context& io, Client::Options opts)
    : io_(io), opts_(std::move(opts)), ssl_ctx_(ssl::context::tls_client), sweep_timer_(io) {
    ssl_ctx_.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                         ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    ssl_ctx_.set_verify_mode(ssl::verify_peer);
    if (opts_.ca_file.empty()) {
        SSL_CTX_set1_cert_store(ssl_ctx_.native_handle(), system_trust_store());
    } else {
        error_code ec;
        ssl_ctx_.load_verify_file(opts_.ca_file, ec);
        if (ec) {
            throw std::runtime_error("upstream client: cannot load CA file '" + opts_.ca_file +
                                     "': " + ec.message());
        }
        ssl_ctx_.set_default_verify_paths(ec);   // missing system store is not fatal
        ERR_clear_error();
    }
    // Keep sessions cheap: no client-side session cache to manage.
    SSL_CTX_set_session_cache_mode(ssl_ctx_.native_handle(), SSL_SESS_CACHE_OFF);
}

void Core::discard(Conn& c) {
    discarded_.fetch_add(1, std::memory_order_relaxed);
    c.close();
}

ConnPtr Core::take(const std::string& key) {
    const auto now = Clock::now();
    for (;;) {
        ConnPtr c;
        {
            std::lock_guard lock(mu_);
            auto it = idle_.find(key);
            if (it == idle_.end() || it->second.empty()) return nullptr;
            c = std::move(it->second.back());   // LIFO: the warmest connection
            it->second.pop_back();
            idle_count_.fetch_sub(1, std::memory_order_relaxed);
        }
        if (now - c->idle_since < opts_.idle_keepalive && c->looks_alive()) return c;
        discard(*c);
    }
}

void Core::give_back(const std::string& key, ConnPtr c) {
    c->idle_since = Clock::now();
    if (c->buf.capacity() > 4 * kInitialReadSize) {   // after a large body: don't park 64 KiB
        c->buf.shrink_to_fit();
        c->read_size = kInitialReadSize;
    }
    {
        std::lock_guard lock(mu_);
        if (!closed_ && opts_.max_idle_per_origin > 0) {
            auto& list = idle_[key];
            if (list.size() < opts_.max_idle_per_origin) {
                list.push_back(std::move(c));
                idle_count_.fetch_add(1, std::memory_order_relaxed);
                arm_sweep_locked(Clock::now() + opts_.idle_keepalive);
                return;
            }
        }
    }
    discard(*c);
}

void Core::shutdown() {
    std::vector<ConnPtr> doomed;
    {
        std::lock_guard lock(mu_);
        closed_ = true;
        for (auto& [key, list] : idle_) {
            for (auto& c : list) doomed.push_back(std::move(c));
        }
        idle_.clear();
        idle_count_.store(0, std::memory_order_relaxed);
        sweep_timer_.cancel();
    }
    for (auto& c : doomed) discard(*c);
}

PoolStats Core::stats() const {
    PoolStats s;
    s.connects = connects_.load(std::memory_order_relaxed);
    s.reuses = reuses_.load(std::memory_order_relaxed);
    s.discarded = discarded_.load(std::memory_order_relaxed);
    s.idle = idle_count_.load(std::memory_order_relaxed);
    return s;
}

void Core::arm_sweep_locked(Clock::time_point when) {
    if (sweep_armed_ && when >= sweep_at_) return;
    sweep_armed_ = true;
    sweep_at_ = when;
    sweep_timer_.expires_at(when);
    sweep_timer_.async_wait([weak = weak_from_this()](error_code ec) {
        if (ec == asio::error::operation_aborted) return;
        if (auto self = weak.lock()) self->sweep();
    });
}

void Core::sweep() {
    std::vector<ConnPtr> doomed;
    {
        std::lock_guard lock(mu_);
        sweep_armed_ = false;
        if (closed_) return;
        const auto now = Clock::now();
        auto next = kNoDeadline;
        for (auto& [key, list] : idle_) {
            // Oldest first; also drop the ones the server has closed meanwhile.
            auto keep = list.begin();
            for (auto& c : list) {
                if (now - c->idle_since >= opts_.idle_keepalive || !c->looks_alive()) {
                    doomed.push_back(std::move(c));
                } else {
                    next = std::min(next, c->idle_since + opts_.idle_keepalive);
                    if (&*keep != &c) *keep = std::move(c);
                    ++keep;
                }
            }
            list.erase(keep, list.end());
        }
        idle_count_.fetch_sub(doomed.size(), std::memory_order_relaxed);
        if (next != kNoDeadline) arm_sweep_locked(next);
    }
    for (auto& c : doomed) discard(*c);
}

}  // namespace tailgate::upstream::detail
