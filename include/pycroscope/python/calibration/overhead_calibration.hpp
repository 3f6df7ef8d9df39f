#pragma once
// What one traced event costs, measured on real Python code under the real
// hook, as cProfile's calibration does: a loop of calls to an empty function,
// timed untraced and traced; the difference per call, halved (a call and its
// return are two events), is the per-event bias model::OverheadShift subtracts.
//
// Two ways to measure:
//  - inside a session that records (StandardProfile::attach_python()): the
//    untraced loop before the tracer attaches, the traced one after. While
//    the traced loop runs, this thread's events go to a scratch ring; the
//    probe's own calls are dropped and every other event (the thread's first
//    synthetic frames, allocations) is handed on to the thread's buffer, so
//    nothing of the probe reaches the profile and nothing else is lost.
//  - with a session of its own per backend (measure_backend_overhead(), for
//    `pycroscope calibrate`): only when no other session records.
// Each repetition takes a fraction of a millisecond; the minimum is kept.
// All of it needs the GIL.

#include "pycroscope/core/clock.hpp"
#include "pycroscope/core/error.hpp"
#include "pycroscope/core/session.hpp"
#include "pycroscope/core/thread_buffer.hpp"
#include "pycroscope/core/thread_registry.hpp"
#include "pycroscope/python/runtime/code_registry.hpp"
#include "pycroscope/python/runtime/python_source.hpp"
#include "pycroscope/python/tracer/tracer.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace pycroscope {
namespace python {

struct CalibrationOptions {
    std::size_t calls = 2000; // calls per repetition (a multiple of 10)
    int repetitions = 5;      // the fastest is kept
};

struct OverheadMeasurement {
    Backend backend = Backend::automatic;
    std::size_t calls = 0;
    int repetitions = 0;
    double untraced_ns_per_call = 0.0;
    double traced_ns_per_call = 0.0;
    double ns_per_event = 0.0; // (traced - untraced) / 2, never negative
    bool valid = false;
    std::string error; // why not valid
};

// The probe: an empty function and a loop calling it, compiled once.
class OverheadProbe {
public:
    OverheadProbe() {
        static const char* const source = "def _pycroscope_calibration_empty():\n"
                                          "    pass\n"
                                          "def _pycroscope_calibration_loop(n):\n"
                                          "    f = _pycroscope_calibration_empty\n"
                                          "    i = 0\n"
                                          "    while i < n:\n"
                                          "        f(); f(); f(); f(); f(); f(); f(); f(); f(); f()\n"
                                          "        i += 1\n";
        globals_ = run_in_fresh_namespace(source, "<pycroscope calibration>");
        if (globals_ == nullptr) {
            fail();
            return;
        }
        loop_ = PyDict_GetItemString(globals_, "_pycroscope_calibration_loop"); // borrowed
        PyObject* empty = PyDict_GetItemString(globals_, "_pycroscope_calibration_empty");
        if (loop_ == nullptr || empty == nullptr || !PyFunction_Check(loop_) || !PyFunction_Check(empty)) {
            loop_ = nullptr;
            error_ = "the calibration functions were not defined";
            return;
        }
        locations_[0] = code_location(reinterpret_cast<PyCodeObject*>(PyFunction_GetCode(loop_)));
        locations_[1] = code_location(reinterpret_cast<PyCodeObject*>(PyFunction_GetCode(empty)));
    }
    ~OverheadProbe() { Py_XDECREF(globals_); }
    OverheadProbe(const OverheadProbe&) = delete;
    OverheadProbe& operator=(const OverheadProbe&) = delete;

    bool ok() const noexcept { return loop_ != nullptr; }
    const std::string& error() const noexcept { return error_; }
    // True for the probe's own calls and returns.
    bool owns(const Event& e) const noexcept {
        const SourceLocation* location = e.location();
        return location != nullptr && (location == locations_[0] || location == locations_[1]);
    }

    // Nanoseconds per call of the fastest of options.repetitions runs, with
    // whatever hooks are installed; negative on a Python error.
    double ns_per_call(const CalibrationOptions& options) {
        const std::size_t rounds = std::max<std::size_t>(1, options.calls / 10);
        double best = std::numeric_limits<double>::infinity();
        for (int r = 0; r <= options.repetitions; ++r) { // the first run warms up
            const double ns = run(rounds);
            if (ns < 0) {
                return -1.0;
            }
            if (r > 0) {
                best = std::min(best, ns);
            }
        }
        return best / static_cast<double>(rounds * 10);
    }

