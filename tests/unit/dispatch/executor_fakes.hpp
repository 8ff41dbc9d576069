// Fakes for running a dispatch::Executor in tests: a manual clock, a scripted
// upstream (the test plays the upstream's callbacks) and an event recorder.
#pragma once

#include "dispatch/executor.hpp"

#include <functional>
#include <map>
#include <memory>
#include <vector>

namespace tailgate::dispatch::fakes {

class FakeScheduler final : public Scheduler {
public:
    struct Entry {
        SteadyClock::time_point due;
        std::function<void()> fn;
        bool cancelled = false;
    };
    class FakeTimer final : public Timer {
    public:
        explicit FakeTimer(std::shared_ptr<Entry> e) : e_(std::move(e)) {}
        ~FakeTimer() override { cancel(); }
        void cancel() override { e_->cancelled = true; }

    private:
        std::shared_ptr<Entry> e_;
    };

    SteadyClock::time_point now() override { return now_; }
    TimerPtr after(std::chrono::microseconds d, std::function<void()> fn) override {
        auto e = std::make_shared<Entry>(Entry{now_ + d, std::move(fn)});
        entries_.push_back(e);
        return std::make_unique<FakeTimer>(e);
    }
    // Moves time forward, firing due timers in order.
    void advance(std::chrono::microseconds d) {
        auto target = now_ + d;
        for (;;) {
            std::shared_ptr<Entry> next;
            for (auto& e : entries_)
                if (!e->cancelled && e->due <= target && (!next || e->due < next->due)) next = e;
            if (!next) break;
            now_ = std::max(now_, next->due);
            next->cancelled = true;
            next->fn();
        }
        now_ = target;
    }

private:
    SteadyClock::time_point now_{};
    std::vector<std::shared_ptr<Entry>> entries_;
};

struct FakeCall final : upstream::Call {
    bool cancelled = false;
    int pauses = 0, resumes = 0;
    void cancel() override { cancelled = true; }
    void pause() override { ++pauses; }
    void resume() override { ++resumes; }
};

class FakeTransport final : public Transport {
public:
    struct Started {
        std::shared_ptr<upstream::Handler> handler;
        std::shared_ptr<FakeCall> call;
    };
    upstream::CallPtr start(uint32_t index, std::shared_ptr<upstream::Handler> h) override {
        auto c = std::make_shared<FakeCall>();
        started[index] = Started{std::move(h), c};
        order.push_back(index);
        return c;
    }
    upstream::Handler& h(uint32_t i) { return *started.at(i).handler; }
    bool cancelled(uint32_t i) { return started.at(i).call->cancelled; }
    FakeCall& call(uint32_t i) { return *started.at(i).call; }
    std::map<uint32_t, Started> started;
    std::vector<uint32_t> order;
};

class RecordingObserver final : public Observer {
public:
    void on_attempt(const AttemptEvent& ev) override { events.push_back(ev); }
    int count(EventType t, uint32_t attempt) const {
        int n = 0;
        for (auto& e : events) n += e.type == t && e.attempt == attempt;
        return n;
    }
    std::vector<AttemptEvent> events;
};

inline upstream::ResponseHead head(int status) {
    upstream::ResponseHead h;
    h.status = status;
    h.headers = {{"content-type", "application/json"}};
    return h;
}

}  // namespace tailgate::dispatch::fakes
