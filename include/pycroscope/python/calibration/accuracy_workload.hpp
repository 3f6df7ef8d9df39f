#pragma once
// A workload of known cost for checking overhead compensation: functions
// doing a fixed amount of work (iterating prebuilt lists: no call, no
// allocation) sized at load to
// about 10 us, 1 ms and 10 ms, and "fan" functions doing fixed work plus
// many calls of an empty function. A busy loop reports its own duration
// whatever the tracer costs; a fan's self time also carries the tracer's
// cost of each child's call and return, so without compensation it reads
// too high. All run at the bottom of a deep recursion.
//
//     AccuracyWorkload workload;              // GIL held
//     auto truth = workload.unprofiled();      // per call, untraced
//     ... start a profile ...; workload.run(); ... stop ...
//     auto rows = compare_self_times(profile, truth);
//
// "Unprofiled" is each function's time per call timed in Python around the
// call: its self time, as the empty children's bodies take a few ns.

#include "pycroscope/model/profile.hpp"

#include "pycroscope/python/runtime/cpython.hpp"
#include "pycroscope/python/runtime/python_source.hpp"

#include <cmath>
#include <string>
#include <vector>

namespace pycroscope {
namespace python {

struct AccuracyTarget {
    std::string function;
    double unprofiled_ns = 0.0; // per call
    std::uint64_t calls = 0;    // calls per run()
    std::uint64_t children = 0; // empty children per call
};

struct AccuracyRow {
    std::string function;
    std::uint64_t children = 0;
    double unprofiled_ns = 0.0;
    double reported_ns = 0.0; // self time per call in the profile
    std::uint64_t calls = 0;  // calls in the profile
    double error() const noexcept { return unprofiled_ns > 0 ? reported_ns / unprofiled_ns - 1.0 : 0.0; }
};

class AccuracyWorkload {
public:
    static constexpr const char* file_name = "<pycroscope accuracy>";

    // depth: the recursion the checked functions run under.
    explicit AccuracyWorkload(int depth = 40) : depth_(depth) {
        static const char* const source = R"PY(
from time import perf_counter_ns

# The work is iteration over prebuilt lists: no allocation, so allocation
# hooks (memory tracking) add nothing to it, and no call.
def leaf():
    pass

def _work(outer, inner, kids):
    x = None
    for a in outer:
        for b in inner:
            x = b
    for c in kids:
        leaf()
    return x

def fixed_10us(outer, inner, kids):
    x = None
    for a in outer:
        for b in inner:
            x = b
    for c in kids:
        leaf()
    return x

def fixed_1ms(outer, inner, kids):
    x = None
    for a in outer:
        for b in inner:
            x = b
    for c in kids:
        leaf()
    return x

def fixed_10ms(outer, inner, kids):
    x = None
    for a in outer:
        for b in inner:
            x = b
    for c in kids:
        leaf()
    return x

def fan_100us(outer, inner, kids):
    x = None
    for a in outer:
        for b in inner:
            x = b
    for c in kids:
        leaf()
    return x

def fan_1ms(outer, inner, kids):
    x = None
    for a in outer:
        for b in inner:
            x = b
    for c in kids:
        leaf()
    return x

_inner = [None] * 100

def _iterations_per_us():
    outer = [None] * 1000
    best = None
    for _ in range(7):
        t0 = perf_counter_ns()
        _work(outer, _inner, ())
        t = perf_counter_ns() - t0
        best = t if best is None or t < best else best
    return 100000 * 1000.0 / max(best, 1)

# name: (function, work in us, empty children per call, calls per run). A
# fan's children (each a loop step and a call, some 30 ns untraced) make up
# about a third of its time.
_plan = {
    "fixed_10us": (fixed_10us, 10, 0, 20),
    "fixed_1ms": (fixed_1ms, 1000, 0, 1),
    "fixed_10ms": (fixed_10ms, 10000, 0, 1),
    "fan_100us": (fan_100us, 60, 1000, 4),
    "fan_1ms": (fan_1ms, 600, 10000, 1),
}
_jobs = []

def setup():
    per_us = _iterations_per_us()
    del _jobs[:]
    for name, (f, us, k, calls) in _plan.items():
        outer = [None] * max(1, int(us * per_us / len(_inner)))
        _jobs.append((name, f, outer, [None] * k, calls))
    return [(name, len(kids), calls) for name, f, outer, kids, calls in _jobs]

def unprofiled(trials):
    out = []
    for name, f, outer, kids, calls in _jobs:
        best = None
        for _ in range(trials):
            total = 0
            for _ in range(calls):
                t0 = perf_counter_ns()
                f(outer, _inner, kids)
                total += perf_counter_ns() - t0
            t = total / calls
            best = t if best is None or t < best else best
        out.append(best)
    return out

def descend(depth):
    if depth > 0:
        return descend(depth - 1)
    for name, f, outer, kids, calls in _jobs:
        for _ in range(calls):
            f(outer, _inner, kids)
    return 0
)PY";
        globals_ = run_in_fresh_namespace(source, file_name);
        if (globals_ == nullptr) {
            fail();
            return;
        }
        PyObject* plan = call("setup", nullptr);
        if (plan == nullptr) {
            return;
        }
        for (Py_ssize_t i = 0; i < PyList_Size(plan); ++i) {
            PyObject* item = PyList_GetItem(plan, i);
            AccuracyTarget target;
            target.function = PyUnicode_AsUTF8(PyTuple_GetItem(item, 0));
            target.children = PyLong_AsUnsignedLongLong(PyTuple_GetItem(item, 1));
            target.calls = PyLong_AsUnsignedLongLong(PyTuple_GetItem(item, 2));
            targets_.push_back(target);
        }
        Py_DECREF(plan);
        ok_ = true;
    }
    ~AccuracyWorkload() { Py_XDECREF(globals_); }
    AccuracyWorkload(const AccuracyWorkload&) = delete;
    AccuracyWorkload& operator=(const AccuracyWorkload&) = delete;

