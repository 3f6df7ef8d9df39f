#pragma once
// Single-producer single-consumer ring of Events. The producer is the thread
// that owns the buffer; the consumer is the drain thread.
//
// Hot path (push): no lock, no allocation, no virtual call, no system call.
// Slots are arrays of relaxed atomics: on x86-64 these are plain moves, and
// they make the overwrite policy's optimistic reads well defined (and TSan-clean).

#include "pycroscope/core/compiler.hpp"
#include "pycroscope/core/config.hpp"
#include "pycroscope/core/event.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

// ThreadSanitizer does not model fences (GCC warns under -Werror); there the
// overwrite policy uses read-modify-write operations with the same ordering.
#if defined(__SANITIZE_THREAD__)
#define PYCROSCOPE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PYCROSCOPE_TSAN 1
#endif
#endif
#ifndef PYCROSCOPE_TSAN
#define PYCROSCOPE_TSAN 0
#endif

namespace pycroscope {

namespace detail {
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(_M_X64)
    _mm_pause();
#endif
}
constexpr std::size_t cache_line = 64;
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
constexpr bool little_endian = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;
#elif defined(_M_X64) || defined(_M_IX86) || defined(_M_ARM64)
constexpr bool little_endian = true;
#else
constexpr bool little_endian = false; // unknown: the field-by-field path is right everywhere
#endif
} // namespace detail

class RingBuffer {
public:
    // capacity must be a power of two (Config::effective_capacity()).
    // prefault: write the slots now (value-initialise) rather than on first use.
    RingBuffer(std::size_t capacity, OverflowPolicy policy, bool prefault = false)
        : slots_(prefault ? new Slot[capacity]() : new Slot[capacity]), mask_(capacity - 1), capacity_(capacity),
          policy_(policy),
          limit_(policy == OverflowPolicy::overwrite_oldest ? 0 : capacity) {}

    RingBuffer(const RingBuffer&) = delete;
    RingBuffer& operator=(const RingBuffer&) = delete;

    std::size_t capacity() const noexcept { return capacity_; }
    OverflowPolicy policy() const noexcept { return policy_; }

    // Producer side. Returns false when the event was not stored (drop_newest
    // with a full buffer, or block after close()); the loss is counted.
    PYCROSCOPE_FORCE_INLINE bool push(const Event& event) noexcept {
        const std::uint64_t head = head_.load(std::memory_order_relaxed); // only this thread writes it
        // One compare on the fast path: limit_ is the first index the cached
        // view of the consumer forbids; 0 under overwrite_oldest, so that
        // policy always takes make_room().
        if (PYCROSCOPE_UNLIKELY(head >= limit_) && !make_room(head)) {
            return false;
        }
        store(slots_[head & mask_], event);
        head_.store(head + 1, std::memory_order_release);
        return true;
    }

    // Producer side: stores all n events or none, so a group that must be
    // read whole (a stack sample) is never cut in the middle by drop_newest.
    // block waits for room for the whole group (one by one when the group is
    // larger than the ring); overwrite_oldest may still overwrite an older
    // group's head, which readers detect. Returns false when nothing was
    // stored (all n counted as dropped).
    bool push_all(const Event* events, std::size_t n) noexcept {
        if (policy_ == OverflowPolicy::drop_newest || (policy_ == OverflowPolicy::block && n <= capacity_)) {
            const std::uint64_t head = head_.load(std::memory_order_relaxed);
            const std::uint64_t last = head + n - 1;
            if (n != 0 && PYCROSCOPE_UNLIKELY(last >= limit_) && !make_room(last, n)) {
                return false;
            }
            for (std::size_t i = 0; i < n; ++i) {
                store(slots_[(head + i) & mask_], events[i]);
            }
            head_.store(head + n, std::memory_order_release);
            return true;
        }
        bool all = true;
        for (std::size_t i = 0; i < n; ++i) {
            all = push(events[i]) && all;
        }
        return all;
    }

    static constexpr std::size_t producer_lead = 16; // events: 8 cache lines

