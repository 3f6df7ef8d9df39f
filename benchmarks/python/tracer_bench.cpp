// Per-call cost of the Python tracer's hot path, in an embedded interpreter
// (Google Benchmark). The workload is fib(20) (21891 Python calls, nothing
// else), so time per iteration / 21891 is the cost of one call + return.
//
//   plain            no hook at all (3.11 inlines the Python-to-Python calls)
//   noop_eval_hook   a PEP 523 function that only forwards: the price of
//                    leaving the inlined call path, before any recording
//   timestamps_eval_hook  forwards and reads the session clock twice: the
//                    floor of any recorder that timestamps calls and returns
//   eval_frame       PythonTracer, eval_frame backend, events to a null sink
//   noop_profile_function  PyEval_SetProfile with a C function that returns
//                    0: the floor of the profile backend (on 3.11 any profile
//                    function also makes every opcode take the tracing path)
//   profile          PythonTracer, profile backend (C calls on), null sink
//
// The overhead benchmark of whole processes is overhead.sh next to this file.

#define PYCROSCOPE_PYTHON 1
#include <pycroscope.hpp>

#include <benchmark/benchmark.h>

#include <cstdio>
#include <memory>

namespace {

namespace py = pycroscope::python;

PyObject* g_fib = nullptr;
constexpr double calls_per_iteration = 21891; // fib(20)

void ensure_python() {
    if (g_fib != nullptr) {
        return;
    }
    if (!Py_IsInitialized()) { // other benchmarks in this binary may have started it
        Py_InitializeEx(0);
    }
    PyObject* globals = PyDict_New();
    PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins());
    PyObject* result = PyRun_String("def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
                                    Py_file_input, globals, globals);
    if (result == nullptr) {
        PyErr_Print();
        std::abort();
    }
    Py_DECREF(result);
    g_fib = PyDict_GetItemString(globals, "fib");
    Py_INCREF(g_fib);
    Py_DECREF(globals);
}

void run_fib(benchmark::State& state) {
    PyObject* arg = PyLong_FromLong(20);
    for (auto _ : state) {
        PyObject* result = PyObject_CallOneArg(g_fib, arg);
        if (result == nullptr) {
            PyErr_Print();
            state.SkipWithError("fib raised");
            break;
        }
        Py_DECREF(result);
    }
    Py_DECREF(arg);
    state.counters["per_call"] = benchmark::Counter(static_cast<double>(state.iterations()) * calls_per_iteration,
                                                       benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

class NullSink : public pycroscope::Sink {
public:
    std::string describe() const override { return "null sink"; }
    void open(const pycroscope::SessionInfo&) override {}
    void consume(const pycroscope::ThreadInfo&, const pycroscope::Event*, std::size_t count) override {
        events += count;
    }
    void close(const pycroscope::SessionSummary&) override {}
    void abort() noexcept override {}
    std::size_t events = 0;
};

void BM_fib_plain(benchmark::State& state) {
    ensure_python();
    run_fib(state);
}

#if PYCROSCOPE_HAS_EVAL_FRAME_BACKEND
PyObject* forward(PyThreadState* tstate, py::compat::EvalFrame* frame, int throwflag) {
    return py::compat::default_eval_frame()(tstate, frame, throwflag);
}

void BM_fib_noop_eval_hook(benchmark::State& state) {
    ensure_python();
    PyInterpreterState* interp = PyInterpreterState_Get();
    py::compat::set_eval_frame(interp, &forward);
    run_fib(state);
    py::compat::set_eval_frame(interp, py::compat::default_eval_frame());
}

std::uint64_t g_clock_sink = 0;
PyObject* forward_with_timestamps(PyThreadState* tstate, py::compat::EvalFrame* frame, int throwflag) {
    g_clock_sink += pycroscope::clock::now();
    PyObject* result = py::compat::default_eval_frame()(tstate, frame, throwflag);
    g_clock_sink += pycroscope::clock::now();
    return result;
}

void BM_fib_timestamps_eval_hook(benchmark::State& state) {
    ensure_python();
    (void)pycroscope::clock::select(pycroscope::ClockSource::automatic); // the clock a session uses
    PyInterpreterState* interp = PyInterpreterState_Get();
    py::compat::set_eval_frame(interp, &forward_with_timestamps);
    run_fib(state);
    py::compat::set_eval_frame(interp, py::compat::default_eval_frame());
    benchmark::DoNotOptimize(g_clock_sink);
}
#endif

int noop_profile(PyObject*, PyFrameObject*, int, PyObject*) { return 0; }

void BM_fib_noop_profile_function(benchmark::State& state) {
    ensure_python();
    PyEval_SetProfile(&noop_profile, nullptr);
    run_fib(state);
    PyEval_SetProfile(nullptr, nullptr);
}

void traced(benchmark::State& state, py::Backend backend, bool c_calls) {
    ensure_python();
    pycroscope::Session<pycroscope::NativeZones, py::PythonTracer> session;
    session.add_sink(std::make_shared<NullSink>());
    auto& tracer = session.collector<py::PythonTracer>();
    tracer.options.backend = backend;
    tracer.options.c_calls = c_calls;
    session.start();
    run_fib(state);
    const auto summary = session.stop();
    if (summary.total_lost != 0) {
        state.SkipWithError("events were lost");
    }
}

void BM_fib_eval_frame(benchmark::State& state) { traced(state, py::Backend::eval_frame, false); }
void BM_fib_profile(benchmark::State& state) { traced(state, py::Backend::profile, true); }

BENCHMARK(BM_fib_plain)->Unit(benchmark::kMicrosecond);
#if PYCROSCOPE_HAS_EVAL_FRAME_BACKEND
BENCHMARK(BM_fib_noop_eval_hook)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_fib_timestamps_eval_hook)->Unit(benchmark::kMicrosecond);
#endif
BENCHMARK(BM_fib_eval_frame)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_fib_noop_profile_function)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_fib_profile)->Unit(benchmark::kMicrosecond);

} // namespace
