#include "state.hpp"

#include <algorithm>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace tailgate::mock {
namespace {

// A logged body as a JSON string: valid UTF-8 kept, every other byte (an audio
// file in a multipart form, a body cut at kMaxLoggedBody) shown as '?', so the
// log stays valid JSON.
std::string printable_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool ok = n > 0 && i + n <= s.size();
    for (std::size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
    if (ok && n == 2) ok = c >= 0xc2;  // no overlong 2-byte forms
    if (ok && n == 3) {
      const auto c1 = static_cast<unsigned char>(s[i + 1]);
      ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0);  // no overlongs, no surrogates
    }
    if (ok && n == 4) {
      const auto c1 = static_cast<unsigned char>(s[i + 1]);
      ok = c <= 0xf4 && !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90);
    }
    if (ok) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += '?';
      ++i;
    }
  }
  return out;
}

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void put(Writer& w, std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }

}  // namespace

const char* to_string(Outcome o) {
  switch (o) {
    case Outcome::in_flight: return "in_flight";
    case Outcome::completed: return "completed";
    case Outcome::cancelled: return "cancelled";
    case Outcome::failed: return "failed";
    case Outcome::reset: return "reset";
  }
  return "?";
}

State::State(std::string name, Settings startup, std::uint64_t seed, std::size_t log_capacity)
    : name_(std::move(name)),
      startup_(std::move(startup)),
      log_capacity_(log_capacity),
      settings_(std::make_shared<const Settings>(startup_)),
      rng_(seed) {}

double State::now_ms() const {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
}

std::shared_ptr<const Settings> State::settings() const {
  std::lock_guard lock(mu_);
  return settings_;
}

std::uint64_t State::next_id() {
  std::lock_guard lock(mu_);
  return next_id_++;
}

void State::begin(const RecordPtr& rec) {
  std::lock_guard lock(mu_);
  rec->epoch = epoch_;
  ++received_;
  ++in_flight_;
  ++by_path_[rec->path];
  if (log_capacity_ > 0) {
    log_.push_back(rec);
    while (log_.size() > log_capacity_) log_.pop_front();
  }
}

Plan State::sample(const Settings& s) {
  std::lock_guard lock(mu_);
  return sample_plan(s, rng_);
}

void State::finish(RequestRecord& rec, Outcome outcome, int status, std::string detail) {
  const double now = now_ms();
  std::lock_guard lock(mu_);
  if (rec.outcome != Outcome::in_flight) return;
  rec.outcome = outcome;
  rec.status = status;
  rec.finished_ms = now;
  if (!detail.empty()) rec.detail = std::move(detail);
  --in_flight_;
  if (rec.epoch != epoch_) return;  // counted before the last /mock/reset
  switch (outcome) {
    case Outcome::completed: ++completed_; break;
    case Outcome::failed: ++failed_; break;
    case Outcome::reset: ++reset_; break;
    case Outcome::cancelled:
      ++cancelled_;
      last_cancel_ms_ = now;
      break;
    case Outcome::in_flight: break;
  }
}

std::string State::stats_json() const {
  const double now = now_ms();
  std::lock_guard lock(mu_);
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.SetMaxDecimalPlaces(3);
  w.StartObject();
  w.Key("name");
  put(w, name_);
  w.Key("now_ms");
  w.Double(now);
  w.Key("received");
  w.Uint64(received_);
  w.Key("completed");
  w.Uint64(completed_);
  w.Key("cancelled_by_client");
  w.Uint64(cancelled_);
  w.Key("failed");
  w.Uint64(failed_);
  w.Key("reset");
  w.Uint64(reset_);
  w.Key("in_flight");
  w.Int64(in_flight_);
  w.Key("last_cancel_ms");
  if (last_cancel_ms_ >= 0) w.Double(last_cancel_ms_); else w.Null();
  // When each cancelled request still in the log was cancelled (request order).
  w.Key("cancel_ms");
  w.StartArray();
  for (const auto& r : log_)
    if (r->epoch == epoch_ && r->outcome == Outcome::cancelled) w.Double(r->finished_ms);
  w.EndArray();
  w.Key("by_path");
  w.StartObject();
  for (const auto& [path, n] : by_path_) {
    put(w, path);
    w.Uint64(n);
  }
  w.EndObject();
  w.EndObject();
  return {sb.GetString(), sb.GetSize()};
}

std::string State::requests_json(std::size_t limit) const {
  std::lock_guard lock(mu_);
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.SetMaxDecimalPlaces(3);
  w.StartArray();
  const std::size_t skip = log_.size() > limit ? log_.size() - limit : 0;
  for (std::size_t i = skip; i < log_.size(); ++i) {
    const RequestRecord& r = *log_[i];
    w.StartObject();
    w.Key("id");
    w.Uint64(r.id);
    w.Key("method");
    put(w, r.method);
    w.Key("path");
    put(w, r.target);
    w.Key("headers");
    w.StartObject();
    // Repeated headers are joined with ", " (RFC 9110 field combination).
    std::map<std::string, std::string> merged;
    for (const auto& [k, v] : r.headers) {
      auto [it, fresh] = merged.emplace(k, v);
      if (!fresh) it->second += ", " + v;
    }
    for (const auto& [k, v] : merged) {
      put(w, k);
      put(w, v);
    }
    w.EndObject();
    w.Key("body");
    put(w, printable_utf8(r.body));
    w.Key("body_size");
    w.Uint64(r.body_size);
    w.Key("body_truncated");
    w.Bool(r.body_size > r.body.size());
    w.Key("received_ms");
    w.Double(r.received_ms);
    w.Key("finished_ms");
    if (r.finished_ms >= 0) w.Double(r.finished_ms); else w.Null();
    w.Key("outcome");
    w.String(to_string(r.outcome));
    w.Key("status");
    w.Int(r.status);
    w.Key("stream");
    w.Bool(r.stream);
    w.Key("model");
    put(w, r.model);
    w.Key("ttft_ms");
    w.Double(r.ttft_ms);
    w.Key("straggler");
    w.Bool(r.straggler);
    w.Key("detail");
    put(w, r.detail);
    w.EndObject();
  }
  w.EndArray();
  return {sb.GetString(), sb.GetSize()};
}

std::string State::config_json() const { return settings_to_json(*settings()); }

std::string State::merge_config(std::string_view body, std::string& out) {
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (doc.HasParseError()) return "config body is not valid JSON";
  std::lock_guard lock(mu_);
  Settings s = *settings_;
  if (auto err = merge_settings(s, doc); !err.empty()) return err;
  settings_ = std::make_shared<const Settings>(std::move(s));
  out = settings_to_json(*settings_);
  return {};
}

void State::reset() {
  std::lock_guard lock(mu_);
  ++epoch_;
  received_ = completed_ = cancelled_ = failed_ = reset_ = 0;
  last_cancel_ms_ = -1;
  by_path_.clear();
  log_.clear();
  settings_ = std::make_shared<const Settings>(startup_);
}

}  // namespace tailgate::mock
