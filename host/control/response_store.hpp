// Stored responses of the Responses API (`store`, the default, and
// previous_response_id): in the embedded SQLite file under the state directory
// (the revision log's tailgate-state.db, table `responses`), or in memory
// without one. Each row expires after general_settings.response_retention.
//
// put() is called where a response ends (a relay, on an Asio thread): it only
// queues the row, which a writer thread of the store's own writes; until then
// reads find it in the queue, so a client that chains its next request at once
// sees it. Reads and deletes run on the caller's thread (front-end pool
// threads: never an Asio one).
//
// A small interface of its own, so it can move onto a shared database layer.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tailgate::control {

struct StoredResponse {
    std::string id;
    std::string owner;        // hash prefix of the key that created it; only that key may read it
    int64_t created_at = 0;   // seconds since the epoch
    std::string previous_id;  // previous_response_id, "" when none
    std::string input_items;  // this turn's own input items (JSON array)
    std::string output;       // its output items (JSON array)
    std::string response;     // the whole Response object, as the client got it
};

class ResponseStore {
public:
    virtual ~ResponseStore() = default;
    virtual void put(StoredResponse r) = 0;
    virtual std::optional<StoredResponse> get(std::string_view id, std::string_view owner) = 0;
    // False when there was no such response (for that owner).
    virtual bool remove(std::string_view id, std::string_view owner) = 0;
    // The conversation ending with `id`, oldest first, at most `max_turns` long;
    // empty when `id` is unknown or expired.
    virtual std::vector<StoredResponse> chain(std::string_view id, std::string_view owner, size_t max_turns) = 0;
    virtual std::string where() const = 0;  // for the startup log
};
using ResponseStorePtr = std::shared_ptr<ResponseStore>;

// `dir` empty: in memory (lost at exit), at most `memory_rows` rows. `retention`
// 0: nothing is kept (put() drops). Throws std::runtime_error when the file cannot be opened.
ResponseStorePtr open_response_store(const std::string& dir, std::chrono::milliseconds retention,
                                     size_t memory_rows = 10000);

}  // namespace tailgate::control