    // As ns_per_call(), while the tracer records this thread: its events go
    // to a scratch ring, and all but the probe's own are handed on to the
    // thread's buffer after each repetition.
    double traced_ns_per_call(const CalibrationOptions& options) {
        const std::uint64_t epoch = detail::python_epoch.load(std::memory_order_relaxed);
        pycroscope::detail::ThreadSlot& slot = pycroscope::detail::tls_slot;
        if (epoch == 0 || (slot.epoch != epoch && pycroscope::detail::attach_current_thread(epoch) == nullptr)) {
            return ns_per_call(options); // nothing records: nothing to divert
        }
        ThreadBuffer* real = slot.buffer;
        const std::size_t rounds = std::max<std::size_t>(1, options.calls / 10);
        std::size_t capacity = 64;
        while (capacity < rounds * 20 + 256) {
            capacity *= 2;
        }
        ThreadBuffer scratch(capacity, OverflowPolicy::drop_newest, real->index, real->os_tid, "calibration");
        std::vector<Event> drained(capacity);
        double best = std::numeric_limits<double>::infinity();
        for (int r = 0; r <= options.repetitions; ++r) {
            slot.buffer = &scratch;
            const double ns = run(rounds);
            slot.buffer = real;
            std::size_t n;
            while ((n = scratch.ring.pop(drained.data(), drained.size())) > 0) {
                for (std::size_t i = 0; i < n; ++i) {
                    if (!owns(drained[i])) {
                        real->ring.push(drained[i]);
                    }
                }
            }
            if (ns < 0) {
                return -1.0;
            }
            if (r > 0) {
                best = std::min(best, ns);
            }
        }
        return best / static_cast<double>(rounds * 10);
    }

private:
    void fail() { error_ = "the calibration code failed: " + take_python_error(); }

    double run(std::size_t rounds) {
        PyObject* n = PyLong_FromSize_t(rounds);
        if (n == nullptr) {
            PyErr_Clear();
            return -1.0;
        }
        const std::int64_t begin = clock::steady_ns();
        PyObject* result = PyObject_CallFunctionObjArgs(loop_, n, nullptr);
        const std::int64_t end = clock::steady_ns();
        Py_DECREF(n);
        if (result == nullptr) {
            PyErr_Clear();
            return -1.0;
        }
        Py_DECREF(result);
        return static_cast<double>(end - begin);
    }

    PyObject* globals_ = nullptr;
    PyObject* loop_ = nullptr; // borrowed from globals_
    const SourceLocation* locations_[2] = {nullptr, nullptr};
    std::string error_;
};

// The measurement from the two loop timings.
inline OverheadMeasurement overhead_from(Backend backend, const CalibrationOptions& options, double untraced,
                                         double traced) {
    OverheadMeasurement m;
    m.backend = backend;
    m.calls = options.calls;
    m.repetitions = options.repetitions;
    if (untraced < 0 || traced < 0) {
        m.error = "the calibration loop raised";
        return m;
    }
    m.untraced_ns_per_call = untraced;
    m.traced_ns_per_call = traced;
    m.ns_per_event = std::max(0.0, (traced - untraced) / 2.0);
    m.valid = true;
    return m;
}

// The backends this Python has, in the order `pycroscope calibrate` prints them.
inline std::vector<Backend> available_backends() {
    std::vector<Backend> out;
#if PYCROSCOPE_HAS_EVAL_FRAME_BACKEND
    out.push_back(Backend::eval_frame);
#endif
    out.push_back(Backend::profile);
#if PYCROSCOPE_HAS_SYS_MONITORING
    out.push_back(Backend::monitoring);
#endif
    return out;
}

// One backend's per-event cost, with a session of its own that records
// Python calls only (no sink keeps them). Throws SessionError when another
// session records. Needs the GIL.
inline OverheadMeasurement measure_backend_overhead(Backend backend, const CalibrationOptions& options = {}) {
    OverheadProbe probe;
    if (!probe.ok()) {
        OverheadMeasurement m;
        m.backend = backend;
        m.error = probe.error();
        return m;
    }
    const double untraced = probe.ns_per_call(options);
    Session<PythonTracer> session;
    PythonTracer& tracer = session.collector<PythonTracer>();
    tracer.options.backend = backend;
    tracer.options.c_calls = false;
    tracer.options.lines = false;
    tracer.options.exceptions = false;
    session.start();
    const double traced = probe.traced_ns_per_call(options);
    const Backend running = tracer.backend();
    session.stop();
    return overhead_from(running, options, untraced, traced);
}

} // namespace python
} // namespace pycroscope
