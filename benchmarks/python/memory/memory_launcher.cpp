// `python3` with Pycroscope's allocator hooks: the launcher memory_overhead.sh
// times. Like python_launcher.c (Py_BytesMain on the shared libpython), plus,
// per PYCROSCOPE_MEMORY_MODE:
//   plain        nothing installed
//   passthrough  hooks installed (after Py_PreInitialize), no session
//   full         a session with the MemoryCollector (every allocation, line
//                attribution) + memory model + session.json and memory.folded
//   sampled:N    the same in sampling mode, one record per about N bytes
//   clock        the floor under full tracking: hooks of their own (not
//                Pycroscope's) that read the clock once per allocation and
//                once per free and record nothing
// Outputs go to PYCROSCOPE_MEMORY_OUT (default: a directory under /tmp).
//
//   c++ -std=c++17 -O2 -I include memory_launcher.cpp $(pkg-config --cflags --libs python3-embed) -pthread

#define PYCROSCOPE_PYTHON 1
#include <pycroscope.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

namespace {

// The "clock" mode's hooks: the original allocator plus one clock read.
struct ClockHook {
    PyMemAllocatorDomain domain;
    PyMemAllocatorEx original;
};
ClockHook clock_hooks[] = {{PYMEM_DOMAIN_RAW, {}}, {PYMEM_DOMAIN_MEM, {}}, {PYMEM_DOMAIN_OBJ, {}}};
volatile std::uint64_t last_clock; // written so the reads stay; read by nobody

void* clock_malloc(void* context, std::size_t size) {
    const auto& hook = *static_cast<const ClockHook*>(context);
    last_clock = pycroscope::clock::now();
    return hook.original.malloc(hook.original.ctx, size);
}
void* clock_calloc(void* context, std::size_t count, std::size_t size) {
    const auto& hook = *static_cast<const ClockHook*>(context);
    last_clock = pycroscope::clock::now();
    return hook.original.calloc(hook.original.ctx, count, size);
}
void* clock_realloc(void* context, void* address, std::size_t size) {
    const auto& hook = *static_cast<const ClockHook*>(context);
    last_clock = pycroscope::clock::now();
    return hook.original.realloc(hook.original.ctx, address, size);
}
void clock_free(void* context, void* address) {
    const auto& hook = *static_cast<const ClockHook*>(context);
    last_clock = pycroscope::clock::now();
    hook.original.free(hook.original.ctx, address);
}

void install_clock_hooks() {
    pycroscope::clock::select(pycroscope::ClockSource::automatic); // TSC when invariant, as a session would
    for (ClockHook& hook : clock_hooks) {
        PyMem_GetAllocator(hook.domain, &hook.original);
        PyMemAllocatorEx wrapped{&hook, clock_malloc, clock_calloc, clock_realloc, clock_free};
        PyMem_SetAllocator(hook.domain, &wrapped);
    }
}

} // namespace

int main(int argc, char** argv) {
    namespace py = pycroscope::python;
    const char* env = std::getenv("PYCROSCOPE_MEMORY_MODE");
    const std::string mode = env != nullptr ? env : "plain";
    if (mode == "plain") {
        return Py_BytesMain(argc, argv);
    }
    PyPreConfig preconfig;
    PyPreConfig_InitPythonConfig(&preconfig);
    preconfig.parse_argv = 0;
    if (PyStatus_Exception(Py_PreInitialize(&preconfig))) {
        std::fprintf(stderr, "memory_launcher: Py_PreInitialize failed\n");
        return 2;
    }
    if (mode == "clock") {
        install_clock_hooks();
        return Py_BytesMain(argc, argv);
    }
    py::install_memory_hooks();
    if (mode == "passthrough") {
        return Py_BytesMain(argc, argv);
    }
    std::uint64_t sample_bytes = 0;
    if (mode.rfind("sampled:", 0) == 0) {
        sample_bytes = std::strtoull(mode.c_str() + 8, nullptr, 10);
    } else if (mode != "full") {
        std::fprintf(stderr, "memory_launcher: unknown PYCROSCOPE_MEMORY_MODE '%s'\n", mode.c_str());
        return 2;
    }
    const char* out_env = std::getenv("PYCROSCOPE_MEMORY_OUT");
    const std::string out = out_env != nullptr ? out_env : "/tmp/pycroscope_memory_launcher";
    std::filesystem::create_directories(out);
    int status = 0;
    {
        py::MemoryOptions memory;
        memory.sample_bytes = sample_bytes;
        // The ring pycroscope profile gives full tracking: measure what ships.
        pycroscope::Session<py::MemoryCollector> session(py::memory_tracking_config({}, memory));
        session.collector<py::MemoryCollector>().options = memory;
        auto model = py::add_memory_model(session);
        auto json = session.add_sink<pycroscope::sinks::JsonSummarySink>(out + "/session.json");
        py::add_memory_section(*json, model, session.collector<py::MemoryCollector>());
        session.add_sink<pycroscope::sinks::MemoryFoldedSink>(out + "/memory.folded");
        session.start();
        status = Py_BytesMain(argc, argv); // runs the script and finalizes; the hooks need no interpreter
        session.stop();
        std::fprintf(stderr, "memory_launcher: peak %llu bytes, %llu allocations, %llu events (%llu lost)\n",
                     static_cast<unsigned long long>(model->peak().bytes),
                     static_cast<unsigned long long>(model->allocations()),
                     static_cast<unsigned long long>(session.summary().total_events),
                     static_cast<unsigned long long>(session.summary().total_lost));
    }
    return status;
}