    // Consumer side: copies up to max events into out and returns how many.
    std::size_t pop(Event* out, std::size_t max) noexcept {
        std::uint64_t tail = tail_.load(std::memory_order_relaxed);
        const std::uint64_t head = head_.load(std::memory_order_acquire);
        if (head == tail) {
            return 0;
        }
        if (policy_ != OverflowPolicy::overwrite_oldest) {
            std::size_t n = static_cast<std::size_t>(head - tail);
            // While the producer is busy, leave it the newest few cache
            // lines: reading a line it is still filling makes the line
            // bounce between the two cores twice.
            if (n > 4 * producer_lead) {
                n -= producer_lead;
            }
            if (n > max) {
                n = max;
            }
            for (std::size_t i = 0; i < n; ++i) {
                out[i] = load(slots_[(tail + i) & mask_]);
            }
            tail_.store(tail + n, std::memory_order_release);
            return n;
        }
        return pop_overwritten(out, max, tail, head);
    }

    // Producer-side events that were not stored (drop_newest, or block after close()).
    std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }
    // Consumer-side events overwritten before they could be read.
    std::uint64_t overwritten() const noexcept { return overwritten_.load(std::memory_order_relaxed); }
    std::uint64_t lost() const noexcept { return dropped() + overwritten(); }
    // Events stored so far (read or not).
    std::uint64_t pushed() const noexcept { return head_.load(std::memory_order_acquire); }
    bool empty() const noexcept {
        return head_.load(std::memory_order_acquire) == tail_.load(std::memory_order_relaxed);
    }

    // After close() a blocked producer gives up instead of waiting for a
    // consumer that is gone; its events are counted as dropped.
    void close() noexcept { closed_.store(true, std::memory_order_release); }

    // Called (from the producer) when a block-policy push starts waiting.
    void set_waker(void (*waker)(void*), void* context) noexcept {
        waker_ = waker;
        waker_context_ = context;
    }

