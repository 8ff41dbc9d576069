// Poco's HTTPServer with a cheaper wait between keep-alive requests.
//
// Poco 1.11 waits for a connection's next request with Socket::poll(), which
// creates, fills, waits on and closes an epoll instance every time: four
// syscalls and an fd allocation per request. HttpConnection is Poco's
// HTTPServerConnection loop (same request/response objects, parameters,
// error handling and stop semantics) that waits with one ::poll() instead.
#pragma once

#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/TCPServer.h>
#include <Poco/ThreadPool.h>

#include <memory>

namespace tailgate::server {

class HttpServer final : public Poco::Net::TCPServer {
public:
    HttpServer(Poco::Net::HTTPRequestHandlerFactory::Ptr factory, Poco::ThreadPool& pool,
               const Poco::Net::ServerSocket& socket, Poco::Net::HTTPServerParams::Ptr params);
    ~HttpServer() override;

    // As Poco's HTTPServer::stopAll: stop accepting, then shut down the
    // connections' sockets (idle ones at once; busy ones after their current
    // request unless abort_current).
    void stopAll(bool abort_current = false);

    struct Stop;

private:
    HttpServer(Poco::Net::HTTPRequestHandlerFactory::Ptr factory, Poco::ThreadPool& pool,
               const Poco::Net::ServerSocket& socket, Poco::Net::HTTPServerParams::Ptr params,
               std::shared_ptr<Stop> stop);
    std::shared_ptr<Stop> stop_;
};

}  // namespace tailgate::server
