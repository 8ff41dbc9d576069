// State shared by every connection of one mock instance: current settings,
// counters, the request log and the random generator. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "behaviour.hpp"

namespace tailgate::mock {

enum class Outcome { in_flight, completed, cancelled, failed, reset };

// One API request as seen by the mock (kept in the request log).
struct RequestRecord {
  std::uint64_t id = 0;
  std::uint64_t epoch = 0;  // stats epoch the request was counted in
  std::string method;
  std::string target;  // path with query
  std::string path;    // path without query
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;    // truncated to kMaxLoggedBody
  std::size_t body_size = 0;
  double received_ms = 0;
  double finished_ms = -1;
  Outcome outcome = Outcome::in_flight;
  int status = 0;
  bool stream = false;
  bool straggler = false;
  double ttft_ms = 0;
  std::string model;
  std::string detail;  // e.g. "reset_before", "stall_mid_stream"
};

using RecordPtr = std::shared_ptr<RequestRecord>;

class State {
 public:
  static constexpr std::size_t kMaxLoggedBody = 64 * 1024;

  State(std::string name, Settings startup, std::uint64_t seed, std::size_t log_capacity);

  const std::string& name() const { return name_; }
  // Steady-clock milliseconds since the mock started.
  double now_ms() const;

  std::shared_ptr<const Settings> settings() const;

  // Request number for ids (also the record's id).
  std::uint64_t next_id();
  // Registers a new API request (counts it as received and in flight). Fill
  // every field of `rec` first: afterwards only finish() may change it.
  void begin(const RecordPtr& rec);
  // Random decisions for one request, drawn from the shared generator.
  Plan sample(const Settings& s);
  // Ends a request exactly once; later calls are ignored.
  void finish(RequestRecord& rec, Outcome outcome, int status, std::string detail = {});

  // Control API.
  std::string stats_json() const;
  std::string requests_json(std::size_t limit) const;
  std::string config_json() const;
  // Returns "" and the new settings in `out`, or an error message.
  std::string merge_config(std::string_view body, std::string& out);
  void reset();

 private:
  const std::string name_;
  const Settings startup_;
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  const std::size_t log_capacity_;

  mutable std::mutex mu_;
  std::shared_ptr<const Settings> settings_;
  std::mt19937_64 rng_;
  std::uint64_t next_id_ = 1;
  std::uint64_t epoch_ = 0;
  std::uint64_t received_ = 0, completed_ = 0, cancelled_ = 0, failed_ = 0, reset_ = 0;
  std::int64_t in_flight_ = 0;  // real count, survives /mock/reset
  double last_cancel_ms_ = -1;
  std::map<std::string, std::uint64_t> by_path_;
  std::deque<RecordPtr> log_;
};

const char* to_string(Outcome o);

}  // namespace tailgate::mock
