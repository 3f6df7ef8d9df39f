#pragma once
// The interface every sink implements, built-in or the host's own. All calls
// come from the session: open() and close() on the thread that starts and
// stops it, consume() on the drain thread. Never on a recording thread.
// Derive from sinks::BaseSink for locking and the sink_it_() style hooks.

#include "pycroscope/core/event.hpp"
#include "pycroscope/core/session_info.hpp"
#include "pycroscope/core/thread_info.hpp"

#include <cstddef>
#include <string>

namespace pycroscope {

class Sink {
public:
    virtual ~Sink() = default;

    // A short description for error messages, e.g. "chrome trace 'out/trace.json'".
    virtual std::string describe() const = 0;

    // The file this sink writes, if any: two sinks may not share one.
    virtual std::string output_path() const { return {}; }

    // Before recording starts. Throw ConfigError when the output cannot be
    // written, so the session fails before anything is profiled.
    virtual void open(const SessionInfo& info) = 0;

    // True: consume() gets each batch as recorded, before the EventProcessors
    // rewrite it in place (a capture, so that a replay can feed the same
    // processors). Asked once per start(). False: after them, as every
    // output that reports results.
    virtual bool consumes_recorded_events() const { return false; }

    // A run of consecutive events of one thread, in the order it recorded them.
    virtual void consume(const ThreadInfo& thread, const Event* events, std::size_t count) = 0;

    // After the last event: write the output and commit it (atomic rename).
    virtual void close(const SessionSummary& summary) = 0;

    // The session failed or the sink failed: discard partial output. Must not throw.
    virtual void abort() noexcept = 0;
};

} // namespace pycroscope
