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
// A bias can also come in the event stream, as a counter event of
// overhead_bias_location (value: ns per event), for captures; StandardProfile
// does not record it yet (docs/calibration.md).

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

// The counter whose events carry the bias (ns per event).
inline constexpr SourceLocation overhead_bias_location{"pycroscope.overhead_ns_per_event", "", "", 0,
                                                       LocationKind::counter};

// An event setting the bias: by name, as a replay has its own locations.
inline bool is_overhead_bias_event(const Event& e) noexcept {
    if (e.kind != EventKind::counter) {
        return false;
    }
    const SourceLocation* location = e.location();
    return location == &overhead_bias_location ||
           (location != nullptr && location->kind == LocationKind::counter && location->name != nullptr &&
            std::strcmp(location->name, overhead_bias_location.name) == 0);
}

inline double overhead_bias_value(const Event& e) noexcept {
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
        if (ticks_per_event_ > 0.0) {
            const auto shift = static_cast<std::uint64_t>(ticks_per_event_ * static_cast<double>(counted_) + 0.5);
            t = t > shift ? t - shift : 0;
            t = std::max(t, last_);
            last_ = t;
        }
        counted_ += is_compensated_event(e) ? 1 : 0;
        return t;
    }

    std::uint64_t counted() const noexcept { return counted_; }
    double ticks_per_event() const noexcept { return ticks_per_event_; }

private:
    double ticks_per_event_ = 0.0;
    std::uint64_t counted_ = 0; // compensated events seen
    std::uint64_t last_ = 0;    // latest compensated timestamp
};

} // namespace model
} // namespace pycroscope
