#include "server/frontend/resumer.hpp"

#include "server/frontend/client_socket.hpp"

#include <Poco/Exception.h>
#include <Poco/Net/TCPServerConnection.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

namespace tailgate::server::frontend {

void Resumer::resume(DetachedClient c, bool keep_alive, std::function<void()> finish) {
    bool start_worker = false;
    {
        std::unique_lock lk(mu_);
        if (stopped_) {
            lk.unlock();
            ::close(c.fd);
            if (finish) finish();
            return;
        }
        const int fd = c.fd;
        ClientSocketImpl::Resume r{c.requests_left, keep_alive, std::move(finish)};
        queue_.emplace_back(new ClientSocketImpl(fd, std::move(c), std::move(r)));
        if (idle_ == 0 && workers_ < max_workers_) {
            ++workers_;
            start_worker = true;
        }
    }
    if (!start_worker) {
        cv_.notify_one();  // after the unlock: the woken thread finds the lock free
        return;
    }
    struct Worker final : Poco::Runnable {
        std::shared_ptr<Resumer> owner;
        void run() override {
            owner->serve();
            delete this;
        }
    };
    auto* w = new Worker;
    w->owner = shared_from_this();
    try {
        pool_.start(*w);
    } catch (const Poco::Exception&) {
        // No thread free right now: a running worker takes the connection when it is done.
        delete w;
        std::lock_guard lk(mu_);
        --workers_;
    }
}

void Resumer::stop() {
    {
        std::lock_guard lk(mu_);
        stopped_ = true;
        queue_.clear();
    }
    cv_.notify_all();
}

void Resumer::serve() {
    std::unique_lock lk(mu_);
    for (;;) {
        while (queue_.empty() && !stopped_) {
            ++idle_;
            const bool woken = cv_.wait_for(lk, std::chrono::seconds(10)) == std::cv_status::no_timeout;
            --idle_;
            if (!woken && queue_.empty() && workers_ > 1) break;  // keep one worker warm
        }
        if (queue_.empty() || stopped_) break;
        Poco::Net::StreamSocket socket = std::move(queue_.front());
        queue_.pop_front();
        lk.unlock();
        try {
            std::unique_ptr<Poco::Net::TCPServerConnection> conn(factory_->createConnection(socket));
            conn->run();  // as TCPServerDispatcher does (start() is its friend-only wrapper)
        } catch (...) {
            spdlog::debug("resumed client connection ended by an exception");
        }
        lk.lock();
    }
    --workers_;
}

}  // namespace tailgate::server::frontend
