// Upstream HTTP/1.1 (+TLS) client: see client.hpp for the contract.
//
// Shape (pool.hpp: Core and Conn; call.hpp: UpstreamCall; http_syntax.hpp: head checks)
//   Client::Impl (= Core)   ssl::context, keep-alive pool (mutex-guarded map origin-key ->
//                           idle connections, LIFO), stats, one sweep timer that closes idle
//                           connections once they are older than idle_keepalive.
//   UpstreamCall            one exchange. All its work runs on its own strand; one
//                           steady_timer per call, re-armed lazily to the nearest deadline.
//   Conn                    socket (plain or beast::ssl_stream) + read buffer; moves between
//                           the pool and calls as a unique_ptr. No operation is ever pending
//                           on a pooled connection.
//
// Reading does not use beast's composed read operations: the call reads the socket itself
// (one async_read_some per wake-up) and feeds http::response_parser<buffer_body> in place,
// so every byte that arrives is parsed and delivered in the same handler, before the next
// socket read (no extra posts, no accumulation; several SSE events that arrive in one
// segment become one on_body). Body bytes are parsed into a per-thread scratch buffer that
// is only used for the duration of that handler.
#include "upstream/client.hpp"

#include "upstream/call.hpp"
#include "upstream/pool.hpp"

namespace tailgate::upstream {

const char* to_string(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::Connect: return "connect";
        case ErrorKind::Timeout: return "timeout";
        case ErrorKind::Protocol: return "protocol";
    }
    return "unknown";
}

std::string_view ResponseHead::header(std::string_view lower_name) const {
    for (const auto& [name, value] : headers) {
        if (name == lower_name) return value;
    }
    return {};
}

struct Client::Impl : detail::Core {
    using Core::Core;
};

Client::Client(boost::asio::io_context& io, Options opts) : impl_(std::make_shared<Impl>(io, std::move(opts))) {}

Client::~Client() {
    if (impl_) impl_->shutdown();
}

CallPtr Client::start(Request req, std::shared_ptr<Handler> handler) {
    auto call = std::make_shared<detail::UpstreamCall>(std::static_pointer_cast<detail::Core>(impl_), std::move(req),
                                                       std::move(handler));
    call->start();
    return call;
}

PoolStats Client::stats() const { return impl_->stats(); }

boost::asio::io_context& Client::io() const { return impl_->io(); }

}  // namespace tailgate::upstream
