#pragma once
// Which sanitizer the tests run under. TSan slows threads unevenly (5-15x), so
// tests whose assertions are timings or time shares skip there: the plain and
// ASan builds check those numbers, and TSan checks the same code for races in
// every other test.

namespace pycroscope_test {

#if defined(__SANITIZE_THREAD__)
constexpr bool under_thread_sanitizer = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr bool under_thread_sanitizer = true;
#else
constexpr bool under_thread_sanitizer = false;
#endif
#else
constexpr bool under_thread_sanitizer = false;
#endif

#if defined(__SANITIZE_ADDRESS__)
constexpr bool under_address_sanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool under_address_sanitizer = true;
#else
constexpr bool under_address_sanitizer = false;
#endif
#else
constexpr bool under_address_sanitizer = false;
#endif

// The sampler's accuracy tests count samples of CPU time: ASan slows our
// instrumented code and not libpython, which moves the shares they measure
// against the script's own clocks, so they skip under either sanitizer.
constexpr bool under_sanitizer = under_thread_sanitizer || under_address_sanitizer;

} // namespace pycroscope_test
