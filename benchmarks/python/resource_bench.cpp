// Cost of the resource collectors' hooks, in an embedded interpreter, each
// against the same operation without the hook (Google Benchmark):
//
//   gc_callback_pair     GcCollector's gc.callbacks function called directly
//                        for one collection ("start" then "stop"), recording
//   gc_collect0          gc.collect(0) on a small heap, without / with the
//                        collector (CPython builds the info dict and calls
//                        the callbacks only when the list is non-empty)
//   find_and_load        importlib's _find_and_load for a loaded module (its
//                        fastest path), the original / through the wrapper
//   audit_event          sys.audit("os.bench") from a Python loop (1000 per
//                        iteration), no I/O hook / IoCollector recording
//                        (first sight interns the site; later ones hit the cache)

#define PYCROSCOPE_PYTHON 1
#include <pycroscope.hpp>
#include <pycroscope/python/gc/gc_collector.hpp>
#include <pycroscope/python/imports/import_collector.hpp>
#include <pycroscope/python/io/io_collector.hpp>

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>

namespace {

namespace py = pycroscope::python;

void ensure_interpreter() {
    if (!Py_IsInitialized()) {
        Py_InitializeEx(0);
    }
}

class CountingSink : public pycroscope::Sink {
public:
    std::string describe() const override { return "counting sink"; }
    void open(const pycroscope::SessionInfo&) override {}
    void consume(const pycroscope::ThreadInfo&, const pycroscope::Event*, std::size_t count) override {
        events += count;
    }
    void close(const pycroscope::SessionSummary&) override {}
    void abort() noexcept override {}
    std::size_t events = 0;
};

template <class SessionType>
void finish(benchmark::State& state, SessionType& session) {
    const auto summary = session.stop();
    if (summary.total_lost != 0) {
        state.SkipWithError("events were lost");
    }
}

PyObject* gc_info() {
    return Py_BuildValue("{s:i,s:n,s:n}", "generation", 0, "collected", static_cast<Py_ssize_t>(3), "uncollectable",
                         static_cast<Py_ssize_t>(0));
}

void BM_gc_callback_pair(benchmark::State& state) {
    ensure_interpreter();
    pycroscope::Session<py::GcCollector> session;
    session.add_sink(std::make_shared<CountingSink>());
    session.start();
    PyObject* info = gc_info();
    PyObject* start_args[2] = {PyUnicode_FromString("start"), info};
    PyObject* stop_args[2] = {PyUnicode_FromString("stop"), info};
    for (auto _ : state) {
        PyObject* a = py::detail::gc_callback(nullptr, start_args, 2);
        PyObject* b = py::detail::gc_callback(nullptr, stop_args, 2);
        Py_DECREF(a);
        Py_DECREF(b);
    }
    Py_DECREF(start_args[0]);
    Py_DECREF(stop_args[0]);
    Py_DECREF(info);
    finish(state, session);
}

void gc_collect0(benchmark::State& state, bool with_collector) {
    ensure_interpreter();
    PyObject* gc = PyImport_ImportModule("gc");
    PyObject* collect = PyObject_GetAttrString(gc, "collect");
    PyObject* zero = PyLong_FromLong(0);
    pycroscope::Session<py::GcCollector> session;
    session.add_sink(std::make_shared<CountingSink>());
    if (with_collector) {
        session.start();
    }
    for (auto _ : state) {
        PyObject* result = PyObject_CallOneArg(collect, zero);
        Py_XDECREF(result);
    }
    if (with_collector) {
        finish(state, session);
    }
    Py_DECREF(zero);
    Py_DECREF(collect);
    Py_DECREF(gc);
}
void BM_gc_collect0_plain(benchmark::State& state) { gc_collect0(state, false); }
void BM_gc_collect0_with_collector(benchmark::State& state) { gc_collect0(state, true); }

void find_and_load(benchmark::State& state, bool wrapped) {
    ensure_interpreter();
    PyObject* importlib = PyImport_ImportModule("_frozen_importlib");
    PyObject* builtins = PyEval_GetBuiltins(); // borrowed
    PyObject* args[2] = {PyUnicode_FromString("os"), PyDict_GetItemString(builtins, "__import__")};
    pycroscope::Session<py::ImportCollector> session;
    session.add_sink(std::make_shared<CountingSink>());
    if (wrapped) {
        session.start();
    }
    PyObject* function = PyObject_GetAttrString(importlib, "_find_and_load");
    for (auto _ : state) {
        PyObject* module = PyObject_Vectorcall(function, args, 2, nullptr);
        if (module == nullptr) {
            PyErr_Print();
            state.SkipWithError("_find_and_load raised");
            break;
        }
        Py_DECREF(module);
    }
    Py_DECREF(function);
    if (wrapped) {
        finish(state, session);
    }
    Py_DECREF(args[0]);
    Py_DECREF(importlib);
}
void BM_find_and_load_original(benchmark::State& state) { find_and_load(state, false); }
void BM_find_and_load_wrapped(benchmark::State& state) { find_and_load(state, true); }

constexpr int audit_events_per_iteration = 1000;

void audit_events(benchmark::State& state, bool recording) {
    ensure_interpreter();
    PyObject* globals = PyDict_New();
    PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins());
    PyObject* defined = PyRun_String("import sys\n"
                                     "def emit(n, audit=sys.audit):\n"
                                     "    for _ in range(n):\n"
                                     "        audit('os.bench')\n",
                                     Py_file_input, globals, globals);
    if (defined == nullptr) {
        PyErr_Print();
        std::abort();
    }
    Py_DECREF(defined);
    PyObject* emit = PyDict_GetItemString(globals, "emit");
    PyObject* count = PyLong_FromLong(audit_events_per_iteration);
    // Both variants run with the (process-wide, permanent) hook installed:
    // the difference is recording.
    {
        pycroscope::Session<py::IoCollector> once;
        once.add_sink(std::make_shared<CountingSink>());
        once.start();
        once.stop();
    }
    pycroscope::Session<py::IoCollector> session;
    session.add_sink(std::make_shared<CountingSink>());
    if (recording) {
        session.start();
    }
    for (auto _ : state) {
        PyObject* result = PyObject_CallOneArg(emit, count);
        Py_XDECREF(result);
    }
    if (recording) {
        finish(state, session);
    }
    state.counters["per_event"] =
        benchmark::Counter(static_cast<double>(state.iterations()) * audit_events_per_iteration,
                           benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
    Py_DECREF(count);
    Py_DECREF(globals);
}
void BM_audit_event_idle_hook(benchmark::State& state) { audit_events(state, false); }
void BM_audit_event_recording(benchmark::State& state) { audit_events(state, true); }

BENCHMARK(BM_gc_callback_pair);
BENCHMARK(BM_gc_collect0_plain)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_gc_collect0_with_collector)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_find_and_load_original);
BENCHMARK(BM_find_and_load_wrapped);
BENCHMARK(BM_audit_event_idle_hook)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_audit_event_recording)->Unit(benchmark::kMicrosecond);

} // namespace
