#pragma once
// Whether native zones record, and how: the words a zone reads first.
//  - native_epoch: the session's epoch while the NativeZones collector
//    records (marks, counters and frame marks read it too), else zero;
//  - zone_stack_readers: how many ZoneStackReaders live (zones then keep
//    their thread's ZoneStack for a sampler);
//  - native_fast_epoch: zero while native zones do not record; native_epoch
//    while a zone may take its shortest path (the clock is the TSC and no
//    reader lives); else native_checked_path. One load then answers all
//    three questions, and a zone skips three tests.
// Writers (a session starting or stopping, a reader coming or going) are
// rare and take a mutex, so native_fast_epoch always matches the other two.

#include "pycroscope/core/clock.hpp"

#include <atomic>
#include <cstdint>
#include <mutex>

namespace pycroscope {
namespace detail {

inline std::atomic<std::uint64_t> native_epoch{0};
inline std::atomic<int> zone_stack_readers{0};
inline std::atomic<std::uint64_t> native_fast_epoch{0};
constexpr std::uint64_t native_checked_path = ~std::uint64_t{0}; // never an epoch

inline std::mutex& native_zone_state_mutex() {
    static std::mutex mutex;
    return mutex;
}

// The caller holds native_zone_state_mutex().
inline void publish_native_fast_epoch() noexcept {
    const std::uint64_t epoch = native_epoch.load(std::memory_order_relaxed);
    const bool fast = zone_stack_readers.load(std::memory_order_relaxed) == 0 &&
                      clock::detail::use_tsc.load(std::memory_order_relaxed);
    native_fast_epoch.store(epoch == 0 ? 0 : fast ? epoch : native_checked_path, std::memory_order_release);
}

// Zero stops native recording. The clock must be selected before a start.
inline void set_native_epoch(std::uint64_t epoch) noexcept {
    std::lock_guard<std::mutex> lock(native_zone_state_mutex());
    if (epoch == 0) {
        native_fast_epoch.store(0, std::memory_order_release);
    }
    native_epoch.store(epoch, std::memory_order_release);
    publish_native_fast_epoch();
}

inline void add_zone_stack_readers(int delta) noexcept {
    std::lock_guard<std::mutex> lock(native_zone_state_mutex());
    zone_stack_readers.fetch_add(delta, std::memory_order_relaxed);
    publish_native_fast_epoch();
}

// A forked child's only thread: no lock, as the parent's lock holder is gone.
inline void stop_native_zones_in_child() noexcept {
    native_fast_epoch.store(0, std::memory_order_relaxed);
    native_epoch.store(0, std::memory_order_relaxed);
}

} // namespace detail
} // namespace pycroscope
