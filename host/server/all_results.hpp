// LiteLLM's model list without fastest_response (`model="a,b"`): every listed
// group answers, and the client gets one JSON response built from all of them.
//
// The executors' outputs are fanned in on the relay's strand like any other
// response (no thread waits for them): each part's channel is drained as it
// produces, and once every part has finished, take() hands the relay a single
// batch — the merged 200, or the first part's error when none succeeded.
#pragma once

#include "server/frontend/front_end.hpp"

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace tailgate::server {

class AllResultsSource final : public frontend::ResponseSource {
public:
    struct Part {
        std::string group;
        std::shared_ptr<ClientChannel> channel;  // null when routing refused the group
        dispatch::ExecutorPtr executor;          // null with channel
        std::optional<ApiError> error;           // routing's refusal, or the executor's failure
        // Deployment id per plan attempt (names the one that answered).
        std::vector<std::string> deployment_ids;
        // Filled as the executor produces.
        int status = 0;
        std::string body;
        std::string deployment;
        bool done = false;
    };

    explicit AllResultsSource(std::vector<Part> parts);

    void set_notify(std::function<void()> notify) override;
    bool take(ClientChannel::Batch& out) override;
    void cancel() override;
    void resume_reading() override;
    void close() override;

    // The part whose completion is the top-level object, once take() handed
    // over the merged answer; null when every part failed.
    const Part* first_ok() const { return first_ok_; }
    size_t size() const { return parts_.size(); }
    dispatch::ExecutorPtr executor(size_t i) const { return parts_[i].executor; }
    // Wakes the relay without an executor (every group was refused at routing).
    void notify_now();

    // The merged body: the first successful completion with "results" added,
    // one entry per listed group in order, each {"model_group", "status",
    // "deployment", "response"} or {"model_group", "status", "error"}.
    // Nullopt when the first success is not a JSON object.
    static std::optional<std::string> merge(const std::vector<Part>& parts, const Part& first_ok);

private:
    std::vector<Part> parts_;
    std::mutex mu_;                 // notify_: set, called (notify_now) and dropped (close) from different threads
    std::function<void()> notify_;  // holds the relay until close()
    const Part* first_ok_ = nullptr;
    bool delivered_ = false;
};

}  // namespace tailgate::server
