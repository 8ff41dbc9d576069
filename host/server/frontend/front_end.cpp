#include "server/frontend/front_end.hpp"

#include "server/frontend/client_socket.hpp"
#include "server/frontend/connection.hpp"
#include "server/frontend/resumer.hpp"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/IPAddress.h>
#include <Poco/Net/TCPServer.h>
#include <Poco/ThreadPool.h>

namespace tailgate::server::frontend {

namespace {

Poco::Net::HTTPServerParams::Ptr server_params(const Options& o) {
    Poco::Net::HTTPServerParams::Ptr params(new Poco::Net::HTTPServerParams);
    params->setMaxThreads(o.max_threads);
    params->setMaxQueued(4096);
    params->setKeepAlive(true);
    params->setKeepAliveTimeout(Poco::Timespan(o.keep_alive_timeout.count() * 1000));
    params->setMaxKeepAliveRequests(0);
    params->setTimeout(Poco::Timespan(std::chrono::microseconds(o.io_timeout).count()));
    params->setServerName("tailgate");
    params->setSoftwareVersion(o.software_version);
    return params;
}

}  // namespace

struct FrontEnd::Impl {
    // Small stacks: a pool thread only parses, routes and copies bytes. Two
    // dispatchers share it (new connections, and connections resumed after a
    // relayed response or a park), each up to max_threads. Declared first: the
    // server and the resumer start work on it.
    std::unique_ptr<Poco::ThreadPool> pool;
    std::shared_ptr<ConnectionContext> ctx;
    std::unique_ptr<Poco::Net::TCPServer> tcp;
    std::shared_ptr<Resumer> resumer;  // also held by relays and parked connections
    int port = 0;
    bool stopped = false;
};

FrontEnd::FrontEnd(Handler handler, const Options& options, boost::asio::io_context& io, const std::string& host,
                   int port)
    : impl_(std::make_unique<Impl>()) {
    Impl& g = *impl_;
    g.pool = std::make_unique<Poco::ThreadPool>(2, 2 * options.max_threads, 60, 256 * 1024);
    const auto params = server_params(options);
    g.ctx = std::make_shared<ConnectionContext>(
        ConnectionContext{std::move(handler), params, options.limits, io, options.io_timeout, options.park_idle, {}});
    ListenSocket sock;
    sock.bind(Poco::Net::SocketAddress(host, static_cast<Poco::UInt16>(port)), true);
    // Accepted sockets inherit it (Linux): SSE events are small, never let Nagle
    // hold them, and no setsockopt per request.
    sock.setNoDelay(true);
    sock.listen(1024);
    g.port = sock.address().port();
    auto factory = make_connection_factory(g.ctx);
    g.tcp = std::make_unique<Poco::Net::TCPServer>(factory, *g.pool, sock, params);
    g.resumer = std::make_shared<Resumer>(factory, *g.pool, params->getMaxThreads());
    g.ctx->resumer = g.resumer;  // weakly: the resumer owns the factory, which owns the context
}

FrontEnd::~FrontEnd() { stop(); }

int FrontEnd::port() const { return impl_->port; }

void FrontEnd::start() { impl_->tcp->start(); }

void FrontEnd::stop(bool abort_current) {
    Impl& g = *impl_;
    if (g.stopped) return;
    g.stopped = true;
    g.tcp->stop();
    g.resumer->stop();
    g.ctx->registry->stop_all(abort_current);
    g.pool->joinAll();
}

const std::string& reason_phrase(int status) {
    return Poco::Net::HTTPResponse::getReasonForStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
}

bool is_loopback_host(const std::string& host) {
    if (host == "localhost" || host == "::1") return true;
    try {
        return Poco::Net::IPAddress(host).isLoopback();
    } catch (const Poco::Exception&) {
        return false;  // a name we did not resolve: assume it is reachable
    }
}

}  // namespace tailgate::server::frontend
