// Hand-off between the executor (Asio threads) and whoever writes the client's
// response.
//
// The executor appends what the client must get (under its own lock) and, once
// that lock is released, flush() tells the writer:
//   - ClientRelay (API requests): `notify` posts the relay's pump to its strand;
//     the relay take()s the batch and writes it from the Asio side;
//   - a Poco thread (the model-list fan-out, which waits for several channels):
//     its thread's eventfd (Waker) is signalled, and wait() sleeps in poll() on
//     that eventfd and the client socket (POLLRDHUP), so a client that hangs up
//     is noticed at once, even while no byte is flowing.
#pragma once

#include "dispatch/executor.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace tailgate::server {

// An eventfd. Each Poco thread keeps one and reuses it for every request it
// serves (creating and closing one per request cost two syscalls and an fput
// on the hot path). Channels hold it by shared_ptr, so a late signal from an
// executor that outlives its request never writes to a closed, reused fd.
class Waker {
public:
    Waker();
    ~Waker();
    Waker(const Waker&) = delete;
    Waker& operator=(const Waker&) = delete;
    static std::shared_ptr<Waker> for_this_thread();
    void signal();
    void drain();
    int fd() const { return fd_; }

private:
    int fd_ = -1;
};

class ClientChannel final : public dispatch::Downstream {
public:
    // Several channels may share one waker (they are waited on by the same
    // thread, one at a time): wait() looks at its own state before sleeping,
    // so a wake-up consumed by another channel's wait is never lost.
    explicit ClientChannel(std::shared_ptr<Waker> waker = Waker::for_this_thread());
    ~ClientChannel() override = default;
    ClientChannel(const ClientChannel&) = delete;
    ClientChannel& operator=(const ClientChannel&) = delete;

    // dispatch::Downstream — called by the executor, must not block.
    void commit(uint32_t attempt, const upstream::ResponseHead& head, std::string bytes) override;
    void data(std::string_view bytes) override;
    void finish(const ApiError* error) override;
    void fail(const ApiError& error) override;
    void flush() override;  // the wake-up, outside every lock
    // True once kHighWater bytes wait for the client: the executor pauses the upstream,
    // and the batch that takes them says `resume`.
    bool congested() override;
    static constexpr size_t kHighWater = 256 * 1024;

    // Ends the exchange with `error` unless it already ended (gateway
    // shutdown); false when it had. The executor must be cancelled after.
    bool abort(const ApiError& error);

    // What the Poco thread takes in one go.
    struct Batch {
        bool committed = false;           // commit happened (this batch or earlier)
        std::optional<uint32_t> attempt;  // set in the batch that carries the commit
        upstream::ResponseHead head;      // valid with `attempt`
        std::string bytes;
        bool finished = false;            // stream ended (or non-stream committed)
        std::optional<ApiError> error;    // failure (before commit) or stream error (after)
        bool resume = false;              // once written, call Executor::resume_reading()
    };

    enum class Wait { Ready, ClientGone, TimedOut };
    // Without a waker: `notify` is called (outside every lock) where the waker
    // would be signalled. Set it before the executor starts.
    void set_notify(std::function<void()> notify);
    // Takes what the executor produced, without waiting; false when nothing is new.
    bool take(Batch& out);

    // Blocks until the executor produced something, the client hung up
    // (client_fd < 0: not watched), or `timeout` passed.
    Wait wait(int client_fd, std::chrono::milliseconds timeout, Batch& out);
    // The request is over: later executor callbacks no longer wake this thread.
    void close();

private:
    void signal_locked() { wake_ = true; }
    bool take_locked(Batch& out);

    std::mutex mu_;
    std::shared_ptr<Waker> waker_;  // null once closed
    std::function<void()> notify_;  // instead of the waker; empty once closed
    bool committed_ = false;
    std::optional<uint32_t> attempt_;
    upstream::ResponseHead head_;
    std::string pending_;
    bool finished_ = false;
    std::optional<ApiError> error_;
    bool delivered_commit_ = false;
    bool wake_ = false;       // something new since the last flush()
    bool throttled_ = false;  // congested() said yes; the next batch carries `resume`
};

}  // namespace tailgate::server
