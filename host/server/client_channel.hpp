// Hand-off between the executor (Asio threads) and the Poco thread that owns
// the client connection.
//
// The executor appends what the client must get; the Poco thread sleeps in
// poll() on two descriptors: an eventfd the executor signals, and the client
// socket (POLLRDHUP), so a client that hangs up is noticed at once, even while
// no byte is flowing, and its upstream attempts are cancelled.
#pragma once

#include "dispatch/executor.hpp"

#include <chrono>
#include <mutex>
#include <optional>
#include <string>

namespace tailgate::server {

class ClientChannel final : public dispatch::Downstream {
public:
    ClientChannel();
    ~ClientChannel() override;
    ClientChannel(const ClientChannel&) = delete;
    ClientChannel& operator=(const ClientChannel&) = delete;

    // dispatch::Downstream — called by the executor, must not block.
    void commit(uint32_t attempt, const upstream::ResponseHead& head, std::string bytes) override;
    void data(std::string_view bytes) override;
    void finish(const ApiError* error) override;
    void fail(const ApiError& error) override;

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
    };

    enum class Wait { Ready, ClientGone, TimedOut };
    // Blocks until the executor produced something, the client hung up
    // (client_fd < 0: not watched), or `timeout` passed.
    Wait wait(int client_fd, std::chrono::milliseconds timeout, Batch& out);

private:
    void signal_locked();

    std::mutex mu_;
    int efd_ = -1;
    bool committed_ = false;
    std::optional<uint32_t> attempt_;
    upstream::ResponseHead head_;
    std::string pending_;
    bool finished_ = false;
    std::optional<ApiError> error_;
    bool delivered_commit_ = false;
};

}  // namespace tailgate::server
