#pragma once
// Subtracts the tracer's own cost from a thread's timeline.
//
// Every traced event (a call or return recorded by a tracing hook) costs
// about the same time, some before its timestamp is read and some after.
// Shifting each event of a thread back by bias x (traced events before it on
// that thread) removes exactly that cost from every interval: a span that
// contains k traced events loses k x bias, so a function's self time loses
// the cost of its own call and return and of each child's call and return,
// and its children's inclusive times lose theirs. The bias is measured at
// start (python/calibration/overhead_calibration.hpp).
//
// Timestamps never go backwards: where the gap between two events is shorter
// than the bias (noise, or a cost below the average) the later event keeps
// the earlier one's time, so no duration goes negative. Lines are shifted
// with the calls but their own events are not counted: their cost is not measured.
//
// The measurement travels in the event stream, so that a capture replays
// with the same compensation as the live run: counter events on the thread
// that calibrated, the timings first and the bias (overhead_bias_location,
// value: ns per event, function: the backend) last. Compensation starts at
// the bias event, for every thread; a later one changes the bias from there.

#include "pycroscope/core/event.hpp"
#include "pycroscope/core/source_location.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

namespace pycroscope {
namespace model {

// The per-event cost subtracted from a run, and the measurement it came from.
struct OverheadBias {
    double ns_per_event = 0.0; // 0: no compensation
    std::string backend;       // the tracing backend it was measured on
    double untraced_ns_per_call = 0.0;
    double traced_ns_per_call = 0.0;
};

// The counters that carry the measurement. The bias's location names the
// backend in its function field (overhead_bias_location_for()).
inline constexpr SourceLocation overhead_bias_location{"pycroscope.overhead_ns_per_event", "", "", 0,
                                                       LocationKind::counter};
inline constexpr SourceLocation overhead_untraced_location{"pycroscope.overhead_untraced_ns_per_call", "", "", 0,
                                                           LocationKind::counter};
inline constexpr SourceLocation overhead_traced_location{"pycroscope.overhead_traced_ns_per_call", "", "", 0,
                                                         LocationKind::counter};

// The bias counter naming backend (static storage: recorded locations live
// as long as the session).
inline const SourceLocation& overhead_bias_location_for(const std::string& backend) noexcept {
    static constexpr SourceLocation eval_frame{"pycroscope.overhead_ns_per_event", "eval_frame", "", 0,
                                               LocationKind::counter};
    static constexpr SourceLocation profile{"pycroscope.overhead_ns_per_event", "profile", "", 0,
                                            LocationKind::counter};
    static constexpr SourceLocation monitoring{"pycroscope.overhead_ns_per_event", "monitoring", "", 0,
                                               LocationKind::counter};
    return backend == "eval_frame" ? eval_frame
           : backend == "profile"  ? profile
           : backend == "monitoring" ? monitoring
                                     : overhead_bias_location;
}

enum class OverheadCounter { none, bias, untraced, traced };

// Which of the measurement's counters e is: by name, as a replay has its own
// locations.
inline OverheadCounter overhead_counter_of(const Event& e) noexcept {
    if (e.kind != EventKind::counter) {
        return OverheadCounter::none;
    }
    const SourceLocation* location = e.location();
    if (location == nullptr || location->name == nullptr || std::strncmp(location->name, "pycroscope.overhead_", 20) != 0) {
        return OverheadCounter::none;
    }
    for (const auto& known : {std::make_pair(&overhead_bias_location, OverheadCounter::bias),
                              std::make_pair(&overhead_untraced_location, OverheadCounter::untraced),
                              std::make_pair(&overhead_traced_location, OverheadCounter::traced)}) {
        if (std::strcmp(location->name, known.first->name) == 0) {
            return known.second;
        }
    }
    return OverheadCounter::none;
}

// True for the profiler's own counters, which no view shows as the program's.
inline bool is_overhead_counter_event(const Event& e) noexcept {
    return overhead_counter_of(e) != OverheadCounter::none;
}

inline bool is_overhead_bias_event(const Event& e) noexcept { return overhead_counter_of(e) == OverheadCounter::bias; }

inline double overhead_counter_value(const Event& e) noexcept {
    double value;
    std::memcpy(&value, &e.payload, sizeof value);
    return value;
}

// True for the events whose hook cost the bias stands for.
constexpr bool is_compensated_event(const Event& e) noexcept {
    switch (e.kind) {
    case EventKind::py_call:
    case EventKind::py_return:
    case EventKind::py_resume:
    case EventKind::c_call:
    case EventKind::c_return: return (e.flags & event_flags::synthetic) == 0;
    default: return false;
    }
}

// One thread's shift. ticks_per_event: the bias in the session's clock ticks.
class OverheadShift {
public:
    OverheadShift() = default;
    explicit OverheadShift(double ticks_per_event) : ticks_per_event_(std::max(0.0, ticks_per_event)) {}

    // The event's compensated timestamp; call once per event, in the thread's order.
    std::uint64_t apply(const Event& e) noexcept {
        std::uint64_t t = e.timestamp;
        if (ticks_per_event_ > 0.0 || base_ > 0.0) {
            const auto shift =
                static_cast<std::uint64_t>(base_ + ticks_per_event_ * static_cast<double>(counted_) + 0.5);
            t = t > shift ? t - shift : 0;
            t = std::max(t, last_);
            last_ = t;
        }
        if (is_compensated_event(e)) {
            ++counted_;
            subtracted_ += ticks_per_event_ > 0.0 ? 1 : 0;
        }
        return t;
    }

    // A new bias for the events from here on. What was subtracted so far
    // stays subtracted, so no interval spanning the change jumps.
    void rebias(double ticks_per_event) noexcept {
        base_ += ticks_per_event_ * static_cast<double>(counted_);
        counted_ = 0;
        ticks_per_event_ = std::max(0.0, ticks_per_event);
    }

    // Traced events whose cost was subtracted.
    std::uint64_t subtracted_events() const noexcept { return subtracted_; }
    double ticks_per_event() const noexcept { return ticks_per_event_; }

private:
    double ticks_per_event_ = 0.0;
    double base_ = 0.0;            // ticks subtracted under earlier biases
    std::uint64_t counted_ = 0;    // compensated events seen under this bias
    std::uint64_t subtracted_ = 0; // compensated events seen under any bias above zero
    std::uint64_t last_ = 0;       // latest compensated timestamp
};

} // namespace model
} // namespace pycroscope