private:
    struct alignas(32) Slot {
        std::atomic<std::uint64_t> word[4];
    };

    // Word 3 of a slot is Event's documented packing (event.hpp): kind in the
    // low byte, aux in the high half. In memory an Event holds aux first, so on
    // a little-endian machine the two differ by a rotation of 32 bits: one
    // instruction each way instead of four fields shifted and masked.
    static constexpr std::size_t tail_offset = offsetof(Event, aux);
    static_assert(offsetof(Event, aux) == 24 && offsetof(Event, kind) == 28 && offsetof(Event, flags) == 29 &&
                      offsetof(Event, aux_high) == 30,
                  "Event's last word must be aux, kind, flags, aux_high");

    static std::uint64_t rotate32(std::uint64_t word) noexcept { return (word << 32) | (word >> 32); }

    PYCROSCOPE_FORCE_INLINE static void store(Slot& slot, const Event& e) noexcept {
        std::uint64_t packed;
        if (detail::little_endian) {
            std::uint64_t tail;
            std::memcpy(&tail, reinterpret_cast<const unsigned char*>(&e) + tail_offset, sizeof tail);
            packed = rotate32(tail);
        } else {
            packed = static_cast<std::uint64_t>(static_cast<std::uint8_t>(e.kind)) |
                     (static_cast<std::uint64_t>(e.flags) << 8) | (static_cast<std::uint64_t>(e.aux_high) << 16) |
                     (static_cast<std::uint64_t>(e.aux) << 32);
        }
        slot.word[0].store(e.timestamp, std::memory_order_relaxed);
        slot.word[1].store(e.id, std::memory_order_relaxed);
        slot.word[2].store(e.payload, std::memory_order_relaxed);
        slot.word[3].store(packed, std::memory_order_relaxed);
    }

    PYCROSCOPE_FORCE_INLINE static Event load(const Slot& slot) noexcept {
        Event e;
        e.timestamp = slot.word[0].load(std::memory_order_relaxed);
        e.id = slot.word[1].load(std::memory_order_relaxed);
        e.payload = slot.word[2].load(std::memory_order_relaxed);
        const std::uint64_t packed = slot.word[3].load(std::memory_order_relaxed);
        if (detail::little_endian) {
            const std::uint64_t tail = rotate32(packed);
            std::memcpy(reinterpret_cast<unsigned char*>(&e) + tail_offset, &tail, sizeof tail);
        } else {
            e.kind = static_cast<EventKind>(packed & 0xff);
            e.flags = static_cast<std::uint8_t>((packed >> 8) & 0xff);
            e.aux_high = static_cast<std::uint16_t>((packed >> 16) & 0xffff);
            e.aux = static_cast<std::uint32_t>(packed >> 32);
        }
        return e;
    }

    // Slow path of push(): the overwrite policy's claim, or a buffer that
    // looked full from the producer's cached view of the consumer. head: the
    // last index to be written; events: how many a failure drops.
    PYCROSCOPE_NOINLINE bool make_room(std::uint64_t head, std::size_t events = 1) noexcept {
        if (policy_ == OverflowPolicy::overwrite_oldest) {
            // Announce the slot before touching it so a concurrent reader can
            // tell that what it copied may be torn (seqlock order).
#if PYCROSCOPE_TSAN
            claimed_.exchange(head + 1, std::memory_order_acq_rel);
#else
            claimed_.store(head + 1, std::memory_order_relaxed);
            std::atomic_thread_fence(std::memory_order_release);
#endif
            return true;
        }
        if (refresh_limit(head)) {
            return true;
        }
        if (policy_ == OverflowPolicy::drop_newest) {
            dropped_.fetch_add(events, std::memory_order_relaxed);
            return false;
        }
        for (unsigned spins = 0;; ++spins) {
            if (closed_.load(std::memory_order_acquire)) {
                dropped_.fetch_add(events, std::memory_order_relaxed);
                return false;
            }
            if (refresh_limit(head)) {
                return true;
            }
            if (spins == 0 && waker_ != nullptr) {
                waker_(waker_context_); // the drain thread may be asleep
            }
            if (spins < 64) {
                detail::cpu_relax();
            } else {
                std::this_thread::yield(); // only when the buffer is full: block means wait
            }
        }
    }

    bool refresh_limit(std::uint64_t head) noexcept {
        limit_ = tail_.load(std::memory_order_acquire) + capacity_;
        return head < limit_;
    }

    // Overwrite policy: skip what was already overwritten, copy optimistically,
    // then discard the copies the producer may have torn meanwhile.
    std::size_t pop_overwritten(Event* out, std::size_t max, std::uint64_t tail, std::uint64_t head) noexcept {
        if (head - tail > capacity_) {
            overwritten_.fetch_add(head - capacity_ - tail, std::memory_order_relaxed);
            tail = head - capacity_;
        }
        std::size_t n = static_cast<std::size_t>(head - tail);
        if (n > max) {
            n = max;
        }
        for (std::size_t i = 0; i < n; ++i) {
            out[i] = load(slots_[(tail + i) & mask_]);
        }
#if PYCROSCOPE_TSAN
        const std::uint64_t claimed = claimed_.fetch_add(0, std::memory_order_acq_rel);
#else
        std::atomic_thread_fence(std::memory_order_acquire);
        const std::uint64_t claimed = claimed_.load(std::memory_order_relaxed);
#endif
        // Slot tail+i is intact while no claim reached index tail+i+capacity.
        std::size_t first_valid = 0;
        if (claimed > tail + capacity_) {
            first_valid = static_cast<std::size_t>(claimed - capacity_ - tail);
            if (first_valid > n) {
                first_valid = n;
            }
        }
        if (first_valid > 0) {
            overwritten_.fetch_add(first_valid, std::memory_order_relaxed);
            for (std::size_t i = first_valid; i < n; ++i) {
                out[i - first_valid] = out[i];
            }
        }
        tail_.store(tail + n, std::memory_order_relaxed);
        return n - first_valid;
    }

    // Read-mostly configuration.
    std::unique_ptr<Slot[]> slots_;
    const std::uint64_t mask_;
    const std::uint64_t capacity_;
    const OverflowPolicy policy_;
    void (*waker_)(void*) = nullptr;
    void* waker_context_ = nullptr;

    // Producer-owned.
    alignas(detail::cache_line) std::uint64_t limit_;
    std::atomic<std::uint64_t> head_{0};
    std::atomic<std::uint64_t> claimed_{0};
    std::atomic<std::uint64_t> dropped_{0};

    // Consumer-owned.
    alignas(detail::cache_line) std::atomic<std::uint64_t> tail_{0};
    std::atomic<std::uint64_t> overwritten_{0};
    std::atomic<bool> closed_{false};
};

} // namespace pycroscope
