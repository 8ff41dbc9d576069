// Hand-off between the executor (Asio threads) and ClientRelay, which writes
// the client's response.
//
// The executor appends what the client must get (under its own lock) and, once
// that lock is released, flush() calls `notify`, which posts the relay's pump to
// its strand; the relay take()s the batch and writes it from the Asio side.
#pragma once

#include "dispatch/executor.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace tailgate::server {

class ClientChannel final : public dispatch::Downstream {
public:
    ClientChannel() = default;
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

    // What the relay takes in one go.
    struct Batch {
        bool committed = false;           // commit happened (this batch or earlier)
        std::optional<uint32_t> attempt;  // set in the batch that carries the commit
        upstream::ResponseHead head;      // valid with `attempt`
        std::string bytes;
        bool finished = false;            // stream ended (or non-stream committed)
        std::optional<ApiError> error;    // failure (before commit) or stream error (after)
        bool resume = false;              // once written, call Executor::resume_reading()
    };

    // Called (outside every lock) whenever there is something new to take.
    // Set it before the executor starts.
    void set_notify(std::function<void()> notify);
    // Takes what the executor produced, without waiting; false when nothing is new.
    bool take(Batch& out);
    // The request is over: later executor callbacks notify nobody.
    void close();

private:
    void signal_locked() { wake_ = true; }
    bool take_locked(Batch& out);

    std::mutex mu_;
    std::function<void()> notify_;  // empty once closed
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
