#include "dispatch/asio_scheduler.hpp"

#include <atomic>

namespace tailgate::dispatch {

namespace {

class AsioTimer final : public Scheduler::Timer {
public:
    AsioTimer(boost::asio::io_context& io, std::chrono::microseconds delay, std::function<void()> fn)
        : state_(std::make_shared<State>(io)) {
        state_->timer.expires_after(delay);
        // The handler owns the state, so the timer object outlives this wrapper
        // until the (possibly aborted) completion has run.
        state_->timer.async_wait([s = state_, fn = std::move(fn)](const boost::system::error_code& ec) {
            if (ec || s->cancelled.load(std::memory_order_acquire)) return;
            fn();
        });
    }
    ~AsioTimer() override { cancel(); }
    void cancel() override {
        // The flag makes cancel() effective even when the completion is already queued.
        if (!state_->cancelled.exchange(true, std::memory_order_acq_rel))
            boost::asio::post(state_->timer.get_executor(), [s = state_] { s->timer.cancel(); });
    }

private:
    struct State {
        explicit State(boost::asio::io_context& io) : timer(io) {}
        boost::asio::steady_timer timer;
        std::atomic<bool> cancelled{false};
    };
    std::shared_ptr<State> state_;
};

}  // namespace

Scheduler::TimerPtr AsioScheduler::after(std::chrono::microseconds delay, std::function<void()> fn) {
    return std::make_unique<AsioTimer>(io_, delay, std::move(fn));
}

}  // namespace tailgate::dispatch
