#pragma once
// The session a collector's hooks record into: its epoch while the collector
// runs, 0 otherwise. A hook loads it once per event and passes it to
// push_event(), so a hook racing with stop() records into the session it
// started with or not at all. A forked child records nothing (fork_child.hpp).
// One per collector, named by a tag type, so each hook reads its own word.
#include "pycroscope/core/fork_child.hpp"

#include <atomic>
#include <cstdint>

namespace pycroscope {

template <class Tag>
class RecordingEpoch {
public:
    static std::uint64_t load() noexcept { return value_.load(std::memory_order_relaxed); }
    static void begin(std::uint64_t epoch) {
        forget_in_forked_child<&end>();
        value_.store(epoch, std::memory_order_relaxed);
    }
    static void end() noexcept { value_.store(0, std::memory_order_relaxed); }

private:
    static inline std::atomic<std::uint64_t> value_{0};
};

} // namespace pycroscope
