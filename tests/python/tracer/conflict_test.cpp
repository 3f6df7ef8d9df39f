// Conflicts with other owners of the profile hook (cProfile, sys.setprofile),
// at start and in the middle of a run, under ConflictPolicy::fail and
// ConflictPolicy::step_aside.

#include "python/event_capture.hpp"
#include "support/json.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using namespace pycroscope_test;
using pycroscope::EventKind;
using pycroscope::python::ConflictPolicy;
using pycroscope::python::PythonTracer;
using pycroscope::python::TracerOptions;

constexpr const char* kConflict = R"PY(
import cProfile
import sys
import threading

def leaf():
    return 1

def work():
    for _ in range(4):
        leaf()

def thread_work():
    for _ in range(6):
        leaf()

def in_thread():
    t = threading.Thread(target=thread_work)
    t.start()
    t.join()

def other_profiler(frame, event, arg):
    pass

def try_setprofile():
    try:
        sys.setprofile(other_profiler)
    except RuntimeError as e:
        return str(e)
    finally:
        # Leave nothing behind either way.
        if sys.getprofile() is other_profiler:
            sys.setprofile(None)
    return "not refused"

def try_cprofile():
    pr = cProfile.Profile()
    try:
        pr.enable()
    except RuntimeError as e:
        return str(e)
    pr.disable()
    return "not refused"

def takes_the_hook_midway():
    leaf()
    sys.setprofile(other_profiler)   # Pycroscope steps aside on this thread
    leaf()
    sys.setprofile(None)
    leaf()

def midway_main():
    takes_the_hook_midway()
    work()
    in_thread()

def profiler_calls(pr, name):
    return sum(e.callcount for e in pr.getstats()
               if not isinstance(e.code, str) and e.code.co_name == name)
)PY";

constexpr const char* kFile = "conflict_workload.py";


class ConflictTest : public ::testing::Test {
protected:
    void SetUp() override {
        ensure_python();
        ns_ = exec_module(kConflict, kFile);
        ASSERT_TRUE(ns_);
    }
    void TearDown() override {
        // Whatever happened, leave no profiler on the test thread.
        if (ns_) {
            exec_in(ns_.get(), "sys.setprofile(None)\n");
        }
    }
    // Enables a cProfile.Profile on this thread; kept in the namespace as `pr`.
    void enable_cprofile() { ASSERT_TRUE(exec_in(ns_.get(), "pr = cProfile.Profile()\npr.enable()\n")); }
    bool python_true(const std::string& expression) {
        Ref result(PyRun_String(expression.c_str(), Py_eval_input, ns_.get(), ns_.get()));
        if (!result) {
            ADD_FAILURE() << expression << ":\n" << take_python_error();
            return false;
        }
        return PyObject_IsTrue(result.get()) == 1;
    }
    std::string python_string(PyObject* object) {
        const char* utf8 = object != nullptr ? PyUnicode_AsUTF8(object) : nullptr;
        if (utf8 == nullptr) {
            ADD_FAILURE() << "expected a str:\n" << take_python_error();
            return {};
        }
        return utf8;
    }
    static bool eval_frame_is_default() {
        return pycroscope::python::compat::current_eval_frame(PyInterpreterState_Get()) ==
               pycroscope::python::compat::default_eval_frame();
    }

    Ref ns_;
};

TEST_F(ConflictTest, FailPolicyRefusesToStartOverCProfileAndLeavesNothingInstalled) {
    enable_cprofile();
    {
        PySession session;
        auto capture = std::make_shared<EventCapture>();
        session.add_sink(capture);
        session.collector<PythonTracer>().options = profile_with(ConflictPolicy::fail);
        expect_start_refused(session, "profile function");
        EXPECT_TRUE(python_true("sys.getprofile() is pr")) << "cProfile keeps its hook";
        EXPECT_TRUE(eval_frame_is_default()) << "no eval-frame hook left behind";
        ASSERT_TRUE(call(ns_.get(), "work"));
        EXPECT_TRUE(capture->all().empty());
    }
    // cProfile saw everything; after it stops, Pycroscope starts normally.
    EXPECT_TRUE(python_true("profiler_calls(pr, 'leaf') == 4"));
    ASSERT_TRUE(exec_in(ns_.get(), "pr.disable()\n"));
    PySession session;
    auto capture = std::make_shared<EventCapture>();
    session.add_sink(capture);
    session.collector<PythonTracer>().options = profile_with(ConflictPolicy::fail);
    session.start();
    ASSERT_TRUE(call(ns_.get(), "work"));
    session.stop();
    EXPECT_EQ(count_calls(capture->all(), "leaf"), 4u);
    EXPECT_TRUE(python_true("sys.getprofile() is None"));
}

