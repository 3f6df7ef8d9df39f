#pragma once
// fork() keeps only the forking thread: the drain thread, the sampler and
// every other thread of the session are gone in the child. Each part of the
// session that records or owns a thread registers one function that makes the
// child forget it; this is the one place that talks to pthread_atfork.
#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#endif

namespace pycroscope {

// Runs Forget in every child forked after the first call; later calls with
// the same function register nothing more.
template <void (*Forget)() noexcept>
void forget_in_forked_child() {
#if defined(__unix__) || defined(__APPLE__)
    static const bool registered = (::pthread_atfork(nullptr, nullptr, Forget), true);
    (void)registered;
#endif
}

} // namespace pycroscope
