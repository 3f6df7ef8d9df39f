// Thread coverage: Python calls on every kind of thread land, with exact
// counts, in that thread's own buffer, for both backends:
//  - threading threads that exist before start (blocked on an Event),
//  - a threading thread and a _thread.start_new_thread thread started later,
//  - a native std::thread that enters Python through PyGILState_Ensure,
//  - the main (test) thread itself.
// Threads started later are found by a PEP 523 hook (3.9-3.11) or a
// sys.monitoring callback (3.12+); the tests below cover what each holds and
// what happens when another tool holds it first, a thread whose first frame
// resumes a generator, and a discovery with no thread profiled at the time.

#include "python/event_capture.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace threads_test {
namespace {

using namespace pycroscope_test;
using pycroscope::EventKind;
using pycroscope::python::PythonTracer;

// What both workloads below start with.
constexpr const char* kPrelude = R"PY(
import sys
import threading
import time
import _thread

def leaf():
    return 1

def repeat(n):
    for _ in range(n):
        leaf()

def wait_for_threads_to_end(deadline=20.0):
    end = time.monotonic() + deadline
    while _thread._count() > 0 and time.monotonic() < end:
        time.sleep(0.001)
    return _thread._count()
)PY";

const std::string kThreads = std::string(kPrelude).append(R"PY(
def pre_a():
    repeat(3)

def pre_b():
    repeat(5)

def later_threading():
    repeat(7)

def later_thread():
    repeat(9)

def native_entry():
    repeat(11)

def main_side():
    repeat(2)

go = threading.Event()
ready = []

def pre_body(fn, flag):
    flag.set()
    go.wait()
    fn()

def start_pre():
    global pre
    pre = []
    for fn in (pre_a, pre_b):
        flag = threading.Event()
        ready.append(flag)
        pre.append(threading.Thread(target=pre_body, args=(fn, flag)))
    for t in pre:
        t.start()
    for flag in ready:
        flag.wait()

def run_later():
    go.set()
    for t in pre:
        t.join()
    t = threading.Thread(target=later_threading)
    t.start()
    t.join()
    done = _thread.allocate_lock()
    done.acquire()
    def low_level():
        try:
            later_thread()
        finally:
            done.release()
    _thread.start_new_thread(low_level, ())
    done.acquire()
    main_side()
    return wait_for_threads_to_end()
)PY");

constexpr const char* kFile = "threads_workload.py";

class ThreadsTest : public ::testing::TestWithParam<BackendCase> {
protected:
    void SetUp() override { ensure_python(); }
};

