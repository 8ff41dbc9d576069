// Admission control: caps on concurrent API requests and open streams, for
// the whole gateway and per model group (general_settings.max_concurrent_requests,
// max_open_streams, model_group_limits).
//
// A request over a cap is refused at once with an OpenAI-shaped error and
// Retry-After instead of queueing: queued work would add its wait to every
// accepted request's latency. Caps are checked and taken under one mutex so a
// request listing several groups takes all its slots or none, and a cap is
// never overshot by racing requests.
#pragma once

#include "common/api_error.hpp"
#include "common/rejection.hpp"
#include "config/config.hpp"

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace tailgate::server {

// The client's answer: global caps and draining are 503 (the gateway is full),
// group caps 429 (this model group is; others may not be). Both carry Retry-After.
ApiError rejection_error(Rejection r, const std::string& group, long retry_after_s);

class Admission {
public:
    explicit Admission(const config::GeneralSettings& g);

    // A reload's caps (general_settings.max_concurrent_requests, max_open_streams,
    // model_group_limits). Slots already held stay counted. Requests admitted
    // while there was no cap at all hold no slot: a cap set later counts only
    // the requests admitted after it.
    void set_limits(const config::GeneralSettings& g);

    // Slots held by one admitted request; released on destruction.
    class Ticket {
    public:
        Ticket() = default;
        Ticket(Ticket&& o) noexcept;
        Ticket& operator=(Ticket&& o) noexcept;
        Ticket(const Ticket&) = delete;
        Ticket& operator=(const Ticket&) = delete;
        ~Ticket();

    private:
        friend class Admission;
        void release() noexcept;
        Admission* owner_ = nullptr;
        bool stream_ = false;
        std::vector<uint32_t> groups_;  // indexes of limited groups held
    };

    struct Refused {
        Rejection reason;
        std::string group;  // for group caps
    };

    // Takes a slot in every cap that applies (groups without limits are free),
    // or none and says which cap was full.
    std::optional<Refused> admit(std::span<const std::string> groups, bool stream, Ticket& out);

    // No cap configured: admit() always succeeds (callers may skip it).
    bool unlimited() const { return unlimited_.load(std::memory_order_relaxed); }

    struct Counts {
        int requests = 0;
        int streams = 0;
    };
    Counts global() const;

private:
    struct Slot {
        config::GeneralSettings::Limits limit;
        Counts used;
    };
    void release(const Ticket& t) noexcept;

    mutable std::mutex mu_;
    Slot global_;
    // Under mu_. Groups are only ever appended: a ticket holds their indexes.
    std::vector<std::string> names_;
    std::vector<Slot> groups_;
    std::unordered_map<std::string, uint32_t> index_;
    std::atomic<bool> unlimited_{true};
};

}  // namespace tailgate::server
