// One background thread running jobs in the order they were posted: where
// the synchroniser hands work that may block (applying a config revision
// loads plugins), so no Asio thread ever waits for it.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace tailgate::fleet {

class Worker {
public:
    Worker();
    ~Worker();  // runs what is queued, then joins
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    void post(std::function<void()> job);
    void stop();

private:
    void run();

    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_;
    bool stopping_ = false;
    std::thread thread_;  // last: started once the rest exists
};

}  // namespace tailgate::fleet