TEST_P(ThreadsTest, EveryThreadsCallsLandInItsOwnBufferWithExactCounts) {
    Ref ns = exec_module(kThreads, kFile);
    ASSERT_TRUE(ns);
    {
        Ref ended = call(ns.get(), "wait_for_threads_to_end");
        ASSERT_EQ(as_long(ended.get()), 0) << "threads of an earlier test are still running";
    }
    ASSERT_TRUE(call(ns.get(), "start_pre")); // two threads now wait on an Event

    PySession session;
    auto capture = std::make_shared<EventCapture>();
    session.add_sink(capture);
    session.collector<PythonTracer>().options = GetParam().options;
    session.start();

    Ref remaining = call(ns.get(), "run_later");
    ASSERT_TRUE(remaining);
    EXPECT_EQ(as_long(remaining.get()), 0);

    // A native thread with no Python thread state of its own.
    PyObject* native_entry = PyDict_GetItemString(ns.get(), "native_entry");
    bool native_ok = false;
    std::thread native([&] {
        const PyGILState_STATE gil = PyGILState_Ensure();
        PyObject* result = PyObject_CallNoArgs(native_entry);
        native_ok = result != nullptr;
        if (result == nullptr) {
            PyErr_Print();
        }
        Py_XDECREF(result);
        PyGILState_Release(gil);
    });
    Py_BEGIN_ALLOW_THREADS
    native.join();
    Py_END_ALLOW_THREADS
    EXPECT_TRUE(native_ok);

    const auto summary = session.stop();
    EXPECT_EQ(summary.total_lost, 0u);

    // Which buffer holds which entry function, and what else it holds.
    const std::map<std::string, std::pair<std::string, std::uint64_t>> expected = {
        // entry -> (the function it repeats, times)
        {"pre_a", {"leaf", 3}},        {"pre_b", {"leaf", 5}},         {"later_threading", {"leaf", 7}},
        {"later_thread", {"leaf", 9}}, {"native_entry", {"leaf", 11}}, {"main_side", {"leaf", 2}},
    };
    std::map<std::string, std::uint32_t> buffer_of;
    std::set<std::uint64_t> os_tids;
    const auto threads = capture->threads();
    for (const auto& thread : capture->by_thread()) {
        CallCounts counts = call_counts(thread.second, kFile);
        std::map<std::string, std::uint64_t> by_name;
        for (const auto& c : counts) {
            by_name[std::get<2>(c.first)] += c.second;
        }
        for (const auto& entry : expected) {
            if (by_name.count(entry.first) == 0) {
                continue;
            }
            EXPECT_EQ(buffer_of.count(entry.first), 0u) << entry.first << " appears in two buffers";
            buffer_of[entry.first] = thread.first;
            EXPECT_EQ(by_name[entry.first], 1u) << entry.first;
            EXPECT_EQ(by_name["repeat"], 1u) << "thread of " << entry.first;
            EXPECT_EQ(by_name[entry.second.first], entry.second.second) << "thread of " << entry.first;
            os_tids.insert(threads.at(thread.first).os_tid);
        }
        const Reconstruction r = reconstruct(thread.second);
        EXPECT_EQ(r.unmatched_ends, 0u) << "thread " << thread.first << "\n" << r.problems;
        EXPECT_EQ(r.mismatched, 0u) << "thread " << thread.first << "\n" << r.problems;
        for (int open : r.open_at_end) {
            EXPECT_NE(r.spans[static_cast<std::size_t>(open)].flags & pycroscope::event_flags::synthetic, 0)
                << "thread " << thread.first << ": " << r.path(open);
        }
    }
    EXPECT_EQ(buffer_of.size(), expected.size());
    std::set<std::uint32_t> distinct;
    for (const auto& b : buffer_of) {
        distinct.insert(b.second);
    }
    EXPECT_EQ(distinct.size(), expected.size()) << "each thread has its own buffer (ThreadInfo.index)";
    EXPECT_EQ(os_tids.size(), expected.size()) << "and its own OS thread";

    // The main thread also holds run_later; the pre-existing threads were
    // inside pre_body when recording began: a synthetic span, not a call.
    const auto main_events = capture->by_thread().at(buffer_of.at("main_side"));
    EXPECT_EQ(count_calls(main_events, "run_later"), 1u);
    const auto pre_events = capture->by_thread().at(buffer_of.at("pre_a"));
    EXPECT_EQ(count_calls(pre_events, "pre_body"), 0u);
    bool synthetic_pre_body = false;
    for (const auto& e : pre_events) {
        synthetic_pre_body |= e.kind == EventKind::py_call && std::string(e.location()->display_name()) == "pre_body" &&
                              (e.flags & pycroscope::event_flags::synthetic) != 0;
    }
    EXPECT_TRUE(synthetic_pre_body);
}

INSTANTIATE_TEST_SUITE_P(Backends, ThreadsTest, ::testing::ValuesIn(backend_cases()), backend_case_name);

// ---------------------------------------------------------------------------
// Thread discovery (profile backend)
// ---------------------------------------------------------------------------

namespace compat = pycroscope::python::compat;
using pycroscope::python::ConflictPolicy;
using pycroscope::python::TracerOptions;

const std::string kDiscovery = std::string(kPrelude).append(R"PY(
def main_side():
    repeat(2)

def later_threading():
    repeat(7)

def start_later():
    t = threading.Thread(target=later_threading)
    t.start()
    t.join()

def run():
    main_side()
    start_later()

def other_profiler(frame, event, arg):
    pass

def drop_profile_then_start_later():
    sys.setprofile(other_profiler)  # Pycroscope steps aside on this thread
    sys.setprofile(None)            # now no thread has a profile function
    start_later()

def gen(resumed):
    yield 1
    leaf()
    resumed.release()
    yield 2

def resume_in_new_thread():
    resumed = _thread.allocate_lock()
    resumed.acquire()
    g = gen(resumed)
    next(g)
    # The new thread's first Python frame is the generator, resumed.
    _thread.start_new_thread(g.__next__, ())
    resumed.acquire()
    return wait_for_threads_to_end()  # started for sure: _count() is reliable

def claim_tools(*tools):
    for tool in tools:
        sys.monitoring.use_tool_id(tool, "another tool")

def release_tools():
    for tool in range(6):
        if sys.monitoring.get_tool(tool) == "another tool":
            sys.monitoring.free_tool_id(tool)

def tool_owner(tool):
    return str(sys.monitoring.get_tool(tool))
)PY");

