// The sampler's costs, in an embedded interpreter (Google Benchmark).
//
//   BM_SampleCollect/N/M   one round's GIL-held half (SamplingRound::collect):
//                          M Python threads parked N frames deep (plus the
//                          threading frames of Event.wait), walked, interned
//                          and staged. This is how long the program pauses
//                          per tick. per_frame = time / (N * M).
//   BM_SamplePublish/N/M   the other half, without the GIL: one CPU-clock read
//                          per thread (running vs idle) and the ring writes.
//   BM_AchievedRate/HZ/busy  a Sampler at HZ for one second while the main
//                          thread runs pure Python (busy=1: the sampler must
//                          win the GIL at eval-breaker points) or sleeps with
//                          the GIL released (busy=0). achieved_hz is the rate
//                          the sampler reached; GIL-bound ticks cap near
//                          1 / sys.getswitchinterval().
//
// Whole-process overhead at the default rate: overhead.sh (MODES="plain sample").

#define PYCROSCOPE_PYTHON 1
#include <pycroscope.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>

namespace {

namespace py = pycroscope::python;

PyObject* g_globals = nullptr;

void ensure_python() {
    if (g_globals != nullptr) {
        return;
    }
    if (!Py_IsInitialized()) { // other benchmarks in this binary may have started it
        Py_InitializeEx(0);
    }
    g_globals = PyDict_New();
    PyDict_SetItemString(g_globals, "__builtins__", PyEval_GetBuiltins());
    PyObject* result = PyRun_String(R"PY(
import threading, time

def park(depth, ready, release):
    if depth > 1:
        return park(depth - 1, ready, release)
    ready.release()
    release.wait()

def start_threads(count, depth):
    ready = threading.Semaphore(0)
    release = threading.Event()
    threads = [threading.Thread(target=park, args=(depth, ready, release)) for _ in range(count)]
    for t in threads:
        t.start()
    for _ in threads:
        ready.acquire()
    return release, threads

def stop_threads(handle):
    release, threads = handle
    release.set()
    for t in threads:
        t.join()

def spin(seconds):
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x += 1
)PY",
                                    Py_file_input, g_globals, g_globals);
    if (result == nullptr) {
        PyErr_Print();
        std::abort();
    }
    Py_DECREF(result);
}

PyObject* call(const char* name, PyObject* args) {
    PyObject* function = PyDict_GetItemString(g_globals, name);
    PyObject* result = PyObject_CallObject(function, args);
    Py_XDECREF(args);
    if (result == nullptr) {
        PyErr_Print();
        std::abort();
    }
    return result;
}

class NullSink : public pycroscope::Sink {
public:
    std::string describe() const override { return "null sink"; }
    void open(const pycroscope::SessionInfo&) override {}
    void consume(const pycroscope::ThreadInfo&, const pycroscope::Event*, std::size_t) override {}
    void close(const pycroscope::SessionSummary&) override {}
    void abort() noexcept override {}
};

// Parks M threads N frames deep for the benchmark's life.
struct ParkedThreads {
    ParkedThreads(long threads, long depth) {
        handle = call("start_threads", Py_BuildValue("(ll)", threads, depth));
    }
    ~ParkedThreads() { Py_DECREF(call("stop_threads", Py_BuildValue("(O)", handle))); }
    PyObject* handle;
};

void BM_SampleCollect(benchmark::State& state) {
    ensure_python();
    const long depth = state.range(0);
    const long threads = state.range(1);
    ParkedThreads parked(threads, depth);
    pycroscope::Session<pycroscope::NativeZones> session;
    session.add_sink(std::make_shared<NullSink>());
    session.start();
    py::detail::SamplingRound collector;
    PyThreadState* self = PyThreadState_Get();
    collector.collect(session.core(), self, nullptr); // interns the code objects once
    for (auto _ : state) {
        collector.collect(session.core(), self, nullptr);
    }
    state.counters["samples"] = static_cast<double>(collector.staged_samples());
    state.counters["frames"] = static_cast<double>(collector.staged_events() - collector.staged_samples());
    state.counters["per_frame"] = benchmark::Counter(
        static_cast<double>(state.iterations()) * static_cast<double>(collector.staged_events() - collector.staged_samples()),
        benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
    session.stop();
}
BENCHMARK(BM_SampleCollect)
    ->Args({10, 1})
    ->Args({50, 1})
    ->Args({200, 1})
    ->Args({10, 4})
    ->Args({50, 4})
    ->Args({50, 16})
    ->Unit(benchmark::kMicrosecond);

void BM_SamplePublish(benchmark::State& state) {
    ensure_python();
    ParkedThreads parked(state.range(1), state.range(0));
    pycroscope::Session<pycroscope::NativeZones> session;
    session.add_sink(std::make_shared<NullSink>());
    session.start();
    py::detail::SamplingRound collector;
    collector.collect(session.core(), PyThreadState_Get(), nullptr);
    const std::uint64_t epoch = session.core().epoch();
    for (auto _ : state) {
        benchmark::DoNotOptimize(collector.publish(epoch, true));
    }
    session.stop();
}
BENCHMARK(BM_SamplePublish)->Args({50, 1})->Args({50, 4})->Args({50, 16})->Unit(benchmark::kMicrosecond);

void BM_AchievedRate(benchmark::State& state) {
    ensure_python();
    const double requested = static_cast<double>(state.range(0));
    const bool busy = state.range(1) != 0;
    py::SamplerStats stats;
    for (auto _ : state) {
        pycroscope::Session<pycroscope::NativeZones, py::Sampler> session;
        session.add_sink(std::make_shared<NullSink>());
        session.collector<py::Sampler>().options.rate_hz = requested;
        session.collector<py::Sampler>().options.include_idle = true;
        session.start();
        if (busy) {
            Py_DECREF(call("spin", Py_BuildValue("(d)", 1.0)));
        } else {
            Py_BEGIN_ALLOW_THREADS std::this_thread::sleep_for(std::chrono::seconds(1));
            Py_END_ALLOW_THREADS
        }
        stats = session.collector<py::Sampler>().stats();
        session.stop();
    }
    state.counters["requested_hz"] = requested;
    state.counters["achieved_hz"] = stats.achieved_rate();
    state.counters["missed_ticks"] = static_cast<double>(stats.missed_ticks);
    state.counters["gil_wait_us"] = stats.ticks ? static_cast<double>(stats.gil_wait_ns) / 1e3 / stats.ticks : 0;
    state.counters["hold_us"] = stats.ticks ? static_cast<double>(stats.hold_ns) / 1e3 / stats.ticks : 0;
}
BENCHMARK(BM_AchievedRate)
    ->ArgsProduct({{100, 200, 500, 1000}, {0, 1}})
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

} // namespace
