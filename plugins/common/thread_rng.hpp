// A per-thread random engine for the in-tree strategies (not part of the SDK):
// route() runs concurrently on many threads, so each keeps its own engine and
// no lock is taken for a random draw.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <random>
#include <thread>

namespace tailgate::plugins {

inline std::mt19937_64 randomly_seeded() {
    try {
        std::random_device rd;
        std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
        return std::mt19937_64(seq);
    } catch (...) {
        // No entropy source: time and thread id still differ between threads.
        auto t = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
        auto h = static_cast<uint64_t>(std::hash<std::thread::id>{}(std::this_thread::get_id()));
        std::seed_seq seq{static_cast<uint32_t>(t), static_cast<uint32_t>(t >> 32), static_cast<uint32_t>(h),
                          static_cast<uint32_t>(h >> 32)};
        return std::mt19937_64(seq);
    }
}

inline std::mt19937_64& thread_rng() {
    thread_local std::mt19937_64 rng = randomly_seeded();
    return rng;
}

// Uniform in [0, 1) from the top 53 bits.
inline double unit(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

}  // namespace tailgate::plugins
