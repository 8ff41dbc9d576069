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
//   3330 buckets of uint32_t, plus one counter per 16 buckets ("blocks") and
//   per 128 buckets ("groups"), so a quantile reads at most 27 group, 8 block
//   and 16 bucket counters.
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
//   ~14 KiB per window whatever the sample count.
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
    static constexpr uint32_t kGroupBits = kSubBits;  // 128 buckets per group
    static constexpr uint32_t kGroups = (kCount + (1u << kGroupBits) - 1) >> kGroupBits;
    static constexpr uint32_t kBlockBits = 4;  // 16 buckets per block
    static constexpr uint32_t kBlocks = (kCount + (1u << kBlockBits) - 1) >> kBlockBits;
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
    // bucket is +inf). Built from the bits directly (exact, no ldexp).
    static double lower(uint32_t i) {
        if (i == 0) return 0.0;
        if (i > kCount - 1) i = kCount - 1;
        const uint32_t k = i - 1;  // the overflow bucket gives exactly 2^kMaxExp
        const uint64_t exp = static_cast<uint64_t>(static_cast<int>(k / kSub) + kMinExp + 1023);
        const uint64_t bits = (exp << 52) | (static_cast<uint64_t>(k % kSub) << (52 - kSubBits));
        double v;
        std::memcpy(&v, &bits, sizeof v);
        return v;
    }
    static double upper(uint32_t i) {
        if (i >= kCount - 1) return std::numeric_limits<double>::infinity();
        return lower(i + 1);
    }
};

// Counts per bucket, per block of 16 buckets and per group of 128 buckets,
// so that finding a rank reads at most 27 + 8 + 16 counters. Plain data
// (~14 KiB).
struct Histogram {
    using B = LatencyBuckets;
    uint32_t counts[B::kCount];
    uint32_t blocks[B::kBlocks];
    uint32_t groups[B::kGroups];

    void clear() { std::memset(this, 0, sizeof *this); }
    void add(uint32_t bucket) {
        ++counts[bucket];
        ++blocks[bucket >> B::kBlockBits];
        ++groups[bucket >> B::kGroupBits];
    }
    // this -= other (other must be a subset of this). Skips empty groups.
    void subtract(const Histogram& other) {
        constexpr uint32_t per_group = 1u << (B::kGroupBits - B::kBlockBits);
        for (uint32_t g = 0; g < B::kGroups; ++g) {
            if (other.groups[g] == 0) continue;
            groups[g] -= other.groups[g];
            const uint32_t kend = std::min((g + 1) * per_group, B::kBlocks);
            for (uint32_t k = g * per_group; k < kend; ++k) {
                if (other.blocks[k] == 0) continue;
                blocks[k] -= other.blocks[k];
                const uint32_t end = std::min((k + 1) << B::kBlockBits, B::kCount);
                for (uint32_t b = k << B::kBlockBits; b < end; ++b) counts[b] -= other.counts[b];
            }
        }
    }
    // Zeroes only the blocks in use (cheaper than clear() for sparse data).
    void clear_used() {
        constexpr uint32_t per_group = 1u << (B::kGroupBits - B::kBlockBits);
        for (uint32_t g = 0; g < B::kGroups; ++g) {
            if (groups[g] == 0) continue;
            groups[g] = 0;
            const uint32_t kend = std::min((g + 1) * per_group, B::kBlocks);
            for (uint32_t k = g * per_group; k < kend; ++k) {
                if (blocks[k] == 0) continue;
                blocks[k] = 0;
                const uint32_t begin = k << B::kBlockBits, end = std::min((k + 1) << B::kBlockBits, B::kCount);
                std::memset(&counts[begin], 0, (end - begin) * sizeof(uint32_t));
            }
        }
    }
};

