#pragma once
// The fixed-size record every collector writes. 32 bytes, two per cache line,
// trivially copyable so that a ring-buffer slot is four machine words.
//
// Layout (little-endian words):
//   word 0  timestamp  raw clock ticks (see clock.hpp for the conversion)
//   word 1  id         const SourceLocation* for zones, marks, counters, Python code
//   word 2  payload    kind-specific: counter value (double bits), bytes, line, ...
//   word 3  aux (bits 32..63) | reserved (16..31) | flags (8..15) | kind (0..7)

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace pycroscope {

struct SourceLocation;

enum class EventKind : std::uint8_t {
    none = 0,
    zone_begin = 1,
    zone_end = 2,
    instant = 3,
    counter = 4,
    frame_mark = 5,
    // Python layer. A resume re-enters a generator or coroutine frame; it is
    // closed by py_return like a call.
    py_call = 16,
    py_return = 17,
    c_call = 18,
    c_return = 19,
    py_line = 20,
    py_exception = 21,
    py_resume = 22,
};

struct Event {
    std::uint64_t timestamp;
    std::uint64_t id;
    std::uint64_t payload;
    std::uint32_t aux;
    EventKind kind;
    std::uint8_t flags;
    std::uint16_t reserved;

    const SourceLocation* location() const noexcept {
        return reinterpret_cast<const SourceLocation*>(static_cast<std::uintptr_t>(id));
    }
    double value() const noexcept {
        double v;
        std::memcpy(&v, &payload, sizeof v);
        return v;
    }
};

static_assert(sizeof(Event) == 32, "Event must stay 32 bytes: two records per cache line");
static_assert(std::is_trivially_copyable<Event>::value, "Event is copied as raw words");

inline std::uint64_t location_id(const SourceLocation* location) noexcept {
    return static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(location));
}

inline std::uint64_t double_bits(double value) noexcept {
    std::uint64_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    return bits;
}

// Bits of Event::flags.
namespace event_flags {
// A span opened for a frame that was already running when recording began
// (stack sync): it nests and times like a call but is not counted as one.
constexpr std::uint8_t synthetic = 1;
// py_return: the frame exited by an exception. py_exception: the exception
// was handled in this frame.
constexpr std::uint8_t exception = 2;
} // namespace event_flags

// Events that open and close a span on their thread's stack.
constexpr bool opens_span(EventKind kind) noexcept {
    return kind == EventKind::zone_begin || kind == EventKind::py_call || kind == EventKind::c_call ||
           kind == EventKind::py_resume;
}
constexpr bool closes_span(EventKind kind) noexcept {
    return kind == EventKind::zone_end || kind == EventKind::py_return || kind == EventKind::c_return;
}

} // namespace pycroscope
