#pragma once
// Native instrumentation: RAII zones, instant marks, counters and frame marks,
// and the PYCRO_* macros. Each macro site owns one static SourceLocation, so
// a recorded event is a timestamp and a pointer.
//
// Define PYCROSCOPE_ENABLED=0 to compile every macro to nothing.

#include "pycroscope/core/name_table.hpp"
#include "pycroscope/core/recorder.hpp"

#include <string_view>

#ifndef PYCROSCOPE_ENABLED
#define PYCROSCOPE_ENABLED 1
#endif

namespace pycroscope {

// A span on the calling thread from construction to destruction.
class Zone {
public:
    // begin_zone() marks the zone's place on the C stack (ZoneStack).
    PYCROSCOPE_FORCE_INLINE explicit Zone(const SourceLocation* location) noexcept
        : location_(location), epoch_(begin_zone(location)) {}
    PYCROSCOPE_FORCE_INLINE ~Zone() {
        if (epoch_ != 0) {
            end_zone(location_, epoch_);
        }
    }
    Zone(const Zone&) = delete;
    Zone& operator=(const Zone&) = delete;

    bool recording() const noexcept { return epoch_ != 0; }

private:
    const SourceLocation* location_;
    std::uint64_t epoch_;
};

inline void mark(const SourceLocation* location) noexcept { native_event(EventKind::instant, location); }

inline void counter(const SourceLocation* location, double value) noexcept {
    native_event(EventKind::counter, location, double_bits(value));
}

inline void frame_mark(const SourceLocation* location) noexcept { native_event(EventKind::frame_mark, location); }

// Run-time named variants. The name is interned on first use (a lock), then
// found in a per-thread cache; prefer the macros for fixed names.
inline void mark(std::string_view name) {
    if (native_zones_active()) {
        mark(names().intern(LocationKind::mark, name));
    }
}

inline void counter(std::string_view name, double value) {
    if (native_zones_active()) {
        counter(names().intern(LocationKind::counter, name), value);
    }
}

namespace detail {
inline const SourceLocation* default_frame_location() noexcept {
    static constexpr SourceLocation location{"frame", "frame", "", 0, LocationKind::frame};
    return &location;
}
} // namespace detail

} // namespace pycroscope

#define PYCROSCOPE_CONCAT_INNER(a, b) a##b
#define PYCROSCOPE_CONCAT(a, b) PYCROSCOPE_CONCAT_INNER(a, b)
#define PYCROSCOPE_UNIQUE(prefix) PYCROSCOPE_CONCAT(prefix, __LINE__)

#if PYCROSCOPE_ENABLED

#define PYCROSCOPE_STATIC_LOCATION(var, name, kind)                                                                \
    static constexpr ::pycroscope::SourceLocation var { name, __func__, __FILE__, static_cast<std::uint32_t>(__LINE__), kind }

// A zone named after the enclosing function.
#define PYCRO_SCOPE()                                                                                              \
    PYCROSCOPE_STATIC_LOCATION(PYCROSCOPE_UNIQUE(pycroscope_location_), nullptr,                                  \
                               ::pycroscope::LocationKind::native_zone);                                          \
    ::pycroscope::Zone PYCROSCOPE_UNIQUE(pycroscope_zone_) { &PYCROSCOPE_UNIQUE(pycroscope_location_) }

// A zone with a fixed name (a string literal).
#define PYCRO_SCOPE_N(name)                                                                                        \
    PYCROSCOPE_STATIC_LOCATION(PYCROSCOPE_UNIQUE(pycroscope_location_), name,                                     \
                               ::pycroscope::LocationKind::native_zone);                                          \
    ::pycroscope::Zone PYCROSCOPE_UNIQUE(pycroscope_zone_) { &PYCROSCOPE_UNIQUE(pycroscope_location_) }

// A zone named at run time (anything convertible to std::string_view). The
// name expression is evaluated only while a session records.
#define PYCRO_SCOPE_DYN(name_expr)                                                                                 \
    PYCROSCOPE_STATIC_LOCATION(PYCROSCOPE_UNIQUE(pycroscope_location_), "<dynamic>",                              \
                               ::pycroscope::LocationKind::dynamic_zone);                                         \
    ::pycroscope::Zone PYCROSCOPE_UNIQUE(pycroscope_zone_) {                                                       \
        ::pycroscope::native_zones_active()                                                                        \
            ? ::pycroscope::intern_zone_name(&PYCROSCOPE_UNIQUE(pycroscope_location_), (name_expr))               \
            : nullptr                                                                                              \
    }

#define PYCRO_MARK(name)                                                                                           \
    do {                                                                                                           \
        PYCROSCOPE_STATIC_LOCATION(pycroscope_mark_location, name, ::pycroscope::LocationKind::mark);             \
        ::pycroscope::mark(&pycroscope_mark_location);                                                             \
    } while (false)

// The value expression is evaluated only while a session records.
#define PYCRO_COUNTER(name, value)                                                                                 \
    do {                                                                                                           \
        PYCROSCOPE_STATIC_LOCATION(pycroscope_counter_location, name, ::pycroscope::LocationKind::counter);       \
        if (::pycroscope::native_zones_active()) {                                                                 \
            ::pycroscope::counter(&pycroscope_counter_location, static_cast<double>(value));                      \
        }                                                                                                          \
    } while (false)

// End of a frame for frame-based hosts (games, DCC viewports).
#define PYCRO_FRAME_MARK() ::pycroscope::frame_mark(::pycroscope::detail::default_frame_location())

// A secondary frame set with its own name.
#define PYCRO_FRAME_MARK_N(name)                                                                                   \
    do {                                                                                                           \
        PYCROSCOPE_STATIC_LOCATION(pycroscope_frame_location, name, ::pycroscope::LocationKind::frame);           \
        ::pycroscope::frame_mark(&pycroscope_frame_location);                                                      \
    } while (false)

#else

// Arguments go into an unevaluated sizeof: nothing runs, and variables used
// only in macros do not turn into unused-variable warnings.
#define PYCRO_SCOPE() static_cast<void>(0)
#define PYCRO_SCOPE_N(name) static_cast<void>(sizeof(name))
#define PYCRO_SCOPE_DYN(name_expr) static_cast<void>(sizeof(name_expr))
#define PYCRO_MARK(name) static_cast<void>(sizeof(name))
#define PYCRO_COUNTER(name, value) static_cast<void>(sizeof(name) + sizeof(value))
#define PYCRO_FRAME_MARK() static_cast<void>(0)
#define PYCRO_FRAME_MARK_N(name) static_cast<void>(sizeof(name))

#endif
