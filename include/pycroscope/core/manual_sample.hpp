#pragma once
// add_sample(): a stack sample given by the caller (the seeds' manual
// sampling API), for stacks Pycroscope cannot walk itself: a script engine,
// a job system, a replayed trace.
//
//     pycroscope::add_sample({{"main", "app.cpp", 10}, {"update", "app.cpp", 42}});
//
// Recorded on the calling thread like the sampler's samples (core/event.hpp):
// one `sample` flagged manual (and running), then the frames outermost first,
// each interned once as a LocationKind::other location (name, file, line).
// Records while any session records; costs a branch otherwise.

#include "pycroscope/core/clock.hpp"
#include "pycroscope/core/event.hpp"
#include "pycroscope/core/name_table.hpp"
#include "pycroscope/core/recorder.hpp"
#include "pycroscope/core/thread_registry.hpp"

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string_view>
#include <vector>

namespace pycroscope {

struct SampleFrame {
    std::string_view name;
    std::string_view file;
    std::uint32_t line = 0;
};

namespace detail {

// Per-thread direct-mapped cache: a repeated frame finds its location
// without the name table's lock.
struct SampleFrameCache {
    const SourceLocation* entries[256];
};
inline thread_local SampleFrameCache tls_sample_frames{};

inline const SourceLocation* intern_sample_frame(const SampleFrame& frame) {
    const std::uint64_t hash = fnv1a(frame.file, fnv1a(frame.name, frame.line));
    const SourceLocation*& entry = tls_sample_frames.entries[hash & 255];
    if (entry != nullptr && entry->line == frame.line && frame.name == entry->name && frame.file == entry->file) {
        return entry;
    }
    entry = names().intern(LocationKind::other, frame.name, frame.name, frame.file, frame.line);
    return entry;
}

// The calling thread's name as a location (set_thread_name()), or null.
inline const SourceLocation* sample_thread_name() {
    static thread_local const SourceLocation* cached = nullptr;
    if (tls_thread_name[0] == '\0') {
        return nullptr;
    }
    if (cached == nullptr || std::strcmp(cached->name, tls_thread_name) != 0) {
        cached = names().intern(LocationKind::other, tls_thread_name, tls_thread_name, "<thread>", 0);
    }
    return cached;
}

} // namespace detail

// Records one sample of the calling thread: frames[0] is the outermost.
// Returns false when no session records or an event was lost (counted).
// Throws std::bad_alloc only when interning a new name runs out of memory.
inline bool add_sample(const SampleFrame* frames, std::size_t count, bool running = true) {
    const std::uint64_t epoch = detail::session_epoch.load(std::memory_order_relaxed);
    if (epoch == 0) {
        return false;
    }
    // Intern first: the events then go out back to back.
    constexpr std::size_t inline_frames = 64;
    const SourceLocation* inline_locations[inline_frames];
    std::vector<const SourceLocation*> more;
    const SourceLocation** locations = inline_locations;
    if (count > inline_frames) {
        more.resize(count);
        locations = more.data();
    }
    for (std::size_t i = 0; i < count; ++i) {
        locations[i] = detail::intern_sample_frame(frames[i]);
    }
    const std::uint64_t now = clock::now();
    const auto flags = static_cast<std::uint8_t>(sample_flags::manual | (running ? sample_flags::running : 0));
    static thread_local const std::uint64_t os_tid = detail::current_os_tid();
    const Event header{now, os_tid, location_id(detail::sample_thread_name()), static_cast<std::uint32_t>(count),
                       EventKind::sample, flags, 0};
    if (count < inline_frames) {
        Event events[inline_frames];
        events[0] = header;
        for (std::size_t i = 0; i < count; ++i) {
            events[i + 1] = Event{now, location_id(locations[i]), frames[i].line, static_cast<std::uint32_t>(i),
                                  EventKind::sample_frame, 0, 0};
        }
        return detail::push_events(epoch, events, count + 1);
    }
    std::vector<Event> events;
    events.reserve(count + 1);
    events.push_back(header);
    for (std::size_t i = 0; i < count; ++i) {
        events.push_back(Event{now, location_id(locations[i]), frames[i].line, static_cast<std::uint32_t>(i),
                               EventKind::sample_frame, 0, 0});
    }
    return detail::push_events(epoch, events.data(), events.size());
}

inline bool add_sample(std::initializer_list<SampleFrame> frames, bool running = true) {
    return add_sample(frames.begin(), frames.size(), running);
}

inline bool add_sample(const std::vector<SampleFrame>& frames, bool running = true) {
    return add_sample(frames.data(), frames.size(), running);
}

} // namespace pycroscope
