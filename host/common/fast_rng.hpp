// A small per-thread generator (SplitMix64) for non-cryptographic picks: request
// ids, retry jitter, shadow sampling. std::mt19937 keeps 5 KB of thread-local
// state; static TLS is laid out in every thread's stack and written at thread
// start, so three of them would keep ~15 KB resident in every thread of Poco's
// pool (up to 2 x max_threads) and of the Asio side.
#pragma once

#include <cstdint>
#include <limits>
#include <sys/random.h>

#include <chrono>

namespace tailgate {

class FastRng {
public:
    using result_type = uint64_t;
    static constexpr result_type min() { return 0; }
    static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }

    explicit FastRng(uint64_t seed) : state_(seed) {}

    result_type operator()() {
        uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }

    // Seeded once per thread by getrandom() (std::random_device would put another
    // 5 KB object on the thread's stack).
    static FastRng& for_this_thread() {
        thread_local FastRng rng{seed()};
        return rng;
    }

private:
    static uint64_t seed() {
        uint64_t s = 0;
        if (::getrandom(&s, sizeof s, 0) != static_cast<ssize_t>(sizeof s))
            s = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
        return s;
    }

public:

private:
    uint64_t state_;
};

}  // namespace tailgate
