#pragma once
// pycroscope.complexity(func, make_input, sizes=None, repeat=None, budget=None):
// times func(make_input(n)) over growing n and names its empirical complexity
// with analysis::fit_complexity. Returns
//
//   {"best": "O(n log n)" or None, "r2": ..., "models": [{...}, ...],
//    "points": [[n, seconds], ...], "seconds_spent": ..., "repeat": ...,
//    "decades": ..., "error": None or "insufficient data: ..."}
//
// Per size: make_input(n) outside the timed region, one warm-up call (not
// kept) that also sets how many calls one sample loops over (a sample lasts
// at least complexity_min_sample_seconds, so the clock's resolution does not
// matter), and a first sample. Then the other samples (repeat in all,
// default 5) in passes over every size in a shuffled order, so that a
// machine slowing down during the measurement slows every size alike rather
// than passing for growth. Samples run with the garbage collector off (as
// timeit does); the point is the fastest sample per call: noise only adds.
//
// Without sizes: n = 8, then x 2^(1/3) (three sizes per octave), while the
// next size, predicted from the last ones, fits in a third of the budget
// (default 2 s, make_input included), up to complexity_max_auto_size; the
// passes then stop at the budget. docs/complexity.md.

#include "pycroscope/analysis/complexity_fit.hpp"
#include "pycroscope/python/runtime/cpython.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <random>
#include <string>
#include <vector>

