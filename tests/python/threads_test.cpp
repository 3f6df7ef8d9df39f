// Thread coverage: Python calls on every kind of thread land, with exact
// counts, in that thread's own buffer, for both backends:
//  - threading threads that exist before start (blocked on an Event),
//  - a threading thread and a _thread.start_new_thread thread started later,
//  - a native std::thread that enters Python through PyGILState_Ensure,
//  - the main (test) thread itself.

#include "python/event_capture.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>

namespace {

using namespace pycroscope_test;
using pycroscope::EventKind;
using pycroscope::python::PythonTracer;

constexpr const char* kThreads = R"PY(
import threading
import time
import _thread

def leaf():
    return 1

def repeat(n):
    for _ in range(n):
        leaf()

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

def wait_for_threads_to_end(deadline=20.0):
    end = time.monotonic() + deadline
    while _thread._count() > 0 and time.monotonic() < end:
        time.sleep(0.001)
    return _thread._count()

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
)PY";

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

} // namespace
