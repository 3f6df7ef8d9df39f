#pragma once
// Test helper: stack samples as the sampler writes them (a `sample` header
// followed by its `sample_frame` events, see core/event.hpp), built as event
// lists for synthetic streams or recorded into the running session from the
// calling thread's ring.

#include <pycroscope/core/event.hpp>
#include <pycroscope/core/recorder.hpp>
#include <pycroscope/core/source_location.hpp>
#include <pycroscope/core/thread_registry.hpp>

#include <cstdint>
#include <initializer_list>
#include <vector>

namespace sample_test {

struct Frame {
    const pycroscope::SourceLocation* location;
    std::uint32_t line = 0;
};

inline std::vector<pycroscope::Event> sample_events(std::uint64_t timestamp, std::uint64_t os_tid,
                                                    const pycroscope::SourceLocation* thread_name, std::uint8_t flags,
                                                    const std::vector<Frame>& frames) {
    std::vector<pycroscope::Event> events;
    events.push_back(pycroscope::Event{timestamp, os_tid, pycroscope::location_id(thread_name),
                                       static_cast<std::uint32_t>(frames.size()), pycroscope::EventKind::sample,
                                       flags, 0});
    for (std::size_t i = 0; i < frames.size(); ++i) {
        events.push_back(pycroscope::Event{timestamp, pycroscope::location_id(frames[i].location), frames[i].line,
                                           static_cast<std::uint32_t>(i), pycroscope::EventKind::sample_frame, 0,
                                           0});
    }
    return events;
}

// Appends a sample to a list.
inline void append_sample(std::vector<pycroscope::Event>& out, std::uint64_t timestamp, std::uint64_t os_tid,
                          const pycroscope::SourceLocation* thread_name, std::uint8_t flags,
                          const std::vector<Frame>& frames) {
    const auto events = sample_events(timestamp, os_tid, thread_name, flags, frames);
    out.insert(out.end(), events.begin(), events.end());
}

// Records a sample into the running session's ring of the calling thread,
// the way add_sample() does. False when no session records.
inline bool record_sample(std::uint64_t timestamp, std::uint64_t os_tid, const pycroscope::SourceLocation* thread_name,
                          std::uint8_t flags, const std::vector<Frame>& frames) {
    const std::uint64_t epoch = pycroscope::detail::session_epoch.load(std::memory_order_relaxed);
    if (epoch == 0) {
        return false;
    }
    bool all = true;
    for (const auto& e : sample_events(timestamp, os_tid, thread_name, flags, frames)) {
        all = pycroscope::detail::push_event(epoch, e) && all;
    }
    return all;
}

} // namespace sample_test
