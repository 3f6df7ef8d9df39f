#pragma once
// Base for sinks, in the spdlog manner: the base owns the lock, a derived sink
// implements the underscore hooks and never locks itself. The lock lets a host
// read a sink's state from its own thread while the drain thread writes to it.

#include "pycroscope/core/sink.hpp"

#include <mutex>

namespace pycroscope {
namespace sinks {

struct NullMutex {
    void lock() noexcept {}
    void unlock() noexcept {}
};

template <class Mutex>
class BaseSink : public Sink {
public:
    void open(const SessionInfo& info) final {
        std::lock_guard<Mutex> lock(mutex_);
        open_(info);
    }
    void consume(const ThreadInfo& thread, const Event* events, std::size_t count) final {
        std::lock_guard<Mutex> lock(mutex_);
        sink_it_(thread, events, count);
    }
    void close(const SessionSummary& summary) final {
        std::lock_guard<Mutex> lock(mutex_);
        close_(summary);
    }
    void abort() noexcept final {
        std::lock_guard<Mutex> lock(mutex_);
        abort_();
    }

    // Runs f under the sink's lock.
    template <class F>
    auto with_lock(F&& f) {
        std::lock_guard<Mutex> lock(mutex_);
        return f();
    }

protected:
    virtual void open_(const SessionInfo&) {}
    virtual void sink_it_(const ThreadInfo& thread, const Event* events, std::size_t count) = 0;
    virtual void close_(const SessionSummary&) {}
    virtual void abort_() noexcept {}

    Mutex mutex_;
};

using BaseSinkMt = BaseSink<std::mutex>;
using BaseSinkSt = BaseSink<NullMutex>;

} // namespace sinks
} // namespace pycroscope