TEST_F(ConflictTest, StepAsideAtStartLeavesCProfilesThreadUntracedAndSaysSo) {
    enable_cprofile();
    TempDir dir;
    const std::string summary_path = dir.file("session.json");
    PySession session;
    auto capture = std::make_shared<EventCapture>();
    session.add_sink(capture);
    auto summary_sink = session.add_sink<pycroscope::sinks::JsonSummarySink>(summary_path);
    auto& tracer = session.collector<PythonTracer>();
    tracer.options = profile_with(ConflictPolicy::step_aside);
    pycroscope::python::add_summary_sections(*summary_sink, tracer);
    session.start();
    ASSERT_TRUE(call(ns_.get(), "work"));      // this thread belongs to cProfile
    ASSERT_TRUE(call(ns_.get(), "in_thread")); // a new thread is Pycroscope's
    EXPECT_TRUE(python_true("sys.getprofile() is pr"));
    session.stop();
    ASSERT_TRUE(exec_in(ns_.get(), "pr.disable()\n"));

    std::uint64_t leaf_calls = 0;
    for (const auto& thread : capture->by_thread()) {
        EXPECT_EQ(count_calls(thread.second, "work"), 0u) << "the cProfile thread is not traced";
        leaf_calls += count_calls(thread.second, "leaf");
        if (count_calls(thread.second, "thread_work") == 1) {
            EXPECT_EQ(count_calls(thread.second, "leaf"), 6u);
        }
    }
    EXPECT_EQ(leaf_calls, 6u) << "only the new thread's calls";
    EXPECT_TRUE(python_true("profiler_calls(pr, 'leaf') == 4")) << "cProfile was not disturbed";

    const json::Value doc = json::parse_file(summary_path);
    const json::Value& python = doc.at("python");
    EXPECT_EQ(python.at("backend").as_string(), "profile");
    bool listed = false;
    for (const auto& conflict : python.at("conflicts").items()) {
        const std::string& text = conflict.as_string();
        listed |= text.find("profile function") != std::string::npos && text.find("stepped aside") != std::string::npos;
    }
    EXPECT_TRUE(listed) << "summary python.conflicts names the thread it stepped aside from";
}

TEST_F(ConflictTest, FailPolicyMidRunRaisesInPythonAndTracingContinues) {
    PySession session;
    auto capture = std::make_shared<EventCapture>();
    session.add_sink(capture);
    auto& tracer = session.collector<PythonTracer>();
    tracer.options = profile_with(ConflictPolicy::fail);
    session.start();
    Ref refused = call(ns_.get(), "try_setprofile");
    Ref refused_cprofile = call(ns_.get(), "try_cprofile");
    ASSERT_TRUE(call(ns_.get(), "work"));
    ASSERT_TRUE(call(ns_.get(), "in_thread"));
    session.stop();
    ASSERT_TRUE(refused && refused_cprofile);
    EXPECT_NE(python_string(refused.get()).find("pycroscope"), std::string::npos) << python_string(refused.get());
    EXPECT_NE(python_string(refused_cprofile.get()).find("pycroscope"), std::string::npos);

    const auto all = capture->all();
    EXPECT_EQ(count_calls(all, "leaf"), 4u + 6u) << "tracing went on, on both threads";
    EXPECT_EQ(count_calls(all, "other_profiler"), 0u);
    for (const auto& thread : capture->by_thread()) {
        const Reconstruction r = reconstruct(thread.second);
        EXPECT_EQ(r.unmatched_ends + r.mismatched, 0u) << r.problems;
        EXPECT_TRUE(r.open_at_end.empty());
    }
    bool reported = false;
    for (const auto& c : tracer.conflicts()) {
        reported |= c.find("sys.setprofile") != std::string::npos && c.find("refused") != std::string::npos;
    }
    EXPECT_TRUE(reported);
}

TEST_F(ConflictTest, EvalFrameBackendCoexistsWithCProfileMidRun) {
    PySession session;
    auto capture = std::make_shared<EventCapture>();
    session.add_sink(capture);
    session.collector<PythonTracer>().options = eval_frame_options(); // on_conflict = fail
    session.start();
    ASSERT_TRUE(exec_in(ns_.get(), "pr = cProfile.Profile()\npr.enable()\nwork()\npr.disable()\n"));
    ASSERT_TRUE(call(ns_.get(), "work"));
    session.stop();
    EXPECT_EQ(count_calls(capture->all(), "leaf"), 8u);
    EXPECT_TRUE(python_true("profiler_calls(pr, 'leaf') == 4"));
}

TEST_F(ConflictTest, StepAsideMidRunStopsTracingThatThreadAndStaysBalanced) {
    PySession session;
    auto capture = std::make_shared<EventCapture>();
    session.add_sink(capture);
    auto& tracer = session.collector<PythonTracer>();
    tracer.options = profile_with(ConflictPolicy::step_aside);
    session.start();
    ASSERT_TRUE(call(ns_.get(), "midway_main"));
    session.stop();

    const auto threads = capture->by_thread();
    ASSERT_GE(threads.size(), 1u);
    const auto& main_events = threads.begin()->second;
    EXPECT_EQ(count_calls(main_events, "leaf"), 1u) << "only the call before sys.setprofile()";
    EXPECT_EQ(count_calls(main_events, "work"), 0u);
    EXPECT_EQ(count_calls(main_events, "other_profiler"), 0u);
    for (const auto& thread : threads) {
        const Reconstruction r = reconstruct(thread.second);
        EXPECT_EQ(r.unmatched_ends, 0u) << r.problems;
        EXPECT_EQ(r.mismatched, 0u) << r.problems;
        EXPECT_EQ(call_tree_unmatched(thread.second), 0u);
    }
    // The frames the other profiler took over stay open until the session ends.
    const Reconstruction r = reconstruct(main_events);
    std::vector<std::string> open;
    for (int i : r.open_at_end) {
        open.push_back(r.spans[static_cast<std::size_t>(i)].name());
    }
    EXPECT_EQ(open, (std::vector<std::string>{"midway_main", "takes_the_hook_midway", "sys.setprofile"}));
    bool reported = false;
    for (const auto& c : tracer.conflicts()) {
        reported |= c.find("stepped aside") != std::string::npos;
    }
    EXPECT_TRUE(reported);
}

} // namespace
