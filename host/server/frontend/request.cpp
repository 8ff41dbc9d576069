#include "server/frontend/request.hpp"

#include "server/frontend/client_errors.hpp"
#include "server/frontend/client_relay.hpp"

#include <Poco/String.h>

#include <unistd.h>

#include <algorithm>
#include <istream>

namespace tailgate::server::frontend {

const std::string& PocoRequest::header(const std::string& name) const {
    return req_.get(name, Poco::Net::HTTPMessage::EMPTY);
}

void PocoRequest::each_header(const std::string& name,
                              const std::function<void(const std::string&, const std::string&)>& fn) const {
    for (auto it = req_.find(name); it != req_.end() && Poco::icompare(it->first, name) == 0; ++it)
        fn(it->first, it->second);
}

// Straight into `body`, never more than the limit + 1 (no stack buffer: a pool
// thread's touched stack stays resident).
std::optional<ApiError> PocoRequest::read_body(std::string& body) {
    const size_t limit = ctx_.limits.max_body_bytes;
    // A declared length is never negative here (connection.cpp refused it); unsigned, the
    // default limit (SIZE_MAX) means none.
    if (req_.hasContentLength() && static_cast<uint64_t>(req_.getContentLength64()) > limit)
        return ApiError::too_large("Request body of " + std::to_string(req_.getContentLength64()) +
                                   " bytes exceeds the limit of " + std::to_string(limit) + " bytes");
    std::istream& in = req_.stream();
    size_t step = req_.hasContentLength() ? std::min(static_cast<size_t>(req_.getContentLength64()), limit) + 1 : 16384;
    while (in) {
        const size_t old = body.size();
        body.resize(old + step);
        in.read(body.data() + old, static_cast<std::streamsize>(step));
        body.resize(old + static_cast<size_t>(in.gcount()));
        step = 16384;
        if (body.size() > limit)
            return ApiError::too_large("Request body exceeds the limit of " + std::to_string(limit) + " bytes");
    }
    // Reading stopped at broken chunked framing (http_head_validator.hpp), or at the body timeout.
    if (const char* why = sock_.body_error())
        return client_error(400, std::string("Malformed HTTP request: ") + why, "invalid_http_request");
    if (sock_.phase() == ClientSocketImpl::Phase::Body && sock_.expired())
        return request_timeout_error("Request body", ctx_.limits.body_timeout);
    return std::nullopt;
}

void PocoRequest::discard_body() {
    const size_t limit = ctx_.limits.max_body_bytes;
    if (req_.hasContentLength() && req_.getContentLength64() == 0) return;
    if (!req_.hasContentLength() && !req_.getChunkedTransferEncoding()) return;
    if (req_.hasContentLength() && static_cast<uint64_t>(req_.getContentLength64()) > limit) {
        resp_.setKeepAlive(false);
        return;
    }
    std::istream& in = req_.stream();
    char buf[4096];  // small: every touched stack page stays resident per pool thread
    size_t total = 0;
    while (in) {
        in.read(buf, sizeof buf);
        total += static_cast<size_t>(in.gcount());
        if (total > limit) {
            resp_.setKeepAlive(false);
            return;
        }
    }
    if (in.bad()) resp_.setKeepAlive(false);  // cut short (body timeout): the rest is unread
}

void PocoRequest::respond(int status, const std::string& content_type, std::string_view body) {
    resp_.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
    resp_.setContentType(content_type);
    resp_.setContentLength(static_cast<std::streamsize>(body.size()));
    resp_.sendBuffer(body.data(), body.size());
}

std::string PocoRequest::header_lines() const {
    std::string out;
    for (const auto& [name, value] : resp_) {
        if (Poco::icompare(name, "Connection") == 0) continue;
        out += name;
        out += ": ";
        out += value;
        out += "\r\n";
    }
    return out;
}

// The connection leaves Poco: the loop in connection.cpp sees the socket
// released and ends without closing it; the relay resumes it when done.
void PocoRequest::relay(std::shared_ptr<ResponseSource> source, std::shared_ptr<Exchange> exchange) {
    DetachedClient d;
    // What Poco left of this request (trailer fields) is dropped; when that
    // cannot be told, the connection closes after the response.
    const auto skip = sock_.unread_part_of_request(session_.pending());
    d.buffered = session_.take_buffered().substr(skip.value_or(0)) + sock_.take_prefix();  // in the order sent
    d.requests_left = skip ? session_.requests_left() : 0;
    sock_.addresses_to(d);
    sock_.begin(ClientSocketImpl::Phase::Free, Clock::time_point::max());
    req_.detachSocket();
    d.fd = sock_.release();
    auto resumer = ctx_.resumer.lock();
    if (!resumer) {  // the front end is gone: nothing would resume the connection
        ::close(d.fd);
        return;
    }
    ClientRelay::Options options;
    options.write_timeout = ctx_.write_timeout;
    ClientRelay::start(ctx_.io, std::move(d), std::move(resumer), std::move(source), std::move(exchange), options);
}

}  // namespace tailgate::server::frontend
