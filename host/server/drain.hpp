// Graceful shutdown bookkeeping: which API requests are in flight, whether
// the gateway is draining, and ending what is still running when the drain
// period is over.
//
// On SIGTERM/SIGINT the gateway keeps its listener (so readiness probes get a
// "draining" answer rather than a refused connection) but refuses new API
// requests; in-flight requests and streams run on until drain_timeout. Then
// each one still running is ended through its client channel: a stream gets an
// SSE error event, a request whose response has not started gets a 503.
#pragma once

#include "common/api_error.hpp"
#include "dispatch/executor.hpp"
#include "server/client_channel.hpp"

#include <atomic>
#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <vector>

namespace tailgate::server {

class Drain {
    struct Exchange {
        dispatch::ExecutorPtr executor;
        std::shared_ptr<ClientChannel> channel;
    };

public:
    // One API request, from the start of its handling to its end.
    class Request {
    public:
        explicit Request(Drain& d);
        ~Request();
        Request(const Request&) = delete;
        Request& operator=(const Request&) = delete;

        // False when the request arrived after draining began: refuse it.
        bool admitted() const { return admitted_; }
        // Makes an upstream exchange of this request endable by abort_all().
        void track(dispatch::ExecutorPtr executor, std::shared_ptr<ClientChannel> channel);

    private:
        Drain& d_;
        bool admitted_;
        std::vector<std::list<Exchange>::iterator> tracked_;  // into d_.exchanges_
    };

    void begin() { draining_.store(true); }
    bool draining() const { return draining_.load(std::memory_order_relaxed); }
    // API requests being handled (admitted ones).
    size_t active() const { return active_.load(); }

    // Ends every tracked exchange that has not finished with `error` (an SSE
    // error event after a stream started, the error response before) and
    // cancels its upstream attempts. Returns how many were ended.
    size_t abort_all(const ApiError& error);

private:
    std::atomic<bool> draining_{false};
    std::atomic<size_t> active_{0};
    std::mutex mu_;
    std::list<Exchange> exchanges_;
};

}  // namespace tailgate::server
