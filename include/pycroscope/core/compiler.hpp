#pragma once
// Compiler hints for the hot path.

#if defined(__GNUC__) || defined(__clang__)
#define PYCROSCOPE_LIKELY(x) __builtin_expect(!!(x), 1)
#define PYCROSCOPE_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define PYCROSCOPE_FORCE_INLINE inline __attribute__((always_inline))
#define PYCROSCOPE_NOINLINE __attribute__((noinline))
#else
#define PYCROSCOPE_LIKELY(x) (x)
#define PYCROSCOPE_UNLIKELY(x) (x)
#define PYCROSCOPE_FORCE_INLINE inline
#define PYCROSCOPE_NOINLINE
#endif
