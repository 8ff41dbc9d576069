// Sliding-window latency histogram used by the `latency` strategy plugin.
//
// Header-only and free of the plugin ABI so that unit tests can include it
// directly. Not thread-safe: the plugin guards each Window with a mutex.
//
// Buckets (LatencyBuckets)
//   Log-linear, HDR style: every power-of-two range [2^e, 2^(e+1)) of
//   milliseconds is split into 128 equal buckets, for e = -4 .. 21, i.e.
//   0.0625 ms .. 4194.304 s (69.9 min). A bucket is at most 1/128 = 0.78 %
//   of its lower bound wide, so any value inside it is within 0.78 % of any
//   other (bucket midpoint: within 0.39 %). Two more buckets catch values
//   below 0.0625 ms and at or above 69.9 min. The bucket index comes straight
//   from the bits of the double (exponent and top 7 mantissa bits): no log().
//   3330 buckets of uint32_t, plus one counter per 128 buckets ("groups")
//   so a quantile scans 27 group counters and then at most 128 buckets.
//
// Window
//   A ring of N slices (time buckets of ttl/N ms each, keyed by
//   floor(now / slice_ms)); each slice has count, sum, min, max and a
//   histogram. A merged histogram of all live slices is kept incrementally
//   (added to on record, the old slice subtracted when it expires), so a
//   window-wide quantile costs one scan of one histogram. Slices rotate
//   lazily: whoever calls advance()/record()/summary() with a newer `now`
//   expires the slices that fell out. The window therefore covers between
//   ttl - ttl/N and ttl of history. Histograms are allocated on the first
//   sample of a slice and reused afterwards: at most (N + 1) histograms of
//   ~13 KiB per window whatever the sample count.
//
// recent(): the routing statistic over the newest slices only - walking back
//   from the current slice until at least `min_samples` samples are covered
//   (whole slices), or the whole window if it holds fewer. A deployment that
//   turns slow is thus judged by its recent samples instead of a long mean.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <vector>

namespace tailgate::latency {

// ---------------------------------------------------------------------------
// Bucket layout
// ---------------------------------------------------------------------------
struct LatencyBuckets {
    static constexpr int kSubBits = 7;
    static constexpr uint32_t kSub = 1u << kSubBits;  // buckets per power of two
    static constexpr int kMinExp = -4;                // 2^-4 ms = 62.5 us
    static constexpr int kMaxExp = 22;                // 2^22 ms = 69.9 min (exclusive)
    static constexpr uint32_t kOctaves = static_cast<uint32_t>(kMaxExp - kMinExp);
    static constexpr uint32_t kCount = 2 + kOctaves * kSub;  // + underflow + overflow
    static constexpr uint32_t kGroupBits = kSubBits;
    static constexpr uint32_t kGroups = (kCount + (1u << kGroupBits) - 1) >> kGroupBits;
    static constexpr double kMin = 0.0625;      // 2^kMinExp
    static constexpr double kMax = 4194304.0;   // 2^kMaxExp

    // Bucket of a value in ms. Negative, NaN and values below kMin go to 0,
    // values >= kMax (and +inf) to kCount - 1.
    static uint32_t index_of(double v) {
        if (!(v >= kMin)) return 0;
        if (v >= kMax) return kCount - 1;
        uint64_t bits;
        std::memcpy(&bits, &v, sizeof bits);
        const int exp = static_cast<int>((bits >> 52) & 0x7ff) - 1023;
        const uint32_t sub = static_cast<uint32_t>(bits >> (52 - kSubBits)) & (kSub - 1);
        return 1 + static_cast<uint32_t>(exp - kMinExp) * kSub + sub;
    }
    // [lower(i), upper(i)) is the range of bucket i (upper of the overflow
    // bucket is +inf).
    static double lower(uint32_t i) {
        if (i == 0) return 0.0;
        if (i >= kCount - 1) return kMax;
        const uint32_t k = i - 1;
        return std::ldexp(1.0 + static_cast<double>(k % kSub) / kSub, static_cast<int>(k / kSub) + kMinExp);
    }
    static double upper(uint32_t i) {
        if (i == 0) return kMin;
        if (i >= kCount - 1) return std::numeric_limits<double>::infinity();
        const uint32_t k = i - 1;
        return std::ldexp(1.0 + static_cast<double>(k % kSub + 1) / kSub, static_cast<int>(k / kSub) + kMinExp);
    }
};

// Counts per bucket plus per group of 128 buckets. Plain data (13.3 KiB).
struct Histogram {
    uint32_t counts[LatencyBuckets::kCount];
    uint32_t groups[LatencyBuckets::kGroups];

