#pragma once
// The "overhead_compensation" section of session.json: what was subtracted
// from the traced times (model/overhead_compensation.hpp), so a reader knows:
//
//   {"enabled": true, "backend": "eval_frame", "ns_per_event": 21.4,
//    "untraced_ns_per_call": 38.0, "traced_ns_per_call": 80.8,
//    "events": 123456, "subtracted_ns": 2641978}
//
// subtracted_ns is ns_per_event x events: an upper bound, as no duration is
// taken below zero. Disabled (or not measured): {"enabled": false, ...} with
// "reason" saying why.

#include "pycroscope/model/profile_builder.hpp"
#include "pycroscope/sinks/json_summary_sink.hpp"
#include "pycroscope/sinks/json_writer.hpp"

#include <string>

namespace pycroscope {
namespace sinks {

constexpr const char* compensation_section_key = "overhead_compensation";

// measured: what the calibration gave (backend, timings); reason: why there
// is no compensation. Both read at close, so they may be set after this
// call. Whether it is enabled, and with what bias, is the builder's.
inline void add_compensation_section(JsonSummarySink& sink, const model::ProfileBuilder& builder,
                                     const model::OverheadBias* measured, const std::string* reason) {
    sink.add_section(compensation_section_key, [&builder, measured, reason](JsonWriter& json, const SessionSummary&) {
        model::OverheadBias bias = measured != nullptr ? *measured : builder.overhead();
        bias.ns_per_event = builder.overhead().ns_per_event;
        const bool enabled = bias.ns_per_event > 0.0;
        json.begin_object().field("enabled", enabled);
        if (!bias.backend.empty()) {
            json.field("backend", bias.backend)
                .field("ns_per_event", bias.ns_per_event)
                .field("untraced_ns_per_call", bias.untraced_ns_per_call)
                .field("traced_ns_per_call", bias.traced_ns_per_call);
        }
        if (enabled) {
            json.field("events", builder.compensated_events())
                .field("subtracted_ns",
                       static_cast<std::uint64_t>(bias.ns_per_event * static_cast<double>(builder.compensated_events()) + 0.5));
        } else {
            json.field("reason", reason != nullptr && !reason->empty() ? *reason : std::string("no overhead measured"));
        }
        json.end_object();
    });
}

} // namespace sinks
} // namespace pycroscope
