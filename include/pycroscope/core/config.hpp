#pragma once
// Session configuration. Validated in full by Session::start() before anything
// is installed, so a bad value never costs a partly recorded run.

#include "pycroscope/core/error.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace pycroscope {

// What a thread's ring buffer does when the drain thread falls behind.
enum class OverflowPolicy : std::uint8_t {
    block,            // lossless: the producer waits for room
    drop_newest,      // the new event is discarded and counted
    overwrite_oldest, // flight recorder: the oldest unread events are overwritten and counted
};

inline const char* to_string(OverflowPolicy policy) noexcept {
    switch (policy) {
    case OverflowPolicy::block: return "block";
    case OverflowPolicy::drop_newest: return "drop_newest";
    case OverflowPolicy::overwrite_oldest: return "overwrite_oldest";
    }
    return "unknown";
}

enum class ClockSource : std::uint8_t {
    automatic, // invariant TSC when the CPU has one, otherwise steady_clock
    tsc,       // require an invariant TSC; start() fails without one
    steady,    // std::chrono::steady_clock
};

struct Config {
    // Events per thread buffer. Rounded up to a power of two; the buffer uses
    // capacity * 32 bytes, and that is all the memory a thread ever gets.
    std::size_t buffer_capacity = std::size_t{1} << 16;
    OverflowPolicy overflow = OverflowPolicy::block;
    // Write each thread buffer's memory when the thread attaches, so that its
    // first pass through the buffer takes no page faults. Unset, those faults
    // land inside whatever span is open at the time (one per 128 events, and
    // on a virtual machine a first touch can cost tens of microseconds); set,
    // each thread commits its whole buffer at its first event, in that
    // event's span. For measurements where the first events' timing matters.
    bool prefault_buffers = false;
    // The longest the drain thread sleeps between passes (it sleeps less
    // while a buffer fills fast): the delay before a streaming sink sees an event.
    std::chrono::microseconds drain_interval{1000};
    ClockSource clock = ClockSource::automatic;
    std::string process_name = "pycroscope";
    // Free-form key/value pairs copied into every sink's output.
    std::vector<std::pair<std::string, std::string>> metadata;

    static constexpr std::size_t max_buffer_capacity = std::size_t{1} << 26;

    // Throws ConfigError naming the field, the value and the accepted range.
    void validate() const {
        if (buffer_capacity < 2) {
            throw ConfigError("buffer_capacity must be at least 2 events, got " + std::to_string(buffer_capacity));
        }
        if (buffer_capacity > max_buffer_capacity) {
            throw ConfigError("buffer_capacity must be at most " + std::to_string(max_buffer_capacity) +
                              " events per thread, got " + std::to_string(buffer_capacity));
        }
        if (drain_interval.count() <= 0 || drain_interval > std::chrono::seconds(1)) {
            throw ConfigError("drain_interval must be between 1us and 1s, got " +
                              std::to_string(drain_interval.count()) + "us");
        }
        if (process_name.empty()) {
            throw ConfigError("process_name must not be empty");
        }
        static const char* const reserved[] = {"producer", "duration_ns", "events_total", "lost_events", "clock"};
        for (std::size_t i = 0; i < metadata.size(); ++i) {
            const std::string& key = metadata[i].first;
            if (key.empty()) {
                throw ConfigError("metadata keys must not be empty");
            }
            for (const char* word : reserved) {
                if (key == word) {
                    throw ConfigError("metadata key '" + key + "' is reserved for Pycroscope's own trace metadata");
                }
            }
            for (std::size_t j = 0; j < i; ++j) {
                if (metadata[j].first == key) {
                    throw ConfigError("metadata key '" + key + "' appears twice");
                }
            }
        }
    }

    std::size_t effective_capacity() const noexcept {
        std::size_t capacity = 1;
        while (capacity < buffer_capacity) {
            capacity <<= 1;
        }
        return capacity;
    }
};

} // namespace pycroscope
