#pragma once
// A drain-side stage that runs on every batch BEFORE the sinks and may
// rewrite its events in place, so that the sinks can stay stateless (the
// memory model, for example, writes the freed size into each mem_free).
// Called like a sink (open/close on the thread that starts and stops the
// session, process() on the drain thread), never on a recording thread.
// close() runs before any sink closes, so sink sections may read its results.

#include "pycroscope/core/event.hpp"
#include "pycroscope/core/session_info.hpp"
#include "pycroscope/core/thread_info.hpp"

#include <cstddef>
#include <string>

namespace pycroscope {

class EventProcessor {
public:
    virtual ~EventProcessor() = default;

    // For error messages.
    virtual std::string describe() const = 0;

    // Before recording starts.
    virtual void open(const SessionInfo& info) = 0;

    // A run of consecutive events of one thread, in recording order. May
    // rewrite them; must keep their number and order.
    virtual void process(const ThreadInfo& thread, Event* events, std::size_t count) = 0;

    // After the last event, before the sinks close.
    virtual void close(const SessionSummary& summary) = 0;
};

} // namespace pycroscope
