#include "keys/usage.hpp"

namespace tailgate::keys {

namespace {

constexpr int64_t kMinute = 60'000;

long seconds_left_in_minute(TimeMs now) { return static_cast<long>((kMinute - now % kMinute + 999) / 1000); }

}  // namespace

void Usage::roll_window(TimeMs now) {
    const int64_t m = now / kMinute;
    if (m == minute_) return;
    minute_ = m;
    requests_ = 0;
    tokens_ = 0;
}

std::optional<OverLimit> Usage::admit(const Limits& l, TimeMs now) {
    std::lock_guard lk(mu_);
    roll_window(now);
    if (l.tpm && tokens_ >= *l.tpm) return OverLimit{"tpm_limit " + std::to_string(*l.tpm), seconds_left_in_minute(now)};
    if (l.rpm && requests_ >= *l.rpm) return OverLimit{"rpm_limit " + std::to_string(*l.rpm), seconds_left_in_minute(now)};
    ++requests_;
    return std::nullopt;
}

void Usage::unadmit(TimeMs now) {
    std::lock_guard lk(mu_);
    if (now / kMinute == minute_ && requests_ > 0) --requests_;
}

bool Usage::enter(const Limits& l) {
    const int64_t n = in_flight_.fetch_add(1, std::memory_order_relaxed) + 1;
    if (l.max_parallel && n > *l.max_parallel) {
        in_flight_.fetch_sub(1, std::memory_order_relaxed);
        return false;
    }
    return true;
}

void Usage::add_tokens(int64_t n, TimeMs now) {
    if (n <= 0) return;
    std::lock_guard lk(mu_);
    roll_window(now);
    tokens_ += n;
}

void Usage::roll_period(const Limits& l, TimeMs now) {
    if (l.budget_duration.empty() || reset_at_ == 0 || now < reset_at_) return;
    const auto period = parse_period(l.budget_duration);
    if (!period) return;
    // The store resets the same way at its next write (SpendWriter), from the same reset_at.
    stored_spend_ = 0;
    reset_at_ = next_reset(reset_at_, *period, now);
}

double Usage::spend(const Limits& l, TimeMs now) {
    std::lock_guard lk(mu_);
    roll_period(l, now);
    return stored_spend_ + pending_;
}

TimeMs Usage::reset_at() const {
    std::lock_guard lk(mu_);
    return reset_at_;
}

void Usage::add_spend(double usd) {
    std::lock_guard lk(mu_);
    pending_ += usd;
}

void Usage::written(double usd) {
    std::lock_guard lk(mu_);
    pending_ -= usd;
    if (pending_ < 1e-15) pending_ = 0;
    stored_spend_ += usd;
}

void Usage::stored(double spend, TimeMs reset_at) {
    std::lock_guard lk(mu_);
    stored_spend_ = spend;
    reset_at_ = reset_at;
}

}  // namespace tailgate::keys
