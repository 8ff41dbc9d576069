#include "upstream/call.hpp"
#include "upstream/http_syntax.hpp"

#include <charconv>

namespace tailgate::upstream::detail {

void UpstreamCall::start() {
    {
        std::lock_guard lk(entry_mu_);
        if (start_inline()) return;
    }
    asio::post(strand_, locked([self = shared_from_this()] { self->begin(); }));
}

void UpstreamCall::resume() {
    if (!paused_.exchange(false, std::memory_order_acq_rel)) return;
    asio::post(strand_, locked([self = shared_from_this()] { self->resume_reading(); }));
}

void UpstreamCall::cancel() {
    if (cancel_requested_.exchange(true, std::memory_order_acq_rel)) return;
    if (strand_.running_in_this_thread()) {
        do_cancel();   // synchronous: the socket is closed before cancel() returns
    } else {
        asio::post(strand_, locked([self = shared_from_this()] { self->do_cancel(); }));
    }
}

std::string UpstreamCall::where() const {
    std::string s;
    s.reserve(req_.label.size() + req_.origin.host.size() + req_.origin.port.size() + 16);
    if (!req_.label.empty()) {
        s += "deployment '";
        s += req_.label;
        s += "' (";
    }
    s += req_.origin.host;
    s += ':';
    s += req_.origin.port;
    if (!req_.label.empty()) s += ')';
    return s;
}

void UpstreamCall::release_io() {
    timer_.cancel();
    if (resolver_) resolver_->cancel();
    if (conn_) {
        if (conn_counted_) {
            core_->discard(*conn_);
        } else {
            conn_->close();
        }
    }
    // conn_ itself stays: pending operations still reference its stream and buffer.
}

void UpstreamCall::do_cancel() {
    if (finished_) return;
    finished_ = true;
    release_io();
    if (!in_callback_) handler_.reset();   // else dropped by notify() after the callback
}

void UpstreamCall::fail(ErrorKind kind, std::string message) {
    if (finished_) return;
    finished_ = true;
    release_io();
    notify_final([&](Handler& h) { h.on_error(kind, message); });
}

void UpstreamCall::set_phase(Phase phase, Millis timeout) {
    phase_ = phase;
    phase_timeout_ = timeout;
    phase_deadline_ = deadline_after(Clock::now(), timeout);
    arm_timer();
}

// One timer per call. Deadlines only move later on the hot path (idle), which costs a
// field update; the timer fires at the old time, finds nothing expired and re-arms.
void UpstreamCall::arm_timer() {
    const auto when = std::min(phase_deadline_, total_deadline_);
    if (when == kNoDeadline) return;
    if (timer_armed_ && when >= timer_expiry_) return;
    timer_armed_ = true;
    timer_expiry_ = when;
    timer_.expires_at(when);
    timer_.async_wait(on_strand([self = shared_from_this()](error_code ec) { self->on_timer(ec); }));
}

void UpstreamCall::on_timer(error_code ec) {
    if (ec == asio::error::operation_aborted || finished_) return;
    timer_armed_ = false;
    const auto now = Clock::now();
    if (now >= total_deadline_) {
        fail(ErrorKind::Timeout, "total timeout after " + std::to_string(req_.total_timeout.count()) +
                                     " ms (" + where() + ")");
    } else if (now >= phase_deadline_) {
        const char* what = phase_ == Phase::Connect  ? "connect timeout"
                           : phase_ == Phase::Header ? "first byte (response header) timeout"
                                                     : "idle timeout";
        const char* detail = phase_ == Phase::Connect  ? "resolve/connect/TLS handshake"
                             : phase_ == Phase::Header ? "waiting for the response head"
                                                       : "no body data";
        fail(ErrorKind::Timeout, std::string(what) + " after " + std::to_string(phase_timeout_.count()) +
                                     " ms (" + detail + ", " + where() + ")");
    } else {
        arm_timer();
    }
}

// Serializes the request head once, into one preallocated string. The body is sent
// from req_.body directly (gather write), never copied.
bool UpstreamCall::build_head() {
    const auto& o = req_.origin;
    if (!valid_token(req_.method) || !valid_target(req_.target)) return false;
    size_t size = req_.method.size() + req_.target.size() + o.host.size() + o.port.size() + 128;
    bool has_host = false, has_type = false;
    for (const auto& [name, value] : req_.headers) {
        if (!valid_token(name) || !valid_field_value(value)) return false;
        size += name.size() + value.size() + 4;
        if (iequals(name, "host")) has_host = true;
        if (iequals(name, "content-type")) has_type = true;
    }
    head_.reserve(size);
    head_ += req_.method;
    head_ += ' ';
    head_ += req_.target.empty() ? std::string_view("/") : std::string_view(req_.target);
    head_ += " HTTP/1.1\r\n";
    if (!has_host) {
        head_ += "Host: ";
        const bool v6 = o.host.find(':') != std::string::npos && o.host.front() != '[';
        if (v6) head_ += '[';
        head_ += o.host;
        if (v6) head_ += ']';
        const bool default_port = o.port.empty() || (o.tls ? o.port == "443" : o.port == "80");
        if (!default_port) {
            head_ += ':';
            head_ += o.port;
        }
        head_ += "\r\n";
    }
    for (const auto& [name, value] : req_.headers) {
        // Framing and connection management are ours.
        if (iequals(name, "content-length") || iequals(name, "connection") ||
            iequals(name, "transfer-encoding") || iequals(name, "keep-alive")) {
            continue;
        }
        head_ += name;
        head_ += ": ";
        head_ += value;
        head_ += "\r\n";
    }
    if (!has_type && !req_.body.empty()) head_ += "Content-Type: application/json\r\n";
    const bool bodyless = req_.method == "GET" || req_.method == "HEAD" || req_.method == "DELETE" ||
                          req_.method == "OPTIONS";
    if (!req_.body.empty() || !bodyless) {
        char digits[24];
        auto [end, ec] = std::to_chars(digits, digits + sizeof digits, req_.body.size());
        (void)ec;
        head_ += "Content-Length: ";
        head_.append(digits, end);
        head_ += "\r\n";
    }
    head_ += "Connection: keep-alive\r\n\r\n";
    return true;
}

}  // namespace tailgate::upstream::detail