    void clear() { std::memset(this, 0, sizeof *this); }
    void add(uint32_t bucket) {
        ++counts[bucket];
        ++groups[bucket >> LatencyBuckets::kGroupBits];
    }
    // this -= other (other must be a subset of this). Skips empty groups.
    void subtract(const Histogram& other) {
        constexpr uint32_t gsize = 1u << LatencyBuckets::kGroupBits;
        for (uint32_t g = 0; g < LatencyBuckets::kGroups; ++g) {
            if (other.groups[g] == 0) continue;
            groups[g] -= other.groups[g];
            const uint32_t end = std::min((g + 1) * gsize, LatencyBuckets::kCount);
            for (uint32_t b = g * gsize; b < end; ++b) counts[b] -= other.counts[b];
        }
    }
    // Zeroes only the groups in use (cheaper than clear() for sparse data).
    void clear_used() {
        constexpr uint32_t gsize = 1u << LatencyBuckets::kGroupBits;
        for (uint32_t g = 0; g < LatencyBuckets::kGroups; ++g) {
            if (groups[g] == 0) continue;
            groups[g] = 0;
            const uint32_t end = std::min((g + 1) * gsize, LatencyBuckets::kCount);
            std::memset(&counts[g * gsize], 0, (end - g * gsize) * sizeof(uint32_t));
        }
    }
};

// Quantiles over the union of k histograms holding n samples in total, whose
// smallest and largest samples are mn and mx. qs must be ascending in [0, 1];
// out[i] receives the qs[i]-quantile. The value is interpolated linearly
// inside the bucket holding rank q*n and clamped to [mn, mx].
inline void merged_quantiles(const Histogram* const* hs, size_t k, uint64_t n, double mn, double mx,
                             const double* qs, double* out, size_t m) {
    using B = LatencyBuckets;
    constexpr uint32_t gsize = 1u << B::kGroupBits;
    size_t qi = 0;
    if (n == 0) {
        for (; qi < m; ++qi) out[qi] = 0;
        return;
    }
    const double total = static_cast<double>(n);
    uint64_t cum = 0;
    for (uint32_t g = 0; g < B::kGroups && qi < m; ++g) {
        uint64_t gc = 0;
        for (size_t h = 0; h < k; ++h) gc += hs[h]->groups[g];
        if (gc == 0) continue;
        if (static_cast<double>(cum + gc) < qs[qi] * total) {
            cum += gc;
            continue;
        }
        const uint32_t end = std::min((g + 1) * gsize, B::kCount);
        for (uint32_t b = g * gsize; b < end && qi < m; ++b) {
            uint64_t c = 0;
            for (size_t h = 0; h < k; ++h) c += hs[h]->counts[b];
            if (c == 0) continue;
            const double after = static_cast<double>(cum + c);
            while (qi < m && after >= qs[qi] * total) {
                double lo = B::lower(b), hi = B::upper(b);
                if (b == 0) lo = std::min(mn, lo);
                if (b == B::kCount - 1) hi = std::max(mx, lo);
                double f = (qs[qi] * total - static_cast<double>(cum)) / static_cast<double>(c);
                f = std::clamp(f, 0.0, 1.0);
                out[qi++] = lo + f * (hi - lo);
            }
            cum += c;
        }
    }
    for (; qi < m; ++qi) out[qi] = mx;  // rounding leftovers: the top
    for (size_t i = 0; i < m; ++i) out[i] = std::clamp(out[i], mn, mx);
}

enum class Statistic { Mean, P50, P90, P95, P99 };

inline double statistic_quantile(Statistic s) {
    switch (s) {
        case Statistic::P50: return 0.50;
        case Statistic::P90: return 0.90;
        case Statistic::P95: return 0.95;
        case Statistic::P99: return 0.99;
        case Statistic::Mean: break;
    }
    return 0.5;
}

struct Summary {
    uint64_t samples = 0;
    double mean = 0, p50 = 0, p90 = 0, p95 = 0, p99 = 0;
};

// ---------------------------------------------------------------------------
// Sliding window of N time slices
// ---------------------------------------------------------------------------
class Window {
public:
    static constexpr uint32_t kMaxSlices = 256;

