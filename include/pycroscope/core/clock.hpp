#pragma once
// Timestamps for the hot path. On x86-64 with an invariant TSC (constant rate,
// not stopped in deep C-states) one rdtsc is the cheapest monotonic clock there
// is; it is calibrated once against steady_clock. Elsewhere, or when asked to,
// ticks are steady_clock nanoseconds and the calibration is the identity.

#include "pycroscope/core/compiler.hpp"
#include "pycroscope/core/config.hpp"
#include "pycroscope/core/error.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(_M_X64)
#define PYCROSCOPE_HAS_RDTSC 1
#include <cpuid.h>
#include <x86intrin.h>
#else
#define PYCROSCOPE_HAS_RDTSC 0
#endif

namespace pycroscope {
namespace clock {

enum class Source : std::uint8_t { tsc, steady };

inline const char* to_string(Source source) noexcept { return source == Source::tsc ? "tsc" : "steady_clock"; }

// Maps raw ticks to nanoseconds on the steady_clock time line.
struct Calibration {
    Source source = Source::steady;
    double ns_per_tick = 1.0;
    std::uint64_t tick_origin = 0;
    std::int64_t ns_origin = 0; // steady_clock ns at tick_origin

    std::int64_t to_ns(std::uint64_t ticks) const noexcept {
        const double delta = static_cast<double>(static_cast<std::int64_t>(ticks - tick_origin));
        return ns_origin + static_cast<std::int64_t>(delta * ns_per_tick);
    }
    double ticks_to_ns(std::uint64_t ticks) const noexcept { return static_cast<double>(ticks) * ns_per_tick; }
};

inline std::int64_t steady_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// CPUID leaf 0x80000007, EDX bit 8: "TscInvariant".
inline bool invariant_tsc_available() noexcept {
#if PYCROSCOPE_HAS_RDTSC
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid(0x80000000u, &eax, &ebx, &ecx, &edx) == 0 || eax < 0x80000007u) {
        return false;
    }
    if (__get_cpuid(0x80000007u, &eax, &ebx, &ecx, &edx) == 0) {
        return false;
    }
    return (edx & (1u << 8)) != 0;
#else
    return false;
#endif
}

namespace detail {
inline std::atomic<bool> use_tsc{false};

#if PYCROSCOPE_HAS_RDTSC
// One (tsc, steady) pair, taken between two steady reads; the narrowest of a
// few tries keeps a preemption from skewing the calibration.
inline void read_pair(std::uint64_t& tsc, std::int64_t& ns) noexcept {
    std::int64_t best_window = INT64_MAX;
    for (int attempt = 0; attempt < 16; ++attempt) {
        const std::int64_t before = steady_ns();
        const std::uint64_t ticks = __rdtsc();
        const std::int64_t after = steady_ns();
        if (after - before < best_window) {
            best_window = after - before;
            tsc = ticks;
            ns = before + (after - before) / 2;
        }
    }
}

inline Calibration measure_tsc() noexcept {
    Calibration c;
    c.source = Source::tsc;
    std::uint64_t tsc0 = 0, tsc1 = 0;
    std::int64_t ns0 = 0, ns1 = 0;
    read_pair(tsc0, ns0);
    // Each pair is pinned to within a few tens of ns (the narrowest read
    // window), so 2 ms gives an error of a few 1e-5: far below what a profile
    // can see, and every profiled process pays the spin once at start.
    const std::int64_t deadline = ns0 + 2'000'000;
    while (steady_ns() < deadline) {
    }
    read_pair(tsc1, ns1);
    c.ns_per_tick = static_cast<double>(ns1 - ns0) / static_cast<double>(tsc1 - tsc0);
    c.tick_origin = tsc0;
    c.ns_origin = ns0;
    return c;
}
#endif
} // namespace detail

// The TSC calibration, measured once per process on first use.
inline const Calibration& tsc_calibration() {
#if PYCROSCOPE_HAS_RDTSC
    static const Calibration calibration = detail::measure_tsc();
    return calibration;
#else
    throw ConfigError("clock 'tsc' requested but this CPU architecture has no rdtsc");
#endif
}

inline Calibration steady_calibration() noexcept { return Calibration{}; }

// Chooses the clock for the next session and returns its calibration. The
// environment variable PYCROSCOPE_CLOCK=steady|tsc overrides ClockSource::automatic.
inline Calibration select(ClockSource wanted) {
    if (wanted == ClockSource::automatic) {
        if (const char* env = std::getenv("PYCROSCOPE_CLOCK")) {
            if (std::strcmp(env, "steady") == 0) {
                wanted = ClockSource::steady;
            } else if (std::strcmp(env, "tsc") == 0) {
                wanted = ClockSource::tsc;
            } else if (env[0] != '\0' && std::strcmp(env, "auto") != 0) {
                throw ConfigError(std::string("PYCROSCOPE_CLOCK must be 'auto', 'tsc' or 'steady', got '") + env +
                                  "'");
            }
        }
    }
    const bool tsc_ok = invariant_tsc_available();
    if (wanted == ClockSource::tsc && !tsc_ok) {
        throw ConfigError("clock 'tsc' requested but the CPU reports no invariant TSC; use ClockSource::automatic");
    }
    if (wanted != ClockSource::steady && tsc_ok) {
        Calibration c = tsc_calibration();
        detail::use_tsc.store(true, std::memory_order_relaxed);
        return c;
    }
    detail::use_tsc.store(false, std::memory_order_relaxed);
    return steady_calibration();
}

// The hot-path clock: raw ticks of the selected source.
PYCROSCOPE_FORCE_INLINE std::uint64_t now() noexcept {
#if PYCROSCOPE_HAS_RDTSC
    if (detail::use_tsc.load(std::memory_order_relaxed)) {
        return __rdtsc();
    }
#endif
    return static_cast<std::uint64_t>(steady_ns());
}

} // namespace clock
} // namespace pycroscope