namespace detail {
// Count of bucket b (or group g) summed over the k histograms.
template <bool Single>
inline uint64_t bucket_count(const Histogram* const* hs, size_t k, uint32_t b) {
    if constexpr (Single) {
        (void)k;
        return hs[0]->counts[b];
    } else {
        uint64_t c = 0;
        for (size_t h = 0; h < k; ++h) c += hs[h]->counts[b];
        return c;
    }
}
template <bool Single>
inline uint64_t group_count(const Histogram* const* hs, size_t k, uint32_t g) {
    if constexpr (Single) {
        (void)k;
        return hs[0]->groups[g];
    } else {
        uint64_t c = 0;
        for (size_t h = 0; h < k; ++h) c += hs[h]->groups[g];
        return c;
    }
}

template <bool Single>
inline uint64_t block_count(const Histogram* const* hs, size_t k, uint32_t i) {
    if constexpr (Single) {
        (void)k;
        return hs[0]->blocks[i];
    } else {
        uint64_t c = 0;
        for (size_t h = 0; h < k; ++h) c += hs[h]->blocks[i];
        return c;
    }
}

template <bool Single>
inline void quantiles_impl(const Histogram* const* hs, size_t k, uint64_t n, double mn, double mx, const double* qs,
                           double* out, size_t m) {
    using B = LatencyBuckets;
    constexpr uint32_t blocks_per_group = 1u << (B::kGroupBits - B::kBlockBits);
    constexpr uint32_t buckets_per_block = 1u << B::kBlockBits;
    const double total = static_cast<double>(n);
    uint32_t g = 0;       // current group
    uint64_t before = 0;  // samples in groups before g
    for (size_t qi = 0; qi < m; ++qi) {
        const double t = std::clamp(qs[qi], 0.0, 1.0) * total;  // target rank
        const uint64_t want = static_cast<uint64_t>(std::ceil(t));
        // Group holding rank `want` (first non-empty one for want == 0).
        uint64_t gc = 0;
        for (; g < B::kGroups; ++g) {
            gc = group_count<Single>(hs, k, g);
            if (gc != 0 && before + gc >= want) break;
            before += gc;
        }
        if (g >= B::kGroups) {  // rounding at the very top
            out[qi] = mx;
            continue;
        }
        // Block, then bucket, inside it.
        uint64_t cum = before;
        uint32_t blk = g * blocks_per_group;
        const uint32_t blk_end = std::min(blk + blocks_per_group, B::kBlocks);
        for (; blk + 1 < blk_end; ++blk) {
            const uint64_t kc = block_count<Single>(hs, k, blk);
            if (kc != 0 && cum + kc >= want) break;
            cum += kc;
        }
        uint32_t b = blk * buckets_per_block;
        const uint32_t b_end = std::min(b + buckets_per_block, B::kCount);
        uint64_t c = 0;
        for (; b < b_end; ++b) {
            c = bucket_count<Single>(hs, k, b);
            if (c != 0 && cum + c >= want) break;
            cum += c;
        }
        if (b >= b_end) {  // cannot happen with consistent counters
            out[qi] = mx;
            continue;
        }
        double lo = B::lower(b), hi = B::upper(b);
        if (b == 0) lo = std::min(mn, lo);
        if (b == B::kCount - 1) hi = std::max(mx, lo);
        const double f = std::clamp((t - static_cast<double>(cum)) / static_cast<double>(c), 0.0, 1.0);
        out[qi] = std::clamp(lo + f * (hi - lo), mn, mx);
    }
}
}  // namespace detail

// Quantiles over the union of k histograms holding n samples in total, whose
// smallest and largest samples are mn and mx. qs must be ascending in [0, 1];
// out[i] receives the qs[i]-quantile: the value of rank qs[i] * n,
// interpolated linearly inside its bucket and clamped to [mn, mx]. Scans the
// group counters, then the buckets of at most one group per quantile.
inline void merged_quantiles(const Histogram* const* hs, size_t k, uint64_t n, double mn, double mx,
                             const double* qs, double* out, size_t m) {
    if (n == 0 || k == 0) {
        for (size_t i = 0; i < m; ++i) out[i] = 0;
        return;
    }
    if (k == 1)
        detail::quantiles_impl<true>(hs, k, n, mn, mx, qs, out, m);
    else
        detail::quantiles_impl<false>(hs, k, n, mn, mx, qs, out, m);
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
        if (now < next_ms_) return false;  // fast path: still in the newest slice (or the clock went back)
        const int64_t e = floor_div(now, slice_ms_);
        if (e <= cur_) return false;
        cur_ = e;
        cur_slot_ = slot(e);
        next_ms_ = e < std::numeric_limits<int64_t>::max() / slice_ms_ - 1 ? (e + 1) * slice_ms_
                                                                           : std::numeric_limits<int64_t>::max();
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
        Slice& s = slices_[cur_slot_];
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
        size_t idx = cur_slot_;
        for (uint32_t back = 0; back < n_slices_ && r.samples < std::max<uint64_t>(min_samples, 1);
             ++back, idx = idx == 0 ? n_slices_ - 1 : idx - 1) {
            const Slice& s = slices_[idx];
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
    int64_t next_ms_ = std::numeric_limits<int64_t>::min();  // start of the slice after cur_
    size_t cur_slot_ = 0;                                     // slot(cur_)
    uint64_t total_n_ = 0;
    std::vector<Slice> slices_;
    std::unique_ptr<Histogram> merged_;
};

}  // namespace tailgate::latency
