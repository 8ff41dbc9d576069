// Scheduler on a Boost.Asio io_context: steady_timer per timer.
#pragma once

#include "dispatch/executor.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

namespace tailgate::dispatch {

class AsioScheduler final : public Scheduler {
public:
    explicit AsioScheduler(boost::asio::io_context& io) : io_(io) {}
    SteadyClock::time_point now() override { return SteadyClock::now(); }
    TimerPtr after(std::chrono::microseconds delay, std::function<void()> fn) override;

private:
    boost::asio::io_context& io_;
};

}  // namespace tailgate::dispatch