    bool ok() const noexcept { return ok_; }
    const std::string& error() const noexcept { return error_; }

    // Each checked function's untraced time per call: the fastest of trials
    // runs of its calls (empty when the code raised).
    std::vector<AccuracyTarget> unprofiled(int trials = 3) {
        PyObject* n = PyLong_FromLong(trials);
        PyObject* times = call("unprofiled", n);
        Py_XDECREF(n);
        if (times == nullptr) {
            return {};
        }
        std::vector<AccuracyTarget> out = targets_;
        for (std::size_t i = 0; i < out.size(); ++i) {
            out[i].unprofiled_ns = PyFloat_AsDouble(PyList_GetItem(times, static_cast<Py_ssize_t>(i)));
        }
        Py_DECREF(times);
        return out;
    }

    // One run: every checked function its calls times, under the recursion.
    bool run() {
        PyObject* depth = PyLong_FromLong(depth_);
        PyObject* result = call("descend", depth);
        Py_XDECREF(depth);
        Py_XDECREF(result);
        return result != nullptr;
    }

private:
    PyObject* call(const char* name, PyObject* arg) {
        PyObject* function = globals_ != nullptr ? PyDict_GetItemString(globals_, name) : nullptr;
        if (function == nullptr) {
            error_ = std::string("the accuracy workload has no ") + name;
            return nullptr;
        }
        PyObject* result = PyObject_CallFunctionObjArgs(function, arg, nullptr);
        if (result == nullptr) {
            fail();
        }
        return result;
    }
    void fail() { error_ = "the accuracy workload failed: " + take_python_error(); }

    int depth_;
    PyObject* globals_ = nullptr;
    bool ok_ = false;
    std::vector<AccuracyTarget> targets_;
    std::string error_;
};

// The reported self time per call of each target in a traced profile of
// run()s (functions of the workload's file, by name).
inline std::vector<AccuracyRow> compare_self_times(const model::Profile& profile,
                                                   const std::vector<AccuracyTarget>& targets) {
    std::vector<AccuracyRow> rows;
    for (const AccuracyTarget& target : targets) {
        AccuracyRow row;
        row.function = target.function;
        row.children = target.children;
        row.unprofiled_ns = target.unprofiled_ns;
        for (const model::Function& f : profile.functions) {
            if (f.file == AccuracyWorkload::file_name && f.name == target.function) {
                row.calls += f.calls;
                row.reported_ns += static_cast<double>(f.self);
            }
        }
        row.reported_ns = row.calls > 0 ? row.reported_ns / static_cast<double>(row.calls) : 0.0;
        rows.push_back(row);
    }
    return rows;
}

} // namespace python
} // namespace pycroscope