    // slice_ms >= 1, 1 <= slices <= kMaxSlices (clamped). The window spans
    // slices * slice_ms.
    Window(int64_t slice_ms, uint32_t slices)
        : slice_ms_(std::max<int64_t>(slice_ms, 1)),
          n_slices_(std::clamp<uint32_t>(slices, 1, kMaxSlices)),
          slices_(n_slices_) {}

    Window(const Window&) = delete;
    Window& operator=(const Window&) = delete;

    int64_t slice_ms() const { return slice_ms_; }
    uint32_t slices() const { return n_slices_; }

    // Rotates to `now`; returns true when samples expired.
    bool advance(int64_t now) {
        const int64_t e = floor_div(now, slice_ms_);
        if (e <= cur_) return false;  // same slice, or the clock went back: stay
        cur_ = e;
        bool expired = false;
        for (auto& s : slices_) {
            if (s.n == 0 || s.epoch > e - static_cast<int64_t>(n_slices_)) continue;
            if (merged_) merged_->subtract(*s.hist);
            s.hist->clear_used();
            total_n_ -= s.n;
            s.n = 0;
            s.sum = 0;
            expired = true;
        }
        return expired;
    }

    // Records one sample (ms) at `now`. NaN is ignored, negatives count as 0.
    // A `now` older than the newest slice seen records into that slice.
    bool record(double v, int64_t now) {
        if (std::isnan(v)) return false;
        if (v < 0) v = 0;
        if (v > 1e300) v = 1e300;  // keeps sums finite
        advance(now);
        if (cur_ == kNever) return false;
        Slice& s = slices_[slot(cur_)];
        if (s.epoch != cur_) {  // the slot's previous slice has expired (advance cleared it)
            s.epoch = cur_;
            s.n = 0;
            s.sum = 0;
        }
        if (!s.hist) {
            s.hist = std::make_unique<Histogram>();
            s.hist->clear();
        }
        if (!merged_) {
            merged_ = std::make_unique<Histogram>();
            merged_->clear();
        }
        const uint32_t b = LatencyBuckets::index_of(v);
        s.hist->add(b);
        merged_->add(b);
        if (s.n == 0) {
            s.min = v;
            s.max = v;
        } else {
            s.min = std::min(s.min, v);
            s.max = std::max(s.max, v);
        }
        ++s.n;
        s.sum += v;
        ++total_n_;
        return true;
    }

    // Samples currently in the window (as of the last rotation).
    uint64_t samples() const { return total_n_; }

    // Window-wide summary at `now` (rotates first).
    Summary summary(int64_t now) {
        advance(now);
        return summary_now();
    }
    Summary summary_now() const {
        Summary out;
        if (total_n_ == 0) return out;
        double sum = 0, mn = std::numeric_limits<double>::infinity(), mx = -mn;
        for (const auto& s : slices_) {
            if (s.n == 0) continue;
            sum += s.sum;
            mn = std::min(mn, s.min);
            mx = std::max(mx, s.max);
        }
        static constexpr double qs[4] = {0.50, 0.90, 0.95, 0.99};
        double v[4];
        const Histogram* h = merged_.get();
        merged_quantiles(&h, 1, total_n_, mn, mx, qs, v, 4);
        out.samples = total_n_;
        out.mean = sum / static_cast<double>(total_n_);
        out.p50 = v[0];
        out.p90 = v[1];
        out.p95 = v[2];
        out.p99 = v[3];
        return out;
    }