constexpr const char* kDiscoveryFile = "discovery_workload.py";

// A debugger's or JIT's PEP 523 function: counts frames and forwards them.
std::atomic<std::uint64_t> g_foreign_frames{0};
PyObject* foreign_eval(PyThreadState* tstate, compat::EvalFrame* frame, int throwflag) {
    g_foreign_frames.fetch_add(1, std::memory_order_relaxed);
    return compat::default_eval_frame()(tstate, frame, throwflag);
}


bool any_conflict_contains(const PythonTracer& tracer, const std::string& text) {
    for (const auto& c : tracer.conflicts()) {
        if (c.find(text) != std::string::npos) {
            return true;
        }
    }
    return false;
}

// Calls of later_threading per buffer that has any, the leaf calls in those
// buffers, and that every buffer is balanced.
std::vector<std::uint64_t> later_thread_counts(const EventCapture& capture, std::uint64_t& leaf_in_later) {
    std::vector<std::uint64_t> found;
    leaf_in_later = 0;
    for (const auto& thread : capture.by_thread()) {
        const std::uint64_t n = count_calls(thread.second, "later_threading");
        if (n != 0) {
            found.push_back(n);
            leaf_in_later += count_calls(thread.second, "leaf");
        }
        const Reconstruction r = reconstruct(thread.second);
        EXPECT_EQ(r.unmatched_ends, 0u) << "thread " << thread.first << "\n" << r.problems;
        EXPECT_EQ(r.mismatched, 0u) << "thread " << thread.first << "\n" << r.problems;
    }
    return found;
}

class ThreadDiscovery : public ::testing::Test {
protected:
    void SetUp() override {
        ensure_python();
        ns_ = exec_module(kDiscovery, kDiscoveryFile);
        ASSERT_TRUE(ns_);
        Ref running = call(ns_.get(), "wait_for_threads_to_end");
        ASSERT_EQ(as_long(running.get()), 0) << "threads of an earlier test are still running";
    }
    void TearDown() override {
        PyInterpreterState* interp = PyInterpreterState_Get();
        if (compat::current_eval_frame(interp) == &foreign_eval) {
            compat::set_eval_frame(interp, compat::default_eval_frame());
        }
        if (ns_) {
            exec_in(ns_.get(), "sys.setprofile(None)\n");
#if PYCROSCOPE_HAS_SYS_MONITORING
            call(ns_.get(), "release_tools");
#endif
        }
    }
    static void install_foreign() {
        compat::set_eval_frame(PyInterpreterState_Get(), &foreign_eval);
        g_foreign_frames.store(0);
    }
    static bool foreign_installed() {
        return compat::current_eval_frame(PyInterpreterState_Get()) == &foreign_eval;
    }
    std::string tool_owner(int tool) {
        Ref args(Py_BuildValue("(i)", tool));
        Ref owner = call(ns_.get(), "tool_owner", args.get());
        const char* text = owner ? PyUnicode_AsUTF8(owner.get()) : nullptr;
        return text != nullptr ? text : "?";
    }
    Ref ns_;
};

TEST_F(ThreadDiscovery, ThreadWhoseFirstFrameResumesAGeneratorIsCountedExactly) {
    PySession session;
    auto capture = std::make_shared<EventCapture>();
    session.add_sink(capture);
    session.collector<PythonTracer>().options = profile_options();
    session.start();
    Ref remaining = call(ns_.get(), "resume_in_new_thread");
    session.stop();
    ASSERT_TRUE(remaining);
    EXPECT_EQ(as_long(remaining.get()), 0);

    std::size_t mains = 0, others = 0;
    for (const auto& thread : capture->by_thread()) {
        if (count_calls(thread.second, "resume_in_new_thread") != 0) {
            ++mains; // holds the first run and the close when g is freed
            continue;
        }
        ++others;
        EXPECT_EQ(count_calls(thread.second, "gen"), 1u) << "the resume, in the new thread's buffer";
        EXPECT_EQ(count_calls(thread.second, "leaf"), 1u);
        const Reconstruction r = reconstruct(thread.second);
        EXPECT_EQ(r.unmatched_ends + r.mismatched, 0u) << r.problems;
        EXPECT_TRUE(r.open_at_end.empty());
    }
    EXPECT_EQ(mains, 1u);
    EXPECT_EQ(others, 1u);
}

