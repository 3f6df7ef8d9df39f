#pragma once
// The accuracy check `pycroscope calibrate` prints: the accuracy workload
// (accuracy_workload.hpp) timed untraced, then traced on one backend in a
// session of its own, read by two profile models fed the same events, one
// compensated with the per-event cost measured at start and one not. Needs
// the GIL and no other session recording.

#include "pycroscope/core/session.hpp"
#include "pycroscope/model/profile_builder.hpp"
#include "pycroscope/python/calibration/accuracy_workload.hpp"
#include "pycroscope/python/calibration/overhead_calibration.hpp"
#include "pycroscope/python/tracer/tracer.hpp"

#include <memory>
#include <string>
#include <vector>

namespace pycroscope {
namespace python {

struct AccuracyCheck {
    OverheadMeasurement overhead;     // the bias subtracted from compensated
    std::vector<AccuracyRow> compensated;
    std::vector<AccuracyRow> raw;     // the same run, nothing subtracted
    std::string error;                // empty when the check ran
};

// runs: traced runs of the workload (their calls are averaged).
inline AccuracyCheck check_accuracy(Backend backend = Backend::automatic, int runs = 3) {
    AccuracyCheck check;
    AccuracyWorkload workload;
    OverheadProbe probe;
    if (!workload.ok() || !probe.ok()) {
        check.error = !workload.ok() ? workload.error() : probe.error();
        return check;
    }
    const std::vector<AccuracyTarget> targets = workload.unprofiled(runs);
    const CalibrationOptions options;
    const double untraced = probe.ns_per_call(options);
    if (targets.empty()) {
        check.error = workload.error();
        return check;
    }
    Session<PythonTracer> session;
    PythonTracer& tracer = session.collector<PythonTracer>();
    tracer.options.backend = backend;
    tracer.options.c_calls = false;
    const auto compensated = std::make_shared<model::ProfileBuilder>();
    const auto raw = std::make_shared<model::ProfileBuilder>();
    session.core().add_processor(compensated);
    session.core().add_processor(raw);
    session.start();
    const Backend running = tracer.backend();
    check.overhead = overhead_from(running, options, untraced, probe.traced_ns_per_call(options));
    compensated->set_overhead(model::OverheadBias{check.overhead.ns_per_event, to_string(running),
                                                  check.overhead.untraced_ns_per_call,
                                                  check.overhead.traced_ns_per_call});
    bool ran = true;
    for (int r = 0; r < runs && ran; ++r) {
        ran = workload.run();
    }
    session.stop();
    if (!ran) {
        check.error = workload.error();
        return check;
    }
    check.compensated = compare_self_times(compensated->profile(), targets);
    check.raw = compare_self_times(raw->profile(), targets);
    return check;
}

} // namespace python
} // namespace pycroscope
