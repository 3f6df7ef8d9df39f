#pragma once
// Everything the session keeps per recording thread: its ring buffer and its
// identity. The owning thread writes to the ring; the drain thread reads it
// and the rest under the registry lock.

#include "pycroscope/core/ring_buffer.hpp"
#include "pycroscope/core/zone_stack.hpp"

#include <atomic>
#include <cstdint>
#include <string>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#endif

namespace pycroscope {
namespace detail {
// pthread_self() as a number: what CPython before 3.11 keeps as a thread
// state's thread_id, so a sampler can match thread states to buffers.
inline std::uint64_t current_thread_handle() noexcept {
#if defined(__unix__) || defined(__APPLE__)
    return static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(reinterpret_cast<void*>(::pthread_self())));
#else
    return 0;
#endif
}
} // namespace detail

struct ThreadBuffer {
    ThreadBuffer(std::size_t capacity, OverflowPolicy policy, std::uint32_t index_, std::uint64_t os_tid_,
                 std::string name_, bool prefault = false)
        : ring(capacity, policy, prefault), index(index_), os_tid(os_tid_), name(std::move(name_)) {}

    RingBuffer ring;
    const std::uint32_t index;  // 1, 2, ... in order of first event in the session
    const std::uint64_t os_tid; // kernel thread id where available
    std::string name;           // guarded by the registry mutex
    // Set by the thread as it exits; the drain thread then empties the buffer
    // and retires it, so short-lived threads lose nothing.
    std::atomic<bool> exited{false};
    std::uint64_t delivered = 0; // drain-thread owned: events handed to sinks
    // Constructed on the thread it belongs to (attach), so this is that thread's.
    const std::uint64_t thread_handle = detail::current_thread_handle();
    // Zones open on the thread, for the sampler (written by the thread).
    ZoneStack zones;
};

} // namespace pycroscope
