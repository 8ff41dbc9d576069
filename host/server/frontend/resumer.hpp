// The queue that gives detached connections back to the pool threads.
// Front-end internal.
#pragma once

#include "server/frontend/detached_client.hpp"

#include <Poco/Net/StreamSocket.h>
#include <Poco/Net/TCPServerConnectionFactory.h>
#include <Poco/ThreadPool.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

namespace tailgate::server::frontend {

// Detached connections come back to pool threads through this queue (one per
// response on a keep-alive connection, so it is on every request's path).
// Poco's TCPServerDispatcher would do, but its hand-off wakes the thread while
// holding the queue's locks: about ten futex calls per request where this
// makes two. Never refuses for a full queue: that would drop the request's
// bookkeeping along with the connection.
class Resumer final : public ConnectionResumer, public std::enable_shared_from_this<Resumer> {
public:
    Resumer(Poco::Net::TCPServerConnectionFactory::Ptr factory, Poco::ThreadPool& pool, int max_threads)
        : factory_(std::move(factory)), pool_(pool), max_workers_(std::max(1, max_threads)) {}

    void resume(DetachedClient c, bool keep_alive, std::function<void()> finish) override;
    void stop();

private:
    void serve();

    Poco::Net::TCPServerConnectionFactory::Ptr factory_;
    Poco::ThreadPool& pool_;
    const int max_workers_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Poco::Net::StreamSocket> queue_;
    int workers_ = 0;  // started, not yet returned
    int idle_ = 0;     // waiting for a connection
    bool stopped_ = false;
};

}  // namespace tailgate::server::frontend
