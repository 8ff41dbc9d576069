// Request (front_end.hpp) over Poco's request and response objects, for one
// handler call on a pool thread. Front-end internal.
#pragma once

#include "server/frontend/connection.hpp"
#include "server/frontend/front_end.hpp"
#include "server/frontend/session.hpp"

#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponseImpl.h>

namespace tailgate::server::frontend {

class PocoRequest final : public Request {
public:
    PocoRequest(Poco::Net::HTTPServerRequestImpl& req, Poco::Net::HTTPServerResponseImpl& resp, Session& session,
                ClientSocketImpl& sock, const ConnectionContext& ctx)
        : req_(req), resp_(resp), session_(session), sock_(sock), ctx_(ctx) {}

    const std::string& method() const override { return req_.getMethod(); }
    const std::string& uri() const override { return req_.getURI(); }
    const std::string& version() const override { return req_.getVersion(); }
    const std::string& header(const std::string& name) const override;
    bool has_header(const std::string& name) const override { return req_.has(name); }
    void each_header(const std::string& name,
                     const std::function<void(const std::string&, const std::string&)>& fn) const override;

    std::optional<ApiError> read_body(std::string& body) override;
    void discard_body() override;

    void set_header(const std::string& name, const std::string& value) override { resp_.set(name, value); }
    void set_keep_alive(bool keep_alive) override { resp_.setKeepAlive(keep_alive); }
    bool keep_alive() const override { return resp_.getKeepAlive(); }
    int status() const override { return static_cast<int>(resp_.getStatus()); }
    void respond(int status, const std::string& content_type, std::string_view body) override;
    std::string header_lines() const override;

    void relay(std::shared_ptr<ResponseSource> source, std::shared_ptr<Exchange> exchange) override;

    const ConnectionContext& context() const { return ctx_; }

private:
    Poco::Net::HTTPServerRequestImpl& req_;
    Poco::Net::HTTPServerResponseImpl& resp_;
    Session& session_;
    ClientSocketImpl& sock_;
    const ConnectionContext& ctx_;
};

}  // namespace tailgate::server::frontend
