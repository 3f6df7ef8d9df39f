#pragma once
// The hot path: turning one event into one ring-buffer slot on the calling
// thread. No lock, no allocation, no virtual call, no system call, except on a
// thread's first event of a session (attach) and when a full buffer blocks.

#include "pycroscope/core/clock.hpp"
#include "pycroscope/core/compiler.hpp"
#include "pycroscope/core/event.hpp"
#include "pycroscope/core/native_zone_state.hpp"
#include "pycroscope/core/source_location.hpp"
#include "pycroscope/core/thread_registry.hpp"

#include <atomic>
#include <cstdint>


namespace pycroscope {
namespace detail {

PYCROSCOPE_FORCE_INLINE bool push_event(std::uint64_t epoch, const Event& event) noexcept {
    ThreadBuffer* buffer = tls_slot.buffer;
    if (PYCROSCOPE_UNLIKELY(tls_slot.epoch != epoch)) {
        buffer = attach_current_thread(epoch);
        if (buffer == nullptr) {
            return false;
        }
    }
    return buffer->ring.push(event);
}

// All of events or none (RingBuffer::push_all): for groups read as a whole.
inline bool push_events(std::uint64_t epoch, const Event* events, std::size_t count) noexcept {
    ThreadBuffer* buffer = tls_slot.buffer;
    if (PYCROSCOPE_UNLIKELY(tls_slot.epoch != epoch)) {
        buffer = attach_current_thread(epoch);
        if (buffer == nullptr) {
            return false;
        }
    }
    return buffer->ring.push_all(events, count);
}

PYCROSCOPE_FORCE_INLINE Event make_event_at(std::uint64_t ticks, EventKind kind, const SourceLocation* location,
                                            std::uint64_t payload = 0, std::uint32_t aux = 0) noexcept {
    return Event{ticks, location_id(location), payload, aux, kind, 0, 0};
}

PYCROSCOPE_FORCE_INLINE Event make_event(EventKind kind, const SourceLocation* location, std::uint64_t payload = 0,
                                         std::uint32_t aux = 0) noexcept {
    return make_event_at(clock::now(), kind, location, payload, aux);
}

} // namespace detail

// Records an event for any collector (the Python layer uses this). Returns
// false when no session records or the event was lost (and counted).
PYCROSCOPE_FORCE_INLINE bool record(EventKind kind, const SourceLocation* location, std::uint64_t payload = 0,
                                    std::uint32_t aux = 0) noexcept {
    const std::uint64_t epoch = detail::session_epoch.load(std::memory_order_relaxed);
    if (PYCROSCOPE_LIKELY(epoch == 0)) {
        return false;
    }
    return detail::push_event(epoch, detail::make_event(kind, location, payload, aux));
}

// Native zone begin; returns the epoch to hand to end_zone(), or 0 when
// nothing was recorded (then end_zone() must not be called). position says
// where the zone sits on the thread's stack for a sampler (ZoneStack, kept
// only while a ZoneStackReader lives): 0
// takes an address in the caller's C frame (this is force-inlined), else a
// tagged Python frame identity.
PYCROSCOPE_FORCE_INLINE std::uint64_t begin_zone(const SourceLocation* location,
                                                 std::uintptr_t position = 0) noexcept {
#if PYCROSCOPE_HAS_RDTSC
    // No session: one load. The common recording case (the TSC, no stack
    // kept, the thread attached): one more compare.
    const std::uint64_t fast = detail::native_fast_epoch.load(std::memory_order_relaxed);
    if (PYCROSCOPE_LIKELY(fast == 0)) {
        return 0;
    }
    if (location != nullptr && PYCROSCOPE_LIKELY(detail::tls_slot.epoch == fast)) {
        return detail::tls_slot.buffer->ring.push(detail::make_event_at(__rdtsc(), EventKind::zone_begin, location))
                   ? fast
                   : 0;
    }
#endif
    const std::uint64_t epoch = detail::native_epoch.load(std::memory_order_relaxed);
    if (PYCROSCOPE_LIKELY(epoch == 0) || location == nullptr) {
        return 0;
    }
    ThreadBuffer* buffer = detail::tls_slot.buffer;
    if (PYCROSCOPE_UNLIKELY(detail::tls_slot.epoch != epoch)) {
        buffer = detail::attach_current_thread(epoch);
        if (buffer == nullptr) {
            return 0;
        }
    }
    if (!buffer->ring.push(detail::make_event(EventKind::zone_begin, location))) {
        return 0;
    }
    if (!zone_stacks_kept()) {
        return epoch;
    }
    if (position == 0) {
        // Taken only once recording: an escaping local on the fast path
        // would keep the caller from holding the Zone in registers.
        // Word-aligned: the low bit of a position tags Python frames.
        std::uintptr_t marker = 0;
        position = reinterpret_cast<std::uintptr_t>(&marker);
    }
    buffer->zones.push(location, position);
    return epoch;
}

// Skipped when the session changed since begin_zone(), so every recorded
// end has its begin in the same session.
PYCROSCOPE_FORCE_INLINE void end_zone(const SourceLocation* location, std::uint64_t epoch) noexcept {
#if PYCROSCOPE_HAS_RDTSC
    if (PYCROSCOPE_LIKELY(detail::native_fast_epoch.load(std::memory_order_relaxed) == epoch)) {
        const detail::ThreadSlot slot = detail::tls_slot;
        if (PYCROSCOPE_LIKELY(slot.epoch == epoch)) { // else the thread is exiting
            slot.buffer->ring.push(detail::make_event_at(__rdtsc(), EventKind::zone_end, location));
        }
        return;
    }
#endif
    if (PYCROSCOPE_UNLIKELY(detail::native_epoch.load(std::memory_order_relaxed) != epoch)) {
        return;
    }
    const detail::ThreadSlot slot = detail::tls_slot;
    if (PYCROSCOPE_UNLIKELY(slot.epoch != epoch)) {
        return; // the thread is exiting: its buffer is gone from the slot
    }
    if (zone_stacks_kept()) {
        slot.buffer->zones.pop(); // a zone begun before the reader came was not pushed: pop ignores it at depth 0
    }
    slot.buffer->ring.push(detail::make_event(EventKind::zone_end, location));
}

PYCROSCOPE_FORCE_INLINE void native_event(EventKind kind, const SourceLocation* location,
                                          std::uint64_t payload = 0) noexcept {
    const std::uint64_t epoch = detail::native_epoch.load(std::memory_order_relaxed);
    if (PYCROSCOPE_LIKELY(epoch == 0)) {
        return;
    }
    detail::push_event(epoch, detail::make_event(kind, location, payload));
}

// True while a session collects native zones: lets callers skip building
// dynamic names nobody will record.
inline bool native_zones_active() noexcept { return detail::native_epoch.load(std::memory_order_relaxed) != 0; }

} // namespace pycroscope
