// The per-connection loop that replaces Poco's HTTPServerConnection: it reads
// each request with deadlines and a header budget (client_socket.hpp), answers
// an unreadable head itself (OpenAI-shaped 400/408/413/414/431/501/505, where
// Poco would send an empty 400), calls the handler with a Request, and hands
// an idle keep-alive connection to the parker. Front-end internal.
#pragma once

#include "server/frontend/detached_client.hpp"
#include "server/frontend/front_end.hpp"

#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/TCPServerConnectionFactory.h>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <memory>
#include <mutex>
#include <unordered_set>

namespace tailgate::server::frontend {

class ClientConnection;

// The live connections, so that stop() can abort them (shut their sockets down).
struct Registry {
    std::mutex mu;
    bool stopped = false;
    std::unordered_set<ClientConnection*> live;
    void stop_all(bool abort_current);
};

// What every connection of one front end shares (one reference per connection).
struct ConnectionContext {
    Handler handler;
    Poco::Net::HTTPServerParams::Ptr params;
    ClientLimits limits;
    boost::asio::io_context& io;              // relays and parked connections
    std::chrono::milliseconds write_timeout;  // a relay's write that makes no progress
    bool park_idle = true;
    std::weak_ptr<ConnectionResumer> resumer;  // set once, before the server starts
    std::shared_ptr<Registry> registry = std::make_shared<Registry>();
};

Poco::Net::TCPServerConnectionFactory::Ptr make_connection_factory(std::shared_ptr<const ConnectionContext> ctx);

}  // namespace tailgate::server::frontend