// On 3.12+ the profile function is a sys.monitoring tool shared by the
// interpreter: with no thread left using it, its events are off, and the
// discovery of a new thread turns them back on from inside its first frame.
TEST_F(ThreadDiscovery, NewThreadIsTracedAfterEveryOtherThreadDroppedTheProfileFunction) {
    PySession session;
    auto capture = std::make_shared<EventCapture>();
    session.add_sink(capture);
    auto& tracer = session.collector<PythonTracer>();
    tracer.options = profile_with(ConflictPolicy::step_aside);
    session.start();
    ASSERT_TRUE(call(ns_.get(), "drop_profile_then_start_later"));
    session.stop();

    std::uint64_t leaf_in_later = 0;
    EXPECT_EQ(later_thread_counts(*capture, leaf_in_later), std::vector<std::uint64_t>{1u});
    EXPECT_EQ(leaf_in_later, 7u);
    EXPECT_TRUE(any_conflict_contains(tracer, "stepped aside"));
}

#if PYCROSCOPE_HAS_EVAL_FRAME_BACKEND
// 3.9-3.11: discovery is the PEP 523 hook, and another PEP 523 function is a
// conflict.

TEST_F(ThreadDiscovery, FailPolicyRefusesAForeignEvalFrameFunction) {
    install_foreign();
    PySession session;
    auto capture = std::make_shared<EventCapture>();
    session.add_sink(capture);
    session.collector<PythonTracer>().options = profile_with(ConflictPolicy::fail);
    expect_start_refused(session, "PEP 523");
    EXPECT_TRUE(foreign_installed()) << "the other tool keeps the slot";
    EXPECT_EQ(compat::profile_function(PyThreadState_Get()), nullptr) << "no profile function left behind";
    ASSERT_TRUE(call(ns_.get(), "run"));
    EXPECT_GT(g_foreign_frames.load(), 0u);
    EXPECT_TRUE(capture->all().empty());
}

TEST_F(ThreadDiscovery, StepAsideLeavesTheSlotAndSaysLaterThreadsAreNotTraced) {
    install_foreign();
    PySession session;
    auto capture = std::make_shared<EventCapture>();
    session.add_sink(capture);
    auto& tracer = session.collector<PythonTracer>();
    tracer.options = profile_with(ConflictPolicy::step_aside);
    session.start();
    EXPECT_TRUE(foreign_installed());
    ASSERT_TRUE(call(ns_.get(), "run"));
    session.stop();
    EXPECT_TRUE(foreign_installed()) << "stop() leaves the other tool's function";
    EXPECT_GT(g_foreign_frames.load(), 0u);

    EXPECT_EQ(count_calls(capture->all(), "main_side"), 1u) << "threads that existed at start are traced";
    std::uint64_t leaf_in_later = 0;
    EXPECT_TRUE(later_thread_counts(*capture, leaf_in_later).empty()) << "a thread started later is not";
    EXPECT_TRUE(any_conflict_contains(tracer, "threads started after start() are not traced"));
}

TEST_F(ThreadDiscovery, TakeOverChainsTheForeignFunctionAndRestoresItAtStop) {
    install_foreign();
    PySession session;
    auto capture = std::make_shared<EventCapture>();
    session.add_sink(capture);
    auto& tracer = session.collector<PythonTracer>();
    tracer.options = profile_with(ConflictPolicy::take_over);
    session.start();
    EXPECT_FALSE(foreign_installed()) << "Pycroscope's hook is in the slot";
    ASSERT_TRUE(call(ns_.get(), "run"));
    const std::uint64_t forwarded = g_foreign_frames.load();
    session.stop();
    EXPECT_TRUE(foreign_installed()) << "stop() puts the other tool's function back";
    EXPECT_GT(forwarded, 0u) << "frames still reach the other tool";

    EXPECT_EQ(count_calls(capture->all(), "main_side"), 1u);
    std::uint64_t leaf_in_later = 0;
    EXPECT_EQ(later_thread_counts(*capture, leaf_in_later), std::vector<std::uint64_t>{1u});
    EXPECT_EQ(leaf_in_later, 7u);
    EXPECT_TRUE(any_conflict_contains(tracer, "PEP 523"));
}

