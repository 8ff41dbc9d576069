#include "fleet/quota.hpp"

#include <algorithm>
#include <cmath>

namespace tailgate::fleet {

namespace {

using Millis = std::chrono::milliseconds;
constexpr Millis kWindow{60000};          // what a grant or a debt counts for in Redis (after its lease)
constexpr Millis kSlot{1000};             // rate slots
constexpr Millis kMinRetry{20};           // at the limit: ask Redis again after free_in, bounded
constexpr Millis kMaxRetry{500};
constexpr int kForgetAfterLeases = 12;    // an entry idle this long (nothing held) is dropped

}  // namespace

QuotaBook::QuotaBook(Millis lease, Millis horizon) : lease_(lease), horizon_(horizon) {}

QuotaBook::Entry& QuotaBook::entry(std::string_view id, QuotaKind k, int64_t limit) {
    Table& t = tables_[static_cast<size_t>(k)];
    auto it = t.find(id);
    if (it == t.end()) it = t.emplace(std::string(id), Entry{}).first;
    it->second.limit = limit;
    return it->second;
}

bool QuotaBook::warm(const Entry& e, Time now) const { return active_ && e.warm && now - e.last_reply <= lease_; }

int64_t QuotaBook::usable(const Entry& e, Time now) {
    int64_t n = 0;
    for (const Grant& g : e.grants)
        if (g.usable_until > now) n += g.left;
    return n;
}

int64_t QuotaBook::draw(Entry& e, int64_t n, Time now) {
    for (Grant& g : e.grants) {
        if (n == 0) break;
        if (g.usable_until <= now || g.left == 0) continue;
        const int64_t t = std::min(g.left, n);
        g.left -= t;
        n -= t;
    }
    return n;
}

void QuotaBook::count_use(Entry& e, int64_t n, Time now) const {
    if (now - e.slot >= kSlot) {
        e.prev = now - e.slot >= 2 * kSlot ? 0 : e.cur;
        e.cur = 0;
        e.slot = now;
    }
    e.cur += n;
    e.last_use = now;
}

double QuotaBook::rate_per_s(const Entry& e, Time now) const {
    const auto in_slot = now - e.slot;
    if (in_slot >= 2 * kSlot) return 0;
    if (in_slot >= kSlot) return static_cast<double>(e.cur) * 1000.0 / static_cast<double>(kSlot.count());
    const double s = std::chrono::duration<double>(in_slot).count();
    if (e.prev > 0) return static_cast<double>(e.prev + e.cur) / (1.0 + s);
    return static_cast<double>(e.cur) / std::max(0.25, s);
}

void QuotaBook::add_debt(Entry& e, int64_t n, Time now) const {
    if (n <= 0) return;
    if (!e.debt.empty() && now - e.debt.back().first < kSlot) e.debt.back().second += n;
    else e.debt.emplace_back(now, n);
}

int64_t QuotaBook::debt_of(Entry& e, Time now) const {
    while (!e.debt.empty() && now - e.debt.front().first >= kWindow) e.debt.pop_front();
    int64_t n = 0;
    for (const auto& [at, units] : e.debt) n += units;
    return n;
}

QuotaAnswer QuotaBook::take(std::string_view id, QuotaKind k, int64_t limit, int64_t n, Time now) {
    if (!active_) return QuotaAnswer::Local;
    Entry& e = entry(id, k, limit);
    e.last_use = now;  // in use: the synchroniser keeps it filled
    if (!warm(e, now)) return QuotaAnswer::Local;
    int64_t need = n;
    if (need <= 0) return usable(e, now) > 0 ? QuotaAnswer::Granted : QuotaAnswer::Exhausted;
    if (usable(e, now) < need) return QuotaAnswer::Exhausted;
    draw(e, need, now);
    count_use(e, n, now);
    return QuotaAnswer::Granted;
}

void QuotaBook::settle(std::string_view id, QuotaKind k, int64_t limit, int64_t n, Time now) {
    if (n == 0) return;
    Entry& e = entry(id, k, limit);
    if (n < 0) {  // unused reservations: off the debt not told yet, else back into the newest live grant
        int64_t back = -n;
        while (back > 0 && !e.debt.empty()) {
            const int64_t t = std::min(back, e.debt.back().second);
            e.debt.back().second -= t;
            back -= t;
            if (e.debt.back().second == 0) e.debt.pop_back();
        }
        for (auto it = e.grants.rbegin(); it != e.grants.rend() && back > 0; ++it) {
            if (it->usable_until <= now) continue;
            const int64_t room = std::min(back, it->granted - it->left);
            it->left += room;
            back -= room;
        }
        e.cur = std::max<int64_t>(0, e.cur + n);
        return;
    }
    count_use(e, n, now);
    const int64_t need = warm(e, now) ? draw(e, n, now) : n;
    add_debt(e, need, now);  // beyond the allowance, or counted alone: Redis hears of it with the next refill
}

int64_t QuotaBook::free_in_ms(std::string_view id, QuotaKind k, Time now) const {
    const Table& t = tables_[static_cast<size_t>(k)];
    auto it = t.find(id);
    if (it == t.end() || it->second.free_in_ms < 0) return -1;
    const auto since = std::chrono::duration_cast<Millis>(now - it->second.last_reply).count();
    return std::max<int64_t>(0, it->second.free_in_ms - since);
}

int64_t QuotaBook::allowance(std::string_view id, QuotaKind k, Time now) const {
    const Table& t = tables_[static_cast<size_t>(k)];
    auto it = t.find(id);
    if (it == t.end() || !warm(it->second, now)) return -1;
    return usable(it->second, now);
}

void QuotaBook::prime(std::string_view id, QuotaKind k, int64_t limit, Time now) {
    if (limit <= 0) return;
    Entry& e = entry(id, k, limit);
    e.primed = true;
    if (e.last_use == Time{}) e.last_use = now;
}

void QuotaBook::prime_all(const std::vector<Limit>& limits, Time now) {
    for (Table& t : tables_)
        for (auto& [id, e] : t) e.primed = false;
    for (const Limit& l : limits) prime(l.deployment, l.kind, l.limit, now);
}

void QuotaBook::set_active(bool on, Time now) {
    active_ = on;
    ++epoch_;
    for (Table& t : tables_)
        for (auto& [id, e] : t) {
            // Grants of the old connection are not used any more (Redis counts
            // them until they leave its window); a refill that got no answer
            // may not have reached Redis: its debt is kept (counted twice at
            // worst, never lost).
            e.grants.clear();
            if (e.pending) add_debt(e, e.sent_debt, now);
            e.sent_debt = 0;
            e.pending = false;
            e.warm = false;
            e.free_in_ms = -1;
        }
}

std::vector<QuotaRefill> QuotaBook::refills(Time now) {
    std::vector<QuotaRefill> out;
    if (!active_) return out;
    const double horizon_s = std::chrono::duration<double>(horizon_).count();
    for (size_t k = 0; k < tables_.size(); ++k) {
        Table& t = tables_[k];
        for (auto it = t.begin(); it != t.end();) {
            Entry& e = it->second;
            const int64_t debt = debt_of(e, now);
            const bool idle = !e.primed && now - e.last_use > lease_;
            if (!e.primed && idle && debt == 0 && e.grants.empty() && !e.pending &&
                now - e.last_use > kForgetAfterLeases * lease_) {
                it = t.erase(it);  // a deployment nobody asks about any more (removed by a reload, or idle)
                continue;
            }
            if (e.pending || (idle && debt == 0)) {
                ++it;
                continue;
            }
            const bool is_warm = warm(e, now);
            // Units that expire within the horizon do not count: renewed before they lapse.
            const int64_t avail = is_warm ? usable(e, now + horizon_) : 0;
            // Enough for `horizon` at the recent rate (the time a refill takes to
            // come back, with margin), at least limit / (20 x replicas) and one,
            // at most half the limit.
            const auto by_rate = static_cast<int64_t>(std::ceil(rate_per_s(e, now) * horizon_s));
            const int64_t floor = std::max<int64_t>(1, e.limit / (20 * e.replicas));
            const int64_t target = std::clamp<int64_t>(std::max(by_rate + 1, floor), 1, std::max<int64_t>(1, e.limit / 2));
            const bool low = avail * 2 <= target;
            const bool stale = now - e.last_reply > lease_ / 3;  // in use: keep it warm
            if (is_warm && debt == 0 && !stale && (!low || now < e.next_ask)) {
                ++it;
                continue;
            }
            QuotaRefill r;
            r.deployment = it->first;
            r.kind = static_cast<QuotaKind>(k);
            r.limit = e.limit;
            r.want = idle ? 0 : std::clamp<int64_t>(target - avail, 0, e.limit);
            r.debt = debt;
            r.seq = ++seq_;
            r.epoch = epoch_;
            e.debt.clear();
            e.sent_debt = debt;
            e.pending = true;
            out.push_back(std::move(r));
            ++it;
        }
    }
    return out;
}

void QuotaBook::granted(const QuotaRefill& r, int64_t granted, int64_t free_in_ms, int64_t replicas, Time sent,
                        Time now) {
    if (!active_ || r.epoch != epoch_) return;
    Table& t = tables_[static_cast<size_t>(r.kind)];
    auto it = t.find(r.deployment);
    if (it == t.end()) return;
    Entry& e = it->second;
    e.pending = false;
    e.sent_debt = 0;
    e.warm = true;
    e.replicas = std::max<int64_t>(1, replicas);
    e.last_reply = now;
    if (granted > 0)
        e.grants.push_back(Grant{r.seq, granted, granted, sent + lease_ * 9 / 10});
    if (granted < r.want) {  // the fleet is at its limit: ask again when a slot may have freed
        e.free_in_ms = free_in_ms;
        e.next_ask = now + std::clamp(Millis(free_in_ms < 0 ? kMaxRetry.count() : free_in_ms), kMinRetry, kMaxRetry);
    } else {
        e.free_in_ms = -1;
        e.next_ask = now;
    }
}

std::vector<QuotaReturn> QuotaBook::expired(Time now) {
    std::vector<QuotaReturn> out;
    for (size_t k = 0; k < tables_.size(); ++k)
        for (auto& [id, e] : tables_[k])
            while (!e.grants.empty() && e.grants.front().usable_until <= now) {
                const Grant& g = e.grants.front();
                if (g.left > 0 && active_)
                    out.push_back(QuotaReturn{id, static_cast<QuotaKind>(k), g.seq, g.granted, g.granted - g.left});
                e.grants.pop_front();
            }
    return out;
}

}  // namespace tailgate::fleet
