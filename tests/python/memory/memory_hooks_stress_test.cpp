// The allocation hooks, the line tables and the tracer together, in a fresh
// interpreter under PYTHONMALLOC=malloc_debug (a threadsafe death test runs
// this binary again): freed blocks are overwritten there, so a hook that
// reads a block freed up the stack crashes instead of reading stale data,
// and a write past a block is reported when it is freed. The co_extra
// slots are requested in the order of `pycroscope profile`: the line
// tables' (a memory-only session) before the tracer's, so that code objects
// already carrying a line table get the tracer's slot while the hooks
// record. Each round then mixes Python threads that create and call new
// functions, a native thread calling PyMem_Raw* without the GIL, and
// reallocs of every domain across sizes, growing and shrinking, from and to
// zero; in full and sampling mode, under both tracer backends.

#include "python/event_capture.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

namespace memory_hooks_stress_test {
namespace {

using namespace pycroscope;
using pycroscope_test::EventCapture;
using pycroscope_test::Ref;

constexpr int stress_threads = 3;  // Python threads besides the main one
constexpr int stress_functions = 30; // new functions per thread and round
constexpr int stress_calls = 3;
constexpr int native_rounds = 2000;
constexpr std::uint64_t native_marker = 70001; // the native thread's largest block

// make_functions() compiles fn_<tag>_<i> in file <gen_<tag>_<i>>; its line 2
// allocates bytearray(200 + i): a block of 201 + i bytes (bytearray keeps a
// NUL), made by a realloc from null, `calls` times per call.
const char* const stress_workload = R"PY(
import threading

def make_functions(tag, count):
    made = []
    for i in range(count):
        name = "fn_%s_%d" % (tag, i)
        source = "def %s(n):\n    return [bytearray(%d) for _ in range(n)]\n" % (name, 200 + i)
        space = {}
        exec(compile(source, "<gen_%s_%d>" % (tag, i), "exec"), space)
        made.append(space[name])
    return made

def resize(rounds):
    text = bytearray()
    items = []
    for _ in range(rounds):
        for size in (10, 700, 3, 0, 5000, 0, 90000, 1):
            text[:] = b"x" * size
            del items[size // 100:]
            items.extend(range(size // 50))
    return len(text) + len(items)

def worker(tag, count, calls):
    for function in make_functions(tag, count):
        function(calls)
    resize(5)

def run(tag, threads, count, calls):
    started = [threading.Thread(target=worker, args=("%s_t%d" % (tag, t), count, calls)) for t in range(threads)]
    for thread in started:
        thread.start()
    worker(tag + "_main", count, calls)
    for thread in started:
        thread.join()
)PY";

// PyMem_RawRealloc without the GIL (and without a thread state): from null,
// growing, shrinking, to zero and back. Five blocks made, five freed.
void native_reallocs() {
    for (int i = 0; i < native_rounds; ++i) {
        void* block = PyMem_RawRealloc(nullptr, 24);
        block = PyMem_RawRealloc(block, native_marker);
        block = PyMem_RawRealloc(block, 3);
        block = PyMem_RawRealloc(block, 0);
        block = PyMem_RawRealloc(block, 5000);
        PyMem_RawFree(block);
    }
}

// The same from C with the GIL, in MEM and OBJ: across pymalloc's 512-byte
// limit (a larger block goes to RAW), to zero and back.
void gil_reallocs() {
    for (int i = 0; i < 500; ++i) {
        void* a = PyMem_Realloc(nullptr, 40);
        void* b = PyObject_Realloc(nullptr, 0);
        a = PyMem_Realloc(a, 600);
        b = PyObject_Realloc(b, 448);
        a = PyMem_Realloc(a, 0);
        b = PyObject_Realloc(b, 100'000);
        a = PyMem_Realloc(a, 16);
        b = PyObject_Realloc(b, 8);
        PyMem_Free(a);
        PyObject_Free(b);
    }
}

using StressSession = Session<python::MemoryCollector, python::PythonTracer>;

// One round; failures are written to report.
void stress_round(PyObject* workload, python::Backend backend, std::uint64_t sample_bytes, std::ostream& report) {
    std::ostringstream label;
    label << python::to_string(backend) << (sample_bytes == 0 ? " full" : " sampled") << ": ";
    python::MemoryOptions memory;
    memory.sample_bytes = sample_bytes;
    StressSession session(python::memory_tracking_config({}, memory));
    session.collector<python::MemoryCollector>().options = memory;
    session.collector<python::PythonTracer>().options =
        backend == python::Backend::eval_frame ? pycroscope_test::eval_frame_options()
                                               : pycroscope_test::profile_options();
    auto model = python::add_memory_model(session);
    auto capture = std::make_shared<EventCapture>();
    session.add_sink(capture);
    session.start();

    std::atomic<bool> go{false};
    std::thread native([&] {
        while (!go.load()) {
            std::this_thread::yield();
        }
        native_reallocs();
    });
    go.store(true);
    gil_reallocs();
    const std::string tag = std::string(python::to_string(backend)) + (sample_bytes == 0 ? "_full" : "_sampled");
    Ref args(Py_BuildValue("(siii)", tag.c_str(), stress_threads, stress_functions, stress_calls));
    Ref result = pycroscope_test::call(workload, "run", args.get());
    Py_BEGIN_ALLOW_THREADS native.join();
    Py_END_ALLOW_THREADS
    gil_reallocs();
    session.stop();
    if (!result) {
        report << label.str() << "run() raised\n";
        return;
    }

    // Every new function: one call, under its own name.
    std::map<std::string, int> calls;
    std::map<std::string, int> attributed; // file -> blocks of its size at line 2
    std::uint64_t native_allocs = 0, native_frees = 0, native_known = 0;
    for (const auto& entry : capture->by_thread()) {
        bool native_thread = false;
        for (const Event& e : entry.second) {
            native_thread = native_thread || (e.kind == EventKind::mem_alloc && memory_bytes(e) == native_marker &&
                                              (e.flags & memory_flags::domain_mask) == 0);
        }
        for (const Event& e : entry.second) {
            const SourceLocation* where = e.location();
            if (e.kind == EventKind::py_call && where != nullptr &&
                std::string(where->display_name()).rfind("fn_" + tag, 0) == 0 &&
                std::string(where->display_name()).find('.') == std::string::npos) { // not its <listcomp>
                ++calls[where->display_name()];
            } else if (native_thread && e.kind == EventKind::mem_alloc) {
                ++native_allocs;
            } else if (native_thread && e.kind == EventKind::mem_free) {
                ++native_frees;
                native_known += (e.flags & memory_flags::known) != 0 ? 1 : 0;
            } else if (e.kind == EventKind::mem_alloc && where != nullptr && where->line == 2 &&
                       std::string(where->file).rfind("<gen_" + tag, 0) == 0) {
                const std::string file = where->file;
                const int index = std::atoi(file.substr(file.rfind('_') + 1).c_str());
                attributed[file] += memory_bytes(e) == static_cast<std::uint64_t>(201 + index) ? 1 : 0;
            }
        }
    }
    const int expected_functions = (stress_threads + 1) * stress_functions;
    if (static_cast<int>(calls.size()) != expected_functions) {
        report << label.str() << calls.size() << " new functions seen called, expected " << expected_functions << "\n";
    }
    for (const auto& entry : calls) {
        if (entry.second != 1) {
            report << label.str() << entry.first << " called " << entry.second << " times\n";
        }
    }
    if (capture->summary().total_lost != 0) {
        report << label.str() << capture->summary().total_lost << " events lost\n";
    }
    if (sample_bytes != 0) {
        if (model->unknown_frees() != 0) { // sampling records the frees of sampled blocks only
            report << label.str() << model->unknown_frees() << " unknown frees\n";
        }
        return;
    }
    // Full mode: exact counts.
    if (native_allocs != 5u * native_rounds || native_frees != 5u * native_rounds || native_known != native_frees) {
        report << label.str() << "native thread: " << native_allocs << " allocations, " << native_frees << " frees ("
               << native_known << " known), expected " << 5 * native_rounds << "\n";
    }
    if (static_cast<int>(attributed.size()) != expected_functions) {
        report << label.str() << attributed.size() << " new functions with allocations at their line 2, expected "
               << expected_functions << "\n";
    }
    for (const auto& entry : attributed) {
        if (entry.second != stress_calls) {
            report << label.str() << entry.first << ": " << entry.second << " blocks of its size at line 2, expected "
                   << stress_calls << "\n";
        }
    }
}

void stress_in_fresh_interpreter() {
    std::ostringstream report;
    {
        Ref workload = pycroscope_test::exec_module(stress_workload, "stress_workload.py");
        if (!workload) {
            std::fprintf(stderr, "the workload did not load\n");
            std::_Exit(2);
        }
        {
            // Memory only: the line-table slot first, and tables on the workload's code.
            Session<python::MemoryCollector> memory_only;
            memory_only.start();
            Ref args(Py_BuildValue("(siii)", "warm", 1, 2, 1));
            Ref result = pycroscope_test::call(workload.get(), "run", args.get());
            memory_only.stop();
            if (!result) {
                report << "warm-up: run() raised\n";
            }
        }
        for (const python::Backend backend : {python::Backend::profile, python::Backend::eval_frame}) {
#if !PYCROSCOPE_HAS_EVAL_FRAME_BACKEND
            if (backend == python::Backend::eval_frame) {
                continue;
            }
#endif
            for (const std::uint64_t sample_bytes : {std::uint64_t{0}, std::uint64_t{4096}}) {
                stress_round(workload.get(), backend, sample_bytes, report);
            }
        }
    }
    const std::string failures = report.str();
    std::fprintf(stderr, "%s%s", failures.c_str(), failures.empty() ? "stress: every check passed\n" : "");
    std::fflush(stderr);
    std::_Exit(failures.empty() ? 0 : 1);
}

TEST(MemoryHooksStress, ThreadsReallocsAndNewCodeUnderTheTracerNeverCorruptMemory) {
    const std::string style = GTEST_FLAG_GET(death_test_style);
    GTEST_FLAG_SET(death_test_style, "threadsafe"); // a fresh process: the child initialises its own interpreter
    const char* previous = std::getenv("PYTHONMALLOC");
    const std::string saved = previous != nullptr ? previous : "";
    setenv("PYTHONMALLOC", "malloc_debug", 1);
    EXPECT_EXIT(
        {
            pycroscope_test::ensure_python();
            stress_in_fresh_interpreter();
        },
        ::testing::ExitedWithCode(0), "stress: every check passed");
    if (previous != nullptr) {
        setenv("PYTHONMALLOC", saved.c_str(), 1);
    } else {
        unsetenv("PYTHONMALLOC");
    }
    GTEST_FLAG_SET(death_test_style, style);
}

} // namespace
} // namespace memory_hooks_stress_test