#else
// 3.12+: discovery holds a sys.monitoring tool id (4, else 3) and leaves the
// eval-frame slot alone.

TEST_F(ThreadDiscovery, HoldsAMonitoringToolIdOnlyWhileRunning) {
    PySession session;
    auto capture = std::make_shared<EventCapture>();
    session.add_sink(capture);
    session.collector<PythonTracer>().options = profile_options();
    session.start();
    EXPECT_EQ(tool_owner(4), "pycroscope");
    EXPECT_TRUE(compat::current_eval_frame(PyInterpreterState_Get()) == compat::default_eval_frame())
        << "no PEP 523 hook: Python calls stay inlined";
    ASSERT_TRUE(call(ns_.get(), "run"));
    session.stop();
    EXPECT_EQ(tool_owner(4), "None");

    std::uint64_t leaf_in_later = 0;
    EXPECT_EQ(later_thread_counts(*capture, leaf_in_later), std::vector<std::uint64_t>{1u});
    EXPECT_EQ(leaf_in_later, 7u);
}

TEST_F(ThreadDiscovery, AForeignEvalFrameFunctionIsNoConflict) {
    install_foreign();
    PySession session;
    auto capture = std::make_shared<EventCapture>();
    session.add_sink(capture);
    auto& tracer = session.collector<PythonTracer>();
    tracer.options = profile_with(ConflictPolicy::fail);
    session.start();
    EXPECT_TRUE(foreign_installed());
    ASSERT_TRUE(call(ns_.get(), "run"));
    session.stop();
    EXPECT_TRUE(foreign_installed());
    EXPECT_GT(g_foreign_frames.load(), 0u);

    EXPECT_EQ(count_calls(capture->all(), "main_side"), 1u);
    std::uint64_t leaf_in_later = 0;
    EXPECT_EQ(later_thread_counts(*capture, leaf_in_later), std::vector<std::uint64_t>{1u});
    EXPECT_EQ(leaf_in_later, 7u);
    EXPECT_TRUE(tracer.conflicts().empty());
}

TEST_F(ThreadDiscovery, FallsBackToToolId3WhenAnotherToolHolds4) {
    Ref args(Py_BuildValue("(i)", 4));
    ASSERT_TRUE(call(ns_.get(), "claim_tools", args.get()));
    PySession session;
    auto capture = std::make_shared<EventCapture>();
    session.add_sink(capture);
    session.collector<PythonTracer>().options = profile_with(ConflictPolicy::fail);
    session.start();
    EXPECT_EQ(tool_owner(3), "pycroscope");
    ASSERT_TRUE(call(ns_.get(), "run"));
    session.stop();
    EXPECT_EQ(tool_owner(3), "None");
    EXPECT_EQ(tool_owner(4), "another tool") << "left to its owner";

    std::uint64_t leaf_in_later = 0;
    EXPECT_EQ(later_thread_counts(*capture, leaf_in_later), std::vector<std::uint64_t>{1u});
    EXPECT_EQ(leaf_in_later, 7u);
}

TEST_F(ThreadDiscovery, NoFreeToolIdFailsOrStepsAside) {
    Ref args(Py_BuildValue("(ii)", 4, 3));
    ASSERT_TRUE(call(ns_.get(), "claim_tools", args.get()));
    {
        PySession session;
        session.collector<PythonTracer>().options = profile_with(ConflictPolicy::fail);
        expect_start_refused(session, "sys.monitoring");
        EXPECT_EQ(compat::profile_function(PyThreadState_Get()), nullptr) << "no profile function left behind";
    }
    PySession session;
    auto capture = std::make_shared<EventCapture>();
    session.add_sink(capture);
    auto& tracer = session.collector<PythonTracer>();
    tracer.options = profile_with(ConflictPolicy::step_aside);
    session.start();
    ASSERT_TRUE(call(ns_.get(), "run"));
    session.stop();
    EXPECT_EQ(tool_owner(4), "another tool");
    EXPECT_EQ(tool_owner(3), "another tool");

    EXPECT_EQ(count_calls(capture->all(), "main_side"), 1u) << "threads that existed at start are traced";
    std::uint64_t leaf_in_later = 0;
    EXPECT_TRUE(later_thread_counts(*capture, leaf_in_later).empty()) << "a thread started later is not";
    EXPECT_TRUE(any_conflict_contains(tracer, "threads started after start() are not traced"));
}
#endif

} // namespace
} // namespace threads_test