namespace pycroscope {
namespace python {
namespace detail {

constexpr double complexity_default_budget = 2.0; // seconds
constexpr long long complexity_first_size = 8;
constexpr long long complexity_max_auto_size = 1ll << 17;
constexpr int complexity_default_repeat = 5;
constexpr double complexity_min_sample_seconds = 50e-6;

inline double monotonic_seconds() noexcept {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Owns one reference.
struct PyRef {
    PyObject* object = nullptr;
    PyRef() = default;
    explicit PyRef(PyObject* o) : object(o) {}
    PyRef(const PyRef&) = delete;
    PyRef& operator=(const PyRef&) = delete;
    ~PyRef() { Py_XDECREF(object); }
    PyObject* get() const noexcept { return object; }
    explicit operator bool() const noexcept { return object != nullptr; }
};

// gc.disable() for the timed region, the previous state back afterwards.
class GcPause {
public:
    bool start() {
        gc_.object = PyImport_ImportModule("gc");
        if (!gc_) {
            return false;
        }
        PyRef enabled(PyObject_CallMethod(gc_.get(), "isenabled", nullptr));
        if (!enabled) {
            return false;
        }
        was_enabled_ = PyObject_IsTrue(enabled.get()) == 1;
        return set(false);
    }
    bool stop() { return !was_enabled_ || set(true); }

private:
    bool set(bool on) {
        PyRef result(PyObject_CallMethod(gc_.get(), on ? "enable" : "disable", nullptr));
        return static_cast<bool>(result);
    }
    PyRef gc_;
    bool was_enabled_ = false;
};

// Seconds for `loops` calls of func(input); negative with an exception set.
inline double time_calls(PyObject* func, PyObject* input, long long loops) {
    GcPause gc;
    if (!gc.start()) {
        return -1;
    }
    const double start = monotonic_seconds();
    for (long long i = 0; i < loops; ++i) {
        PyObject* result = PyObject_CallOneArg(func, input);
        if (result == nullptr) {
            PyObject *type, *value, *traceback;
            PyErr_Fetch(&type, &value, &traceback);
            gc.stop();
            PyErr_Restore(type, value, traceback);
            return -1;
        }
        Py_DECREF(result);
    }
    const double elapsed = monotonic_seconds() - start;
    if (!gc.stop()) {
        return -1;
    }
    return elapsed;
}

// One size under measurement. Inputs stay alive until the end: later
// passes time every size again with the same input.
struct SizeState {
    long long n = 0;
    PyObject* input = nullptr; // owned
    long long loops = 1;       // calls per sample
    double best = -1;          // fastest sample, per call
    double input_seconds = 0;  // make_input(n)
    int samples = 0;
};

struct SizeStates {
    std::vector<SizeState> sizes;
    SizeStates() = default;
    SizeStates(const SizeStates&) = delete;
    SizeStates& operator=(const SizeStates&) = delete;
    ~SizeStates() {
        for (SizeState& size : sizes) {
            Py_XDECREF(size.input);
        }
    }
};

// One more sample of a prepared size. False with an exception set.
inline bool take_sample(PyObject* func, SizeState& size) {
    const double elapsed = time_calls(func, size.input, size.loops);
    if (elapsed < 0) {
        return false;
    }
    const double per_call = elapsed / static_cast<double>(size.loops);
    size.best = size.best < 0 ? per_call : std::min(size.best, per_call);
    ++size.samples;
    return true;
}

// make_input(n), the warm-up call that sets the loops, and a first sample.
inline bool prepare_size(PyObject* func, PyObject* make_input, long long n, SizeState& out) {
    out.n = n;
    const double start = monotonic_seconds();
    PyRef size(PyLong_FromLongLong(n));
    if (!size) {
        return false;
    }
    out.input = PyObject_CallOneArg(make_input, size.get());
    if (out.input == nullptr) {
        return false;
    }
    out.input_seconds = monotonic_seconds() - start;
    const double warm = time_calls(func, out.input, 1);
    if (warm < 0) {
        return false;
    }
    if (warm < complexity_min_sample_seconds) {
        out.loops = static_cast<long long>(std::ceil(complexity_min_sample_seconds / std::max(warm, 1e-8)));
    }
    return take_sample(func, out);
}

inline PyObject* none() {
    Py_INCREF(Py_None);
    return Py_None;
}

inline PyObject* float_or_none(double value, bool valid) {
    return valid && std::isfinite(value) ? PyFloat_FromDouble(value) : none();
}

// Adds key: value to dict, stealing value; false with an exception set.
inline bool put(PyObject* dict, const char* key, PyObject* value) {
    if (value == nullptr) {
        return false;
    }
    const int status = PyDict_SetItemString(dict, key, value);
    Py_DECREF(value);
    return status == 0;
}

// The result dict of pycroscope.complexity().
inline PyObject* complexity_result(const analysis::ComplexityFit& fit, double seconds_spent, int repeat) {
    PyRef dict(PyDict_New());
    if (!dict) {
        return nullptr;
    }
    PyRef models(PyList_New(0));
    if (!models) {
        return nullptr;
    }
    for (const analysis::ComplexityModelFit& model : fit.models) {
        PyRef entry(PyDict_New());
        if (!entry || !put(entry.get(), "name", PyUnicode_FromString(model.name.c_str())) ||
            !put(entry.get(), "fitted", PyBool_FromLong(model.fitted)) ||
            !put(entry.get(), "a", float_or_none(model.a, model.fitted)) ||
            !put(entry.get(), "b", float_or_none(model.b, model.fitted)) ||
            !put(entry.get(), "error", float_or_none(model.error, model.fitted)) ||
            !put(entry.get(), "score", float_or_none(model.score, model.fitted)) ||
            !put(entry.get(), "r2", float_or_none(model.r2, model.fitted)) ||
            PyList_Append(models.get(), entry.get()) < 0) {
            return nullptr;
        }
    }
    PyRef points(PyList_New(0));
    if (!points) {
        return nullptr;
    }
    for (const analysis::ComplexityPoint& point : fit.points) {
        PyRef pair(Py_BuildValue("[Ld]", static_cast<long long>(point.n), point.seconds));
        if (!pair || PyList_Append(points.get(), pair.get()) < 0) {
            return nullptr;
        }
    }
    const double decades =
        fit.points.empty() ? 0.0 : std::log10(fit.points.back().n / fit.points.front().n);
    Py_INCREF(models.get());
    Py_INCREF(points.get());
    if (!put(dict.get(), "best", fit.ok ? PyUnicode_FromString(fit.best.c_str()) : none()) || !put(dict.get(), "r2", float_or_none(fit.r2, fit.ok)) ||
        !put(dict.get(), "models", models.get()) || !put(dict.get(), "points", points.get()) ||
        !put(dict.get(), "seconds_spent", PyFloat_FromDouble(seconds_spent)) ||
        !put(dict.get(), "repeat", PyLong_FromLong(repeat)) ||
        !put(dict.get(), "decades", PyFloat_FromDouble(decades)) || !put(dict.get(), "error", fit.ok ? none() : PyUnicode_FromString(fit.error.c_str()))) {
        return nullptr;
    }
    PyObject* result = dict.get();
    dict.object = nullptr;
    return result;
}

// sizes: an iterable of ints >= 1, in any order. False with an exception set.
inline bool parse_sizes(PyObject* sizes, std::vector<long long>& out) {
    PyRef items(PySequence_Fast(sizes, "complexity(): sizes must be an iterable of ints"));
    if (!items) {
        return false;
    }
    const Py_ssize_t count = PySequence_Fast_GET_SIZE(items.get());
    for (Py_ssize_t i = 0; i < count; ++i) {
        PyObject* item = PySequence_Fast_GET_ITEM(items.get(), i);
        if (!PyLong_Check(item) || PyBool_Check(item)) {
            PyErr_Format(PyExc_TypeError, "complexity(): sizes must be ints, not %.100s", Py_TYPE(item)->tp_name);
            return false;
        }
        const long long n = PyLong_AsLongLong(item);
        if (n == -1 && PyErr_Occurred()) {
            return false;
        }
        if (n < 1) {
            PyErr_Format(PyExc_ValueError, "complexity(): sizes must be at least 1, got %lld", n);
            return false;
        }
        out.push_back(n);
    }
    return true;
}

inline PyObject* module_complexity(PyObject*, PyObject* args, PyObject* kwargs) {
    static const char* keywords[] = {"func", "make_input", "sizes", "repeat", "budget", nullptr};
    PyObject* func = nullptr;
    PyObject* make_input = nullptr;
    PyObject* sizes_arg = Py_None;
    PyObject* repeat_arg = Py_None;
    PyObject* budget_arg = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|OOO:complexity", const_cast<char**>(keywords), &func,
                                     &make_input, &sizes_arg, &repeat_arg, &budget_arg)) {
        return nullptr;
    }
    if (!PyCallable_Check(func) || !PyCallable_Check(make_input)) {
        PyErr_SetString(PyExc_TypeError, "complexity(): func and make_input must be callable");
        return nullptr;
    }
    int repeat = 0;
    if (repeat_arg != Py_None) {
        const long value = PyLong_Check(repeat_arg) ? PyLong_AsLong(repeat_arg) : -1;
        if (value == -1 && PyErr_Occurred()) {
            return nullptr;
        }
        if (!PyLong_Check(repeat_arg) || value < 1 || value > 1000000) {
            PyErr_SetString(PyExc_ValueError, "complexity(): repeat must be an int from 1 to 1000000");
            return nullptr;
        }
        repeat = static_cast<int>(value);
    }
    double budget = complexity_default_budget;
    if (budget_arg != Py_None) {
        budget = PyFloat_AsDouble(budget_arg);
        if (budget == -1.0 && PyErr_Occurred()) {
            return nullptr;
        }
        if (!(budget > 0) || !std::isfinite(budget)) {
            PyErr_SetString(PyExc_ValueError, "complexity(): budget must be a positive number of seconds");
            return nullptr;
        }
    }
    std::vector<long long> sizes;
    if (sizes_arg != Py_None && !parse_sizes(sizes_arg, sizes)) {
        return nullptr;
    }
    const double start = monotonic_seconds();
    SizeStates states;
    if (sizes_arg != Py_None) {
        for (long long n : sizes) {
            states.sizes.emplace_back();
            if (!prepare_size(func, make_input, n, states.sizes.back())) {
                return nullptr;
            }
        }
    } else {
        // Grow while the next size, predicted from the fastest call (robust
        // to a preempted sample), fits in a third of the budget: make_input
        // a step larger, its calls as much slower as the last step made them.
        const double step = std::cbrt(2.0);
        double per_call_growth = 1; // the smaller of the last two steps': one slow sample is not growth
        double last_ratio = 1;
        for (long long n = complexity_first_size; n <= complexity_max_auto_size;
             n = std::max(n + 1, static_cast<long long>(std::llround(static_cast<double>(n) * step)))) {
            if (!states.sizes.empty()) {
                const SizeState& last = states.sizes.back();
                const double next_call = last.best * per_call_growth;
                const double predicted = last.input_seconds * step + std::max(2 * next_call, complexity_min_sample_seconds);
                if (monotonic_seconds() - start + predicted > budget / 3) {
                    break;
                }
            }
            const double previous = states.sizes.empty() ? 0 : states.sizes.back().best;
            states.sizes.emplace_back();
            if (!prepare_size(func, make_input, n, states.sizes.back())) {
                return nullptr;
            }
            const double ratio = previous > 0 ? std::max(1.0, states.sizes.back().best / previous) : 1.0;
            per_call_growth = std::min(ratio, last_ratio);
            last_ratio = ratio;
        }
    }
    // The other samples, in passes over every size in a shuffled order: a
    // machine that slows down during the run slows every size alike instead
    // of passing for growth. Without repeat, passes stop at the budget.
    const int wanted = repeat > 0 ? repeat : complexity_default_repeat;
    std::vector<std::size_t> order(states.sizes.size());
    for (std::size_t i = 0; i < order.size(); ++i) {
        order[i] = i;
    }
    std::mt19937 shuffle(12345);
    double last_pass = monotonic_seconds() - start;
    int samples = 1;
    for (; samples < wanted; ++samples) {
        const double pass_start = monotonic_seconds();
        if (repeat <= 0 && pass_start - start + last_pass > budget) {
            break;
        }
        std::shuffle(order.begin(), order.end(), shuffle);
        for (std::size_t i : order) {
            if (!take_sample(func, states.sizes[i])) {
                return nullptr;
            }
        }
        last_pass = monotonic_seconds() - pass_start;
    }
    std::vector<analysis::ComplexityPoint> points;
    for (const SizeState& size : states.sizes) {
        points.push_back({static_cast<double>(size.n), size.best});
    }
    const int samples_used = samples;
    const analysis::ComplexityFit fit = analysis::fit_complexity(points);
    return complexity_result(fit, monotonic_seconds() - start, samples_used);
}

} // namespace detail
} // namespace python
} // namespace pycroscope
