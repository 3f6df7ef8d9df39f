#pragma once
// The fixed-size record every collector writes. 32 bytes, two per cache line,
// trivially copyable so that a ring-buffer slot is four machine words.
//
// Layout (little-endian words):
//   word 0  timestamp  raw clock ticks (see clock.hpp for the conversion)
//   word 1  id         const SourceLocation* for zones, marks, counters, Python code
//   word 2  payload    kind-specific: counter value (double bits), bytes, line, ...
//   word 3  aux (bits 32..63) | aux_high (16..31) | flags (8..15) | kind (0..7)

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
    // 32-39: memory (python/memory_collector.hpp); layout in memory_flags below.
    mem_alloc = 32,
    mem_free = 33,
    // 40-55: GC, imports, I/O, exceptions (python resource collectors).
    // A GC collection is a zone_begin/zone_end span whose location has kind
    // gc_collection (line = generation); its zone_end carries collected in
    // payload and uncollectable in aux. An import is a zone span of kind
    // python_import. See python/gc_collector.hpp and import_collector.hpp.
    // io_call: an audit event of an I/O operation (python/io_collector.hpp):
    // id = io_site location (name = operation, at the calling Python line),
    // payload = bytes, or io_bytes_unknown.
    io_call = 40,
    // exception_info: follows a py_exception that is a raise or a propagation
    // (python/exception_collector.hpp): id = exception_type location of the
    // exception's type, payload = identity (address) of the exception object.
    exception_info = 41,
    // 64-71: sampling (python/sampler.hpp). A sample is followed by `aux`
    // sample_frame events, outermost first; id is the sampled thread's os_tid.
    // A sample_frame's aux is its index in the sample (0: outermost), so a
    // reader can tell a sample with a frame lost in the middle.
    sample = 64,
    sample_frame = 65,
};

struct Event {
    std::uint64_t timestamp;
    std::uint64_t id;
    std::uint64_t payload;
    std::uint32_t aux;
    EventKind kind;
    std::uint8_t flags;
    std::uint16_t aux_high; // bits 32..47 of a 48-bit aux (memory events' bytes)

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
// py_call of a function watched for complexity (python/runtime/
// watched_functions.hpp): payload is the size of its first sized argument,
// or ~0 when it had none.
constexpr std::uint8_t watched = 4;
} // namespace event_flags

// Bits of Event::flags on EventKind::sample.
namespace sample_flags {
constexpr std::uint8_t running = 1; // holding the GIL or on CPU; clear: idle or waiting
constexpr std::uint8_t manual = 2;  // recorded by add_sample()
} // namespace sample_flags

// Memory events (python/memory_hooks.hpp records them, analysis/memory_model.hpp
// rewrites every mem_free before the sinks see it):
//   mem_alloc  id = site (a LocationKind::python_line SourceLocation*, or null),
//              payload = block address, aux | aux_high << 32 = bytes (48 bits;
//              in sampling mode the bytes the sample stands for),
//              flags = domain (memory_flags::domain_mask) | sampled | born_freed.
//   mem_free   as recorded: id = 0, payload = block address, flags = domain.
//              After the model: id = the allocation's site, payload = lifetime
//              in ticks, bytes = the freed block's bytes, flags |= known; a
//              free of a block allocated before tracking began gets unknown
//              (and bytes 0): sinks ignore it.
namespace memory_flags {
constexpr std::uint8_t domain_mask = 3; // 0 raw, 1 mem, 2 obj (PyMemAllocatorDomain order)
constexpr std::uint8_t sampled = 4;     // mem_alloc recorded by the sampling mode
constexpr std::uint8_t born_freed = 8;  // mem_alloc whose free was drained first (other thread): never live
constexpr std::uint8_t known = 16;      // mem_free matched to its allocation
constexpr std::uint8_t unknown = 32;    // mem_free of a block allocated before tracking began
} // namespace memory_flags

constexpr std::uint64_t max_memory_event_bytes = (std::uint64_t{1} << 48) - 1;

inline std::uint64_t memory_bytes(const Event& event) noexcept {
    return static_cast<std::uint64_t>(event.aux) | (static_cast<std::uint64_t>(event.aux_high) << 32);
}
inline void set_memory_bytes(Event& event, std::uint64_t bytes) noexcept {
    if (bytes > max_memory_event_bytes) {
        bytes = max_memory_event_bytes;
    }
    event.aux = static_cast<std::uint32_t>(bytes);
    event.aux_high = static_cast<std::uint16_t>(bytes >> 32);
}
constexpr bool is_memory_event(EventKind kind) noexcept {
    return kind == EventKind::mem_alloc || kind == EventKind::mem_free;
}

// Events that open and close a span on their thread's stack.
constexpr bool opens_span(EventKind kind) noexcept {
    return kind == EventKind::zone_begin || kind == EventKind::py_call || kind == EventKind::c_call ||
           kind == EventKind::py_resume;
}
constexpr bool closes_span(EventKind kind) noexcept {
    return kind == EventKind::zone_end || kind == EventKind::py_return || kind == EventKind::c_return;
}

} // namespace pycroscope
