// What the client of one Responses request gets, watched on its way out (the
// same bytes whether a deployment answered natively or through chat): the
// finished Response, for the store, and the stream's numbering and response
// id, so that a failure after the commit point continues the stream the SDK
// is reading: an `error` event, then `response.failed` for the same response
// (each only when the upstream's own did not already reach the client).
#pragma once

#include "providers/sse.hpp"
#include "surfaces/surface.hpp"

#include <rapidjson/document.h>

#include <cstdint>
#include <string>

namespace tailgate::surfaces::responses {

class Tap final : public ClientTap {
public:
    // keep: remember the finished Response (the request asked for `store`).
    // previous_id: the request's previous_response_id, which a native upstream
    // never saw (the gateway sent the whole conversation): the kept copy says it.
    Tap(bool stream, bool keep, std::string previous_id = {})
        : stream_(stream), keep_(keep), previous_id_(std::move(previous_id)) {}

    void on_bytes(std::string_view bytes) override;
    void stream_error(const ApiError& e, std::string& out) override;

    // The finished Response object (completed or incomplete) and its output
    // items, JSON; "" until the client got one (or when not kept).
    const std::string& finished() const { return finished_; }
    const std::string& output() const { return output_; }
    const std::string& id() const { return id_; }
    int64_t created_at() const { return created_at_; }

private:
    void on_event(std::string_view data);
    void on_lifecycle(rapidjson::Document& d);
    void keep(rapidjson::Value& response, rapidjson::Document::AllocatorType& a);

    bool stream_;
    bool keep_;
    std::string previous_id_;
    providers::SseFramer framer_;
    int64_t last_seq_ = -1;
    bool saw_error_ = false, saw_failed_ = false;  // the upstream's own, passed through
    rapidjson::Document created_;  // response.created's Response: the shape of a synthesized response.failed
    std::string id_;
    int64_t created_at_ = 0;
    std::string finished_, output_;
};

}  // namespace tailgate::surfaces::responses
