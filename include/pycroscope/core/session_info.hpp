#pragma once
// What a sink learns about the session when it opens (SessionInfo) and when
// the session ends (SessionSummary).

#include "pycroscope/core/clock.hpp"
#include "pycroscope/core/config.hpp"
#include "pycroscope/core/thread_info.hpp"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace pycroscope {

struct SessionInfo {
    std::string process_name;
    std::uint64_t pid = 0;
    std::int64_t start_unix_ns = 0; // wall clock at start, for humans
    std::uint64_t start_ticks = 0;
    clock::Calibration calibration;
    std::size_t buffer_capacity = 0; // effective (power of two) events per thread
    OverflowPolicy overflow = OverflowPolicy::block;
    std::vector<std::string> collectors;
    std::vector<std::pair<std::string, std::string>> metadata;

    // Nanoseconds since the session started.
    std::int64_t session_ns(std::uint64_t ticks) const noexcept {
        const auto delta = static_cast<std::int64_t>(ticks - start_ticks);
        return static_cast<std::int64_t>(static_cast<double>(delta) * calibration.ns_per_tick);
    }
    double ticks_to_ns(std::uint64_t ticks) const noexcept { return calibration.ticks_to_ns(ticks); }
};

struct SessionSummary {
    SessionInfo info;
    std::uint64_t stop_ticks = 0;
    std::int64_t duration_ns = 0;
    std::vector<ThreadInfo> threads; // every thread that recorded, by index
    std::uint64_t total_events = 0;  // delivered to the sinks
    std::uint64_t total_lost = 0;
    std::vector<std::string> errors; // sink failures; the other sinks still completed

    const ThreadInfo* thread(std::uint32_t index) const noexcept {
        for (const auto& t : threads) {
            if (t.index == index) {
                return &t;
            }
        }
        return nullptr;
    }
};

} // namespace pycroscope
