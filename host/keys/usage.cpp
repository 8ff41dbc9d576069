#include "keys/usage.hpp"

#include <charconv>

namespace tailgate::keys {

namespace {

constexpr int64_t kMinute = 60'000;

long seconds_left_in_minute(TimeMs now) { return static_cast<long>((kMinute - now % kMinute + 999) / 1000); }

void escape_to(std::string& out, std::string_view s) {
    for (char ch : s) {
        if (ch == '\\') out += "\\\\";
        else if (ch == '\t') out += "\\t";
        else if (ch == '\n') out += "\\n";
        else out += ch;
    }
}

std::string unescape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 1 < s.size()) {
            const char n = s[++i];
            out += n == 't' ? '\t' : n == 'n' ? '\n' : n;
        } else {
            out += s[i];
        }
    }
    return out;
}

template <class T>
bool parse_number(std::string_view s, T& v) {
    const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

template <class T>
void append_number(std::string& out, T v) {
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

// Each number as one more tab-separated field.
template <class... T>
void append_fields(std::string& out, T... v) {
    ((out += '\t', append_number(out, v)), ...);
}

// Splits `line` at tabs into exactly `n` fields.
bool split(std::string_view line, std::string_view* fields, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        const size_t tab = line.find('\t');
        if (i + 1 == n) {
            if (tab != std::string_view::npos) return false;
            fields[i] = line;
            return true;
        }
        if (tab == std::string_view::npos) return false;
        fields[i] = line.substr(0, tab);
        line.remove_prefix(tab + 1);
    }
    return false;
}

}  // namespace

std::string encode_usage(const std::string& replica, TimeMs sent_at, const std::vector<UsageDelta>& deltas) {
    std::string out;
    out.reserve(32 + deltas.size() * 110);
    escape_to(out, replica);
    append_fields(out, sent_at);
    out += '\n';
    for (const UsageDelta& d : deltas) {
        escape_to(out, d.id);
        append_fields(out, d.minute, d.requests, d.tokens, d.spend, d.written, d.row.spend, d.row.reset_at, d.row.seq,
                      d.in_flight);  // the order decode_usage reads
        out += '\n';
    }
    return out;
}

bool decode_usage(std::string_view text, std::string& replica, TimeMs& sent_at, std::vector<UsageDelta>& out) {
    size_t nl = text.find('\n');
    if (nl == std::string_view::npos) return false;
    std::string_view head[2];
    if (!split(text.substr(0, nl), head, 2) || !parse_number(head[1], sent_at)) return false;
    replica = unescape(head[0]);
    text.remove_prefix(nl + 1);
    while (!text.empty()) {
        nl = text.find('\n');
        const std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        std::string_view f[10];
        UsageDelta d;
        if (!split(line, f, 10) || f[0].size() < 2 || (f[0][0] != 'k' && f[0][0] != 't') ||
            !parse_number(f[1], d.minute) || !parse_number(f[2], d.requests) || !parse_number(f[3], d.tokens) ||
            !parse_number(f[4], d.spend) || !parse_number(f[5], d.written) || !parse_number(f[6], d.row.spend) ||
            !parse_number(f[7], d.row.reset_at) || !parse_number(f[8], d.row.seq) || !parse_number(f[9], d.in_flight))
            return false;
        d.id = unescape(f[0]);
        out.push_back(std::move(d));
    }
    return true;
}

void UsageOutbox::add(std::shared_ptr<Usage> u) {
    std::lock_guard lk(mu_);
    changed_.push_back(std::move(u));
}

std::vector<std::shared_ptr<Usage>> UsageOutbox::take() {
    std::lock_guard lk(mu_);
    std::vector<std::shared_ptr<Usage>> out;
    out.swap(changed_);
    return out;
}

// Once per round at most: the flag is cleared by take_delta().
void Usage::mark() {
    if (outbox_ == nullptr || !outbox_->enabled()) return;
    if (queued_.exchange(true, std::memory_order_acq_rel)) return;
    outbox_->add(shared_from_this());
}

void Usage::roll_window(TimeMs now) {
    const int64_t m = now / kMinute;
    if (m <= minute_) return;  // never backwards (a late report, a clock stepped back)
    minute_ = m;
    requests_ = 0;
    tokens_ = 0;
    delta_requests_ = 0;
    delta_tokens_ = 0;
    remote_requests_ = 0;
    remote_tokens_ = 0;
}

std::optional<OverLimit> Usage::admit(const Limits& l, TimeMs now) {
    {
        std::lock_guard lk(mu_);
        roll_window(now);
        if (l.tpm && tokens_ + remote_tokens_ >= *l.tpm)
            return OverLimit{"tpm_limit " + std::to_string(*l.tpm), seconds_left_in_minute(now)};
        if (l.rpm && requests_ + remote_requests_ >= *l.rpm)
            return OverLimit{"rpm_limit " + std::to_string(*l.rpm), seconds_left_in_minute(now)};
        ++requests_;
        ++delta_requests_;
    }
    mark();
    return std::nullopt;
}

void Usage::unadmit(TimeMs now) {
    std::lock_guard lk(mu_);
    if (now / kMinute == minute_ && requests_ > 0) {
        --requests_;
        --delta_requests_;  // may go below 0 when the admit was sent already: the others take it back too
    }
}

int64_t Usage::remote_in_flight(TimeMs now) {
    int64_t n = 0;
    for (auto it = remote_in_flight_.begin(); it != remote_in_flight_.end();) {
        if (now - it->second.second > kInFlightTtlMs) {
            it = remote_in_flight_.erase(it);  // that replica stopped reporting (gone, or Redis down)
            continue;
        }
        n += it->second.first;
        ++it;
    }
    if (remote_in_flight_.empty()) has_remote_if_.store(false, std::memory_order_relaxed);
    return n;
}