    // Window-wide quantile (tests, diagnostics).
    double quantile(double q, int64_t now) {
        advance(now);
        if (total_n_ == 0) return 0;
        double mn = std::numeric_limits<double>::infinity(), mx = -mn;
        for (const auto& s : slices_)
            if (s.n) {
                mn = std::min(mn, s.min);
                mx = std::max(mx, s.max);
            }
        q = std::clamp(q, 0.0, 1.0);
        double out;
        const Histogram* h = merged_.get();
        merged_quantiles(&h, 1, total_n_, mn, mx, &q, &out, 1);
        return out;
    }

    struct Recent {
        double value = 0;
        uint64_t samples = 0;  // samples the value was computed from
        uint32_t slices = 0;   // newest slices used
    };
    // The statistic over the newest slices holding >= min_samples samples
    // (whole slices), or over the whole window if it holds fewer. Empty
    // window: nullopt. Rotates first.
    std::optional<Recent> recent(int64_t now, Statistic stat, uint64_t min_samples) {
        advance(now);
        if (total_n_ == 0) return std::nullopt;
        Recent r;
        double sum = 0, mn = std::numeric_limits<double>::infinity(), mx = -mn;
        const Histogram* hs[kMaxSlices];
        size_t k = 0;
        for (uint32_t back = 0; back < n_slices_ && r.samples < std::max<uint64_t>(min_samples, 1); ++back) {
            const Slice& s = slices_[slot(cur_ - back)];
            if (s.n == 0 || s.epoch != cur_ - static_cast<int64_t>(back)) continue;
            r.samples += s.n;
            ++r.slices;
            sum += s.sum;
            mn = std::min(mn, s.min);
            mx = std::max(mx, s.max);
            hs[k++] = s.hist.get();
        }
        if (stat == Statistic::Mean) {
            r.value = sum / static_cast<double>(r.samples);
            return r;
        }
        const double q = statistic_quantile(stat);
        if (r.samples == total_n_) {  // every live slice: the merged histogram is cheaper
            const Histogram* h = merged_.get();
            merged_quantiles(&h, 1, total_n_, mn, mx, &q, &r.value, 1);
        } else {
            merged_quantiles(hs, k, r.samples, mn, mx, &q, &r.value, 1);
        }
        return r;
    }

    // Bytes held by this window (object, slice table and histograms).
    size_t memory_bytes() const {
        size_t b = sizeof *this + slices_.capacity() * sizeof(Slice);
        if (merged_) b += sizeof(Histogram);
        for (const auto& s : slices_)
            if (s.hist) b += sizeof(Histogram);
        return b;
    }
    // Upper bound of memory_bytes() for a window of `slices` slices.
    static size_t max_memory_bytes(uint32_t slices) {
        return sizeof(Window) + slices * (sizeof(Slice) + sizeof(Histogram)) + sizeof(Histogram);
    }

private:
    static constexpr int64_t kNever = std::numeric_limits<int64_t>::min();

    struct Slice {
        int64_t epoch = kNever;
        uint64_t n = 0;
        double sum = 0, min = 0, max = 0;
        std::unique_ptr<Histogram> hist;
    };

    static int64_t floor_div(int64_t a, int64_t b) {
        int64_t q = a / b;
        if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
        return q;
    }
    size_t slot(int64_t epoch) const {
        const int64_t n = static_cast<int64_t>(n_slices_);
        return static_cast<size_t>(((epoch % n) + n) % n);
    }

    int64_t slice_ms_;
    uint32_t n_slices_;
    int64_t cur_ = kNever;  // newest slice seen
    uint64_t total_n_ = 0;
    std::vector<Slice> slices_;
    std::unique_ptr<Histogram> merged_;
};

}  // namespace tailgate::latency
