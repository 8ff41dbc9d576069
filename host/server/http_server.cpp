#include "server/http_server.hpp"

#include <Poco/BasicEvent.h>
#include <Poco/Delegate.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponseImpl.h>
#include <Poco/Net/HTTPServerSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/TCPServerConnection.h>
#include <Poco/Net/TCPServerConnectionFactory.h>
#include <Poco/Timestamp.h>

#include <poll.h>

#include <cerrno>
#include <chrono>
#include <memory>

namespace tailgate::server {

namespace {

using Poco::Net::HTTPResponse;

}  // namespace

// Raised by stopAll(); every live connection listens (Poco's own signal for
// this sits in a protected member of HTTPRequestHandlerFactory).
struct HttpServer::Stop {
    Poco::BasicEvent<const bool> stopped;
};

namespace {

class Session final : public Poco::Net::HTTPServerSession {
public:
    Session(const Poco::Net::StreamSocket& socket, const Poco::Net::HTTPServerParams::Ptr& params)
        : HTTPServerSession(socket, params),
          keep_alive_ms_(params->getKeepAliveTimeout().totalMilliseconds()),
          left_(params->getMaxKeepAliveRequests()) {}

    // Poco's hasMoreRequests() with one poll() between requests.
    bool next_request() {
        if (!socket().impl()->initialized()) return false;
        if (first_) {
            first_ = false;
            if (left_ > 0) --left_;
            else if (left_ == 0) left_ = -1;  // 0 means unlimited, as in Poco
            return hasMoreRequests();         // once per connection: Poco's own wait
        }
        if (left_ == 0 || !getKeepAlive()) return false;
        if (left_ > 0) --left_;
        if (buffered() > 0) return true;  // a pipelined request is already read
        return wait_readable(keep_alive_ms_);
    }

    bool can_keep_alive() const { return left_ != 0; }

private:
    bool wait_readable(int64_t timeout_ms) {
        const int fd = static_cast<int>(socket().impl()->sockfd());
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        for (;;) {
            pollfd p{fd, POLLIN, 0};
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            const int rc = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(0, left.count())));
            if (rc < 0 && errno == EINTR) continue;
            return rc > 0;  // readable, closed or failed: the read tells which
        }
    }

    bool first_ = true;
    int64_t keep_alive_ms_;
    int left_;  // requests still allowed on this connection; < 0: unlimited
};

class HttpConnection final : public Poco::Net::TCPServerConnection {
public:
    HttpConnection(const Poco::Net::StreamSocket& socket, Poco::Net::HTTPServerParams::Ptr params,
                   Poco::Net::HTTPRequestHandlerFactory::Ptr factory, std::shared_ptr<HttpServer::Stop> stop)
        : TCPServerConnection(socket), params_(std::move(params)), factory_(std::move(factory)), stop_(std::move(stop)) {
        stop_->stopped += Poco::delegate(this, &HttpConnection::on_server_stopped);
    }
    ~HttpConnection() override {
        try {
            stop_->stopped -= Poco::delegate(this, &HttpConnection::on_server_stopped);
        } catch (...) {
        }
    }

    void run() override {
        const std::string server = params_->getSoftwareVersion();
        Session session(socket(), params_);
        while (!stopped_ && session.next_request()) {
            try {
                Poco::FastMutex::ScopedLock lock(mutex_);
                if (stopped_) break;
                Poco::Net::HTTPServerResponseImpl response(session);
                Poco::Net::HTTPServerRequestImpl request(response, session, params_);
                response.setDate(Poco::Timestamp());
                response.setVersion(request.getVersion());
                response.setKeepAlive(params_->getKeepAlive() && request.getKeepAlive() && session.can_keep_alive());
                if (!server.empty()) response.set("Server", server);
                try {
                    std::unique_ptr<Poco::Net::HTTPRequestHandler> handler(factory_->createRequestHandler(request));
                    if (handler) {
                        if (request.getExpectContinue() && response.getStatus() == HTTPResponse::HTTP_OK)
                            response.sendContinue();
                        handler->handleRequest(request, response);
                        session.setKeepAlive(params_->getKeepAlive() && response.getKeepAlive() &&
                                             session.can_keep_alive());
                    } else {
                        send_error(session, HTTPResponse::HTTP_NOT_IMPLEMENTED);
                    }
                } catch (Poco::Exception&) {
                    if (!response.sent()) {
                        try {
                            send_error(session, HTTPResponse::HTTP_INTERNAL_SERVER_ERROR);
                        } catch (...) {
                        }
                    }
                    throw;
                }
            } catch (Poco::Net::NoMessageException&) {
                break;
            } catch (Poco::Net::MessageException&) {
                send_error(session, HTTPResponse::HTTP_BAD_REQUEST);
            } catch (Poco::Exception&) {
                if (session.networkException()) session.networkException()->rethrow();
                throw;
            }
        }
    }

private:
    static void send_error(Poco::Net::HTTPServerSession& session, HTTPResponse::HTTPStatus status) {
        Poco::Net::HTTPServerResponseImpl response(session);
        response.setVersion(Poco::Net::HTTPMessage::HTTP_1_1);
        response.setStatusAndReason(status);
        response.setKeepAlive(false);
        response.send();
        session.setKeepAlive(false);
    }

    void on_server_stopped(const bool& abort_current) {
        stopped_ = true;
        try {
            if (abort_current) {
                socket().shutdown();
            } else {
                Poco::FastMutex::ScopedLock lock(mutex_);  // after the request in progress
                socket().shutdown();
            }
        } catch (...) {
        }
    }

    Poco::Net::HTTPServerParams::Ptr params_;
    Poco::Net::HTTPRequestHandlerFactory::Ptr factory_;
    std::shared_ptr<HttpServer::Stop> stop_;
    std::atomic<bool> stopped_{false};
    Poco::FastMutex mutex_;
};

class ConnectionFactory final : public Poco::Net::TCPServerConnectionFactory {
public:
    ConnectionFactory(Poco::Net::HTTPServerParams::Ptr params, Poco::Net::HTTPRequestHandlerFactory::Ptr factory,
                      std::shared_ptr<HttpServer::Stop> stop)
        : params_(std::move(params)), factory_(std::move(factory)), stop_(std::move(stop)) {}
    Poco::Net::TCPServerConnection* createConnection(const Poco::Net::StreamSocket& socket) override {
        return new HttpConnection(socket, params_, factory_, stop_);
    }

private:
    Poco::Net::HTTPServerParams::Ptr params_;
    Poco::Net::HTTPRequestHandlerFactory::Ptr factory_;
    std::shared_ptr<HttpServer::Stop> stop_;
};

}  // namespace

HttpServer::HttpServer(Poco::Net::HTTPRequestHandlerFactory::Ptr factory, Poco::ThreadPool& pool,
                       const Poco::Net::ServerSocket& socket, Poco::Net::HTTPServerParams::Ptr params)
    : HttpServer(std::move(factory), pool, socket, std::move(params), std::make_shared<Stop>()) {}

HttpServer::HttpServer(Poco::Net::HTTPRequestHandlerFactory::Ptr factory, Poco::ThreadPool& pool,
                       const Poco::Net::ServerSocket& socket, Poco::Net::HTTPServerParams::Ptr params,
                       std::shared_ptr<Stop> stop)
    : TCPServer(new ConnectionFactory(params, std::move(factory), stop), pool, socket, params), stop_(std::move(stop)) {}

HttpServer::~HttpServer() = default;

void HttpServer::stopAll(bool abort_current) {
    stop();
    stop_->stopped(this, abort_current);
}

}  // namespace tailgate::server