bool Usage::enter(const Limits& l) {
    const int64_t n = in_flight_.fetch_add(1, std::memory_order_relaxed) + 1;
    int64_t others = 0;
    if (l.max_parallel && has_remote_if_.load(std::memory_order_relaxed)) {
        std::lock_guard lk(mu_);
        others = remote_in_flight(now_ms());
    }
    if (l.max_parallel && n + others > *l.max_parallel) {
        in_flight_.fetch_sub(1, std::memory_order_relaxed);
        return false;
    }
    mark();
    return true;
}

void Usage::add_tokens(int64_t n, TimeMs now) {
    if (n <= 0) return;
    {
        std::lock_guard lk(mu_);
        roll_window(now);
        tokens_ += n;
        delta_tokens_ += n;
    }
    mark();
}

void Usage::roll_period(const Limits& l, TimeMs now) {
    if (l.budget_duration.empty() || reset_at_ == 0 || now < reset_at_) return;
    const auto period = parse_period(l.budget_duration);
    if (!period) return;
    // The store resets the same way at its next write (SpendWriter), from the same reset_at.
    stored_spend_ = 0;
    remote_pending_.clear();
    rolled_from_ = reset_at_;
    reset_at_ = next_reset(reset_at_, *period, now);
}

bool Usage::adopt(const SpendRow& row) {
    if (seeded_ && row.seq <= stored_seq_) return false;
    // A row of a period this process has seen end (written before the reset, reported late).
    if (row.reset_at != 0 && row.reset_at <= rolled_from_) return false;
    stored_spend_ = row.spend;
    stored_seq_ = row.seq;
    reset_at_ = row.reset_at;
    seeded_ = true;
    return true;
}

double Usage::spend(const Limits& l, TimeMs now) {
    std::lock_guard lk(mu_);
    roll_period(l, now);
    double others = 0;
    for (auto it = remote_pending_.begin(); it != remote_pending_.end();) {
        if (now - it->second.at > kRemotePendingTtlMs) {
            it = remote_pending_.erase(it);
            continue;
        }
        others += it->second.usd;
        ++it;
    }
    return stored_spend_ + pending_ + others;
}

TimeMs Usage::reset_at() const {
    std::lock_guard lk(mu_);
    return reset_at_;
}

void Usage::add_spend(double usd) {
    {
        std::lock_guard lk(mu_);
        pending_ += usd;
        delta_spend_ += usd;
    }
    mark();
}

void Usage::written(double usd, const std::optional<SpendRow>& row) {
    {
        std::lock_guard lk(mu_);
        pending_ -= usd;
        if (pending_ < 1e-15) pending_ = 0;
        delta_written_ += usd;
        if (!row) {
            stored_spend_ += usd;
        } else if (adopt(*row)) {
            delta_row_ = *row;
        } else if (row->seq > delta_row_.seq) {
            delta_row_ = *row;  // still news to the others, though this process saw a newer one
        }
    }
    mark();
}

void Usage::stored(const SpendRow& row) {
    std::lock_guard lk(mu_);
    adopt(row);
}

std::optional<UsageDelta> Usage::take_delta(TimeMs now, TimeMs keepalive_ms) {
    queued_.store(false, std::memory_order_release);  // a change from now on is the next round's
    const int64_t in_flight = in_flight_.load(std::memory_order_relaxed);
    std::lock_guard lk(mu_);
    roll_window(now);
    UsageDelta d;
    d.id = id_;
    d.minute = minute_;
    d.requests = delta_requests_;
    d.tokens = delta_tokens_;
    d.spend = delta_spend_;
    d.written = delta_written_;
    d.row = delta_row_;
    if (in_flight != sent_in_flight_ || (in_flight > 0 && now - sent_in_flight_at_ >= keepalive_ms)) {
        d.in_flight = in_flight;
        sent_in_flight_ = in_flight;
        sent_in_flight_at_ = now;
    }
    if (d.requests == 0 && d.tokens == 0 && d.spend == 0 && d.written == 0 && d.row.seq == 0 && d.in_flight < 0)
        return std::nullopt;
    delta_requests_ = 0;
    delta_tokens_ = 0;
    delta_spend_ = 0;
    delta_written_ = 0;
    delta_row_ = SpendRow{};
    return d;
}

void Usage::remote(const std::string& replica, const UsageDelta& d, TimeMs /*sent_at*/, TimeMs now) {
    std::lock_guard lk(mu_);
    // A window of a clock far ahead is not trusted (spend and in-flight counts still are).
    if (d.minute <= now / kMinute + 1) roll_window(std::max<TimeMs>(now, d.minute * kMinute));
    if (d.minute == minute_) {
        remote_requests_ = std::max<int64_t>(0, remote_requests_ + d.requests);
        remote_tokens_ += d.tokens;
    }
    if (d.spend != 0 || d.written != 0) {
        RemotePending& p = remote_pending_[replica];
        p.usd += d.spend - d.written;
        if (p.usd < 1e-15) p.usd = 0;
        p.at = now;
    }
    // What it wrote is in the row its write returned; a row older than one seen here already is in that one.
    if (d.row.seq > 0) adopt(d.row);
    if (d.in_flight >= 0) {
        if (d.in_flight == 0) remote_in_flight_.erase(replica);
        else remote_in_flight_[replica] = {d.in_flight, now};
        has_remote_if_.store(!remote_in_flight_.empty(), std::memory_order_relaxed);
    }
}

void Usage::rename(std::string id) {
    std::lock_guard lk(mu_);
    id_ = std::move(id);
}

}  // namespace tailgate::keys
