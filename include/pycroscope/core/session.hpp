#pragma once
// A profiling session, composed by the host from collectors:
//
//     pycroscope::Session<pycroscope::NativeZones> session(config);
//     session.add_sink(std::make_shared<pycroscope::sinks::ChromeTraceSink>("trace.json"));
//     session.start();
//     ...
//     auto summary = session.stop();
//
// A collector is any default-constructible type with
//     static constexpr const char* name;
//     void start(SessionCore&);   // install hooks; may throw to refuse
//     void stop(SessionCore&);    // uninstall; must not throw
// Collectors start in order after the sinks are open and stop in reverse
// before the final drain.

#include "pycroscope/core/recorder.hpp"
#include "pycroscope/core/session_core.hpp"

#include <memory>
#include <string>
#include <initializer_list>
#include <tuple>
#include <utility>
#include <vector>

namespace pycroscope {

// Native C++ instrumentation: PYCRO_SCOPE zones, marks, counters, frame marks.
struct NativeZones {
    static constexpr const char* name = "native_zones";
    void start(SessionCore& core) { detail::set_native_epoch(core.epoch()); }
    void stop(SessionCore&) noexcept { detail::set_native_epoch(0); }
};

template <class... Collectors>
class Session {
public:
    explicit Session(Config config = {}) : core_(std::move(config)) {}
    ~Session() {
        try {
            stop();
        } catch (...) {
            // Sink errors are kept in summary().errors.
        }
    }
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    template <class SinkType, class... Args>
    std::shared_ptr<SinkType> add_sink(Args&&... args) {
        auto sink = std::make_shared<SinkType>(std::forward<Args>(args)...);
        core_.add_sink(sink);
        return sink;
    }
    void add_sink(std::shared_ptr<Sink> sink) { core_.add_sink(std::move(sink)); }

    // The collectors SessionInfo (and session.json) lists: by default every
    // collector of the type; a host that turns some off by option names those that run.
    void set_collector_names(std::vector<std::string> names) { collector_names_ = std::move(names); }

    // Starting a running session does nothing.
    void start() {
        if (core_.running()) {
            return;
        }
        core_.start(collector_names_.empty() ? std::vector<std::string>{Collectors::name...} : collector_names_);
        started_ = 0;
        try {
            start_collectors(std::index_sequence_for<Collectors...>{});
        } catch (...) {
            stop_collectors(std::index_sequence_for<Collectors...>{});
            core_.abort();
            throw;
        }
    }

    // Stopping a stopped session returns the last summary.
    SessionSummary stop() {
        if (!core_.running()) {
            return core_.last_summary();
        }
        stop_collectors(std::index_sequence_for<Collectors...>{});
        return core_.stop();
    }

    bool running() const noexcept { return core_.running(); }
    const SessionSummary& summary() const noexcept { return core_.last_summary(); }
    SessionCore& core() noexcept { return core_; }

    template <class Collector>
    Collector& collector() noexcept {
        return std::get<Collector>(collectors_);
    }

private:
    template <std::size_t... I>
    void start_collectors(std::index_sequence<I...>) {
        // Left-to-right; started_ lets a failure stop only what started.
        (void)std::initializer_list<int>{(std::get<I>(collectors_).start(core_), ++started_, 0)...};
    }

    template <std::size_t... I>
    void stop_collectors(std::index_sequence<I...>) noexcept {
        constexpr std::size_t count = sizeof...(Collectors);
        (void)std::initializer_list<int>{(stop_one<count - 1 - I>(), 0)...};
        started_ = 0;
    }

    template <std::size_t I>
    void stop_one() noexcept {
        if (I < started_) {
            std::get<I>(collectors_).stop(core_);
        }
    }

    SessionCore core_;
    std::tuple<Collectors...> collectors_;
    std::size_t started_ = 0;
    std::vector<std::string> collector_names_; // empty: every collector of the type
};

} // namespace pycroscope
