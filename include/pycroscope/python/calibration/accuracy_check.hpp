#pragma once
// The accuracy check `pycroscope calibrate` prints: the accuracy workload
// (accuracy_workload.hpp) timed untraced, then traced on one backend in a
// session of its own, read by two profile models fed the same events, one
// compensated with the per-event cost measured at start and one not; a few
// attempts, the fastest kept per function. Needs the GIL and no other
// session recording.

#include "pycroscope/core/session.hpp"
#include "pycroscope/model/profile_builder.hpp"
#include "pycroscope/python/calibration/accuracy_workload.hpp"
#include "pycroscope/python/calibration/overhead_calibration.hpp"
#include "pycroscope/python/tracer/tracer.hpp"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace pycroscope {
namespace python {

struct AccuracyCheck {
    OverheadMeasurement overhead;     // the bias subtracted (the last attempt's)
    std::vector<AccuracyRow> compensated;
    std::vector<AccuracyRow> raw;     // the same runs, nothing subtracted
    std::string error;                // empty when the check ran
};

// attempts: each times the workload untraced, then traced once in a session
// of its own; per function, each side keeps its fastest attempt (a busy
// machine preempts some of them).
inline AccuracyCheck check_accuracy(Backend backend = Backend::automatic, int attempts = 5) {
    AccuracyCheck check;
    AccuracyWorkload workload;
    OverheadProbe probe;
    if (!workload.ok() || !probe.ok()) {
        check.error = !workload.ok() ? workload.error() : probe.error();
        return check;
    }
    const CalibrationOptions options;
    std::vector<AccuracyTarget> truth;
    for (int attempt = 0; attempt < attempts; ++attempt) {
        const std::vector<AccuracyTarget> targets = workload.unprofiled(1);
        const double untraced = probe.ns_per_call(options);
        if (targets.empty()) {
            check.error = workload.error();
            return check;
        }
        Config config;
        config.prefault_buffers = true; // no page faults in the timed spans (core/config.hpp)
        Session<PythonTracer> session(config);
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
        const bool ran = workload.run();
        session.stop();
        if (!ran) {
            check.error = workload.error();
            return check;
        }
        const std::vector<AccuracyRow> c = compare_self_times(compensated->profile(), targets);
        const std::vector<AccuracyRow> r = compare_self_times(raw->profile(), targets);
        if (attempt == 0) {
            truth = targets;
            check.compensated = c;
            check.raw = r;
            continue;
        }
        for (std::size_t i = 0; i < targets.size() && i < c.size() && i < r.size(); ++i) {
            truth[i].unprofiled_ns = std::min(truth[i].unprofiled_ns, targets[i].unprofiled_ns);
            check.compensated[i].reported_ns = std::min(check.compensated[i].reported_ns, c[i].reported_ns);
            check.raw[i].reported_ns = std::min(check.raw[i].reported_ns, r[i].reported_ns);
            check.compensated[i].calls += c[i].calls;
            check.raw[i].calls += r[i].calls;
        }
    }
    for (std::size_t i = 0; i < truth.size() && i < check.compensated.size() && i < check.raw.size(); ++i) {
        check.compensated[i].unprofiled_ns = truth[i].unprofiled_ns;
        check.raw[i].unprofiled_ns = truth[i].unprofiled_ns;
    }
    return check;
}

} // namespace python
} // namespace pycroscope
