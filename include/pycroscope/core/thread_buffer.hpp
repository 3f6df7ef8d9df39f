#pragma once
// Everything the session keeps per recording thread: its ring buffer and its
// identity. The owning thread writes to the ring; the drain thread reads it
// and the rest under the registry lock.

#include "pycroscope/core/ring_buffer.hpp"

#include <atomic>
#include <cstdint>
#include <string>

namespace pycroscope {

struct ThreadBuffer {
    ThreadBuffer(std::size_t capacity, OverflowPolicy policy, std::uint32_t index_, std::uint64_t os_tid_,
                 std::string name_)
        : ring(capacity, policy), index(index_), os_tid(os_tid_), name(std::move(name_)) {}

    RingBuffer ring;
    const std::uint32_t index;  // 1, 2, ... in order of first event in the session
    const std::uint64_t os_tid; // kernel thread id where available
    std::string name;           // guarded by the registry mutex
    // Set by the thread as it exits; the drain thread then empties the buffer
    // and retires it, so short-lived threads lose nothing.
    std::atomic<bool> exited{false};
    std::uint64_t delivered = 0; // drain-thread owned: events handed to sinks
};

} // namespace pycroscope
