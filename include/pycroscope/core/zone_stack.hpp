#pragma once
// The zones open on one thread, for a sampler on another thread to read.
//
// Written only by the owning thread (on the zone begin/end path), read racily
// by the sampler. Every field is a relaxed atomic in a fixed array, so a read
// that races a push or a pop is memory-safe: it may see an entry that is being
// replaced, never a torn pointer or an index out of bounds. The locations it
// points to live until the process exits (static or interned), so a stale
// entry is still a valid location. On x86-64 and AArch64 these atomics
// compile to plain loads and stores: the cost on the zone path is a few
// stores to a cache line the thread already owns.
//
// Each entry holds where the zone sits on the thread's stack, so a sampler can
// interleave zones with Python frames in true call order:
//  - a C-stack address (the Zone object's own address): the C stack grows
//    down, so a zone at a higher address is outside (older than) any frame
//    of the interpreter running at a lower address;
//  - or, with the low bit set, the identity of the Python frame that opened
//    the zone (`with pycroscope.zone(...)`): the zone is inside that frame
//    and outside its callees.
// Deeper nesting than `capacity` is counted (overflowed()) and its entries
// are not stored; depth() keeps counting so pops stay balanced.
//
// Zones keep their thread's stack only while a ZoneStackReader lives (the
// sampler holds one): without a reader the stack is dead weight on every
// zone, about a fifth of a zone's cost beyond its two timestamps.

#include "pycroscope/core/compiler.hpp"
#include "pycroscope/core/native_zone_state.hpp"
#include "pycroscope/core/source_location.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace pycroscope {

// True while zones push themselves on their thread's ZoneStack.
PYCROSCOPE_FORCE_INLINE bool zone_stacks_kept() noexcept {
    return detail::zone_stack_readers.load(std::memory_order_relaxed) != 0;
}

// Held by whatever reads other threads' ZoneStacks (a sampler), for as long
// as it reads. Zones that began before it existed are not on the stack; a
// session's stacks start empty, so take it before the session records zones.
class ZoneStackReader {
public:
    ZoneStackReader() noexcept { detail::add_zone_stack_readers(1); }
    ~ZoneStackReader() { detail::add_zone_stack_readers(-1); }
    ZoneStackReader(const ZoneStackReader&) = delete;
    ZoneStackReader& operator=(const ZoneStackReader&) = delete;
};

class ZoneStack {
public:
    static constexpr std::uint32_t capacity = 64;
    // Low bit of an entry's position: the rest is a Python frame's identity.
    static constexpr std::uintptr_t python_frame_tag = 1;

    struct Entry {
        const SourceLocation* location;
        std::uintptr_t position;
    };

    // Owner thread only.
    PYCROSCOPE_FORCE_INLINE void push(const SourceLocation* location, std::uintptr_t position) noexcept {
        const std::uint32_t depth = depth_.load(std::memory_order_relaxed);
        if (PYCROSCOPE_LIKELY(depth < capacity)) {
            slots_[depth].location.store(location, std::memory_order_relaxed);
            slots_[depth].position.store(position, std::memory_order_relaxed);
        } else {
            overflowed_.store(overflowed_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        }
        // Release: a reader that sees the new depth sees the entry under it.
        depth_.store(depth + 1, std::memory_order_release);
    }

    // Owner thread only. An unbalanced pop (never pushed) is ignored.
    PYCROSCOPE_FORCE_INLINE void pop() noexcept {
        const std::uint32_t depth = depth_.load(std::memory_order_relaxed);
        if (PYCROSCOPE_LIKELY(depth != 0)) {
            depth_.store(depth - 1, std::memory_order_release);
        }
    }

    // Any thread. Copies up to max entries, outermost first; returns how many.
    std::size_t read(Entry* out, std::size_t max) const noexcept {
        std::size_t depth = depth_.load(std::memory_order_acquire);
        if (depth > capacity) {
            depth = capacity;
        }
        if (depth > max) {
            depth = max;
        }
        for (std::size_t i = 0; i < depth; ++i) {
            out[i].location = slots_[i].location.load(std::memory_order_relaxed);
            out[i].position = slots_[i].position.load(std::memory_order_relaxed);
        }
        return depth;
    }

    // Open zones, including those beyond capacity.
    std::uint32_t depth() const noexcept { return depth_.load(std::memory_order_acquire); }
    // Pushes that found the stack full (their entries were not stored).
    std::uint64_t overflowed() const noexcept { return overflowed_.load(std::memory_order_relaxed); }

private:
    struct Slot {
        std::atomic<const SourceLocation*> location{nullptr};
        std::atomic<std::uintptr_t> position{0};
    };
    std::atomic<std::uint32_t> depth_{0};
    std::atomic<std::uint64_t> overflowed_{0};
    Slot slots_[capacity];
};

} // namespace pycroscope
