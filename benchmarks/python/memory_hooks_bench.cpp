// Per-allocation cost of the PyMem hooks (Google Benchmark), on one
// PyMem_Malloc + PyMem_Free pair of 64 bytes (pymalloc) per iteration, with
// the GIL held and a Python frame on the stack (the pair runs from a C
// function called by Python code, so attribution resolves a real line):
//
//   original     the wrapped allocator called directly: no hook at all
//   passthrough  through the hooks, no session recording (one branch)
//   full         MemoryCollector recording every block with its line, the
//                memory model draining (no sinks)
//   full_noattr  the same without line attribution
//   sampled      sampling mode, one record per about 512 KiB
//
// The whole-process figures come from memory_overhead.sh next to this file.

#define PYCROSCOPE_PYTHON 1
#include <pycroscope.hpp>

#include <benchmark/benchmark.h>

#include <memory>

namespace {

namespace py = pycroscope::python;

constexpr int pairs_per_call = 1000;

enum class Path { original, hooks };
Path g_path = Path::hooks;

PyObject* alloc_pairs(PyObject*, PyObject*) {
    if (g_path == Path::original) {
        const PyMemAllocatorEx& original = py::detail::memory_domains[1].original;
        for (int i = 0; i < pairs_per_call; ++i) {
            void* block = original.malloc(original.ctx, 64);
            benchmark::DoNotOptimize(block);
            original.free(original.ctx, block);
        }
    } else {
        for (int i = 0; i < pairs_per_call; ++i) {
            void* block = PyMem_Malloc(64);
            benchmark::DoNotOptimize(block);
            PyMem_Free(block);
        }
    }
    Py_RETURN_NONE;
}

PyMethodDef alloc_pairs_def{"alloc_pairs", &alloc_pairs, METH_NOARGS, nullptr};
PyObject* g_caller = nullptr; // a Python function that calls alloc_pairs()

void ensure_python() {
    if (g_caller != nullptr) {
        return;
    }
    if (!Py_IsInitialized()) {
        PyPreConfig preconfig;
        PyPreConfig_InitPythonConfig(&preconfig);
        Py_PreInitialize(&preconfig);
        py::install_memory_hooks();
        Py_InitializeEx(0);
    } else {
        py::install_memory_hooks(); // degraded, but the hook path is the same
    }
    PyObject* globals = PyDict_New();
    PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins());
    PyObject* function = PyCFunction_New(&alloc_pairs_def, nullptr);
    PyDict_SetItemString(globals, "alloc_pairs", function);
    Py_DECREF(function);
    PyObject* result = PyRun_String("def caller():\n    alloc_pairs()\n", Py_file_input, globals, globals);
    Py_XDECREF(result);
    g_caller = PyDict_GetItemString(globals, "caller");
    Py_INCREF(g_caller);
}

void run(benchmark::State& state, Path path) {
    g_path = path;
    for (auto _ : state) {
        PyObject* result = PyObject_CallNoArgs(g_caller);
        Py_XDECREF(result);
    }
    state.SetItemsProcessed(state.iterations() * pairs_per_call);
    state.counters["ns_per_pair"] = benchmark::Counter(static_cast<double>(state.iterations() * pairs_per_call),
                                                       benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void run_recording(benchmark::State& state, std::uint64_t sample_bytes, bool attribution) {
    ensure_python();
    pycroscope::Session<py::MemoryCollector> session;
    auto& collector = session.collector<py::MemoryCollector>();
    collector.options.sample_bytes = sample_bytes;
    collector.options.attribution = attribution;
    auto model = py::add_memory_model(session);
    session.start();
    run(state, Path::hooks);
    session.stop();
    state.counters["events"] = static_cast<double>(session.summary().total_events);
}

void BM_MemoryHooks_original(benchmark::State& state) {
    ensure_python();
    run(state, Path::original);
}
void BM_MemoryHooks_passthrough(benchmark::State& state) {
    ensure_python();
    run(state, Path::hooks);
}
void BM_MemoryHooks_full(benchmark::State& state) { run_recording(state, 0, true); }
void BM_MemoryHooks_full_noattr(benchmark::State& state) { run_recording(state, 0, false); }
void BM_MemoryHooks_sampled(benchmark::State& state) { run_recording(state, 512 * 1024, true); }

BENCHMARK(BM_MemoryHooks_original);
BENCHMARK(BM_MemoryHooks_passthrough);
BENCHMARK(BM_MemoryHooks_full);
BENCHMARK(BM_MemoryHooks_full_noattr);
BENCHMARK(BM_MemoryHooks_sampled);

} // namespace
