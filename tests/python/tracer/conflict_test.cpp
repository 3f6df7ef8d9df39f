// Conflicts with other owners of the profile hook (cProfile, sys.setprofile),
// at start and in the middle of a run, under every ConflictPolicy; and the
// default (chain): the program's own hooks behave as they do without the
// tracer, while the tracer keeps recording.

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

# What the program's own hooks observe: the same transcript with and without
# the tracer is the contract of ConflictPolicy::chain.
def hooks_transcript():
    out = []
    out.append(repr(sys.gettrace()) + repr(sys.getprofile()))
    sys.settrace(None)                     # nothing set: a no-op
    sys.setprofile(None)
    saved = sys.gettrace()
    calls = []
    def counter(frame, event, arg):
        if event == 'call':
            calls.append(frame.f_code.co_name)
    sys.settrace(counter)
    out.append(sys.gettrace() is counter)
    work()
    sys.settrace(saved)                    # restoring what gettrace() returned
    out.append(sys.gettrace() is saved)
    out.append(sorted(calls))
    # frame.f_trace: the global function's result traces that frame's lines.
    local_events = []
    def local(frame, event, arg):
        local_events.append((event, frame.f_lineno - frame.f_code.co_firstlineno))
        return local
    def glob(frame, event, arg):
        return local if frame.f_code.co_name == 'thread_work' else None
    sys.settrace(glob)
    thread_work()
    sys.settrace(None)
    out.append(local_events)
    profiled = []
    def prof(frame, event, arg):
        profiled.append((event, frame.f_code.co_name if event in ('call', 'return') else getattr(arg, '__name__', '')))
    sys.setprofile(prof)
    out.append(sys.getprofile() is prof)
    work()
    sys.setprofile(None)
    out.append(profiled)
    # A tracer that raises: the error reaches the program and the tracer is removed.
    def bad(frame, event, arg):
        raise ValueError('from the program tracer')
    sys.settrace(bad)
    try:
        leaf()
    except ValueError as e:
        out.append(('raised', str(e), sys.gettrace()))
    # threading.settrace / setprofile: new threads run their target under the hook.
    seen = []
    lock = threading.Lock()
    def thread_tracer(frame, event, arg):
        if event == 'call' and frame.f_code.co_name == 'thread_work':
            with lock:
                seen.append(('trace', frame.f_code.co_name))
    def thread_profiler(frame, event, arg):
        if event == 'call' and frame.f_code.co_name == 'leaf':
            with lock:
                seen.append(('profile', frame.f_code.co_name))
    threading.settrace(thread_tracer)
    threading.setprofile(thread_profiler)
    results = []
    def target(i):
        thread_work()
        results.append(i * i)
    threads = [threading.Thread(target=target, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    threading.settrace(None)
    threading.setprofile(None)
    out.append(sorted(results))
    out.append(sorted(seen))
    out.append(repr(sys.gettrace()) + repr(sys.getprofile()))
    return repr(out)
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

// cProfile takes the profile function on 3.9-3.11 only; on 3.12+ it is a
// sys.monitoring tool and shares nothing with the tracer.
constexpr bool cprofile_uses_the_profile_function = PY_VERSION_HEX < 0x030C0000;

TEST_F(ConflictTest, FailPolicyRefusesToStartOverCProfileAndLeavesNothingInstalled) {
    if (!cprofile_uses_the_profile_function) {
        GTEST_SKIP() << "cProfile uses sys.monitoring on this Python";
    }
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
    if (!cprofile_uses_the_profile_function) {
        GTEST_SKIP() << "cProfile uses sys.monitoring on this Python";
    }
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
    if (cprofile_uses_the_profile_function) {
        EXPECT_NE(python_string(refused_cprofile.get()).find("pycroscope"), std::string::npos);
    }

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

namespace {


class ProgramHooksTest : public ConflictTest {
protected:
    std::string transcript() {
        Ref result = call(ns_.get(), "hooks_transcript");
        if (!result) {
            ADD_FAILURE() << "hooks_transcript raised";
            return {};
        }
        return python_string(result.get());
    }
};

TEST(ConflictPolicyDefault, IsChainForTheLibraryAndTheCommand) {
    EXPECT_EQ(TracerOptions{}.on_conflict, ConflictPolicy::chain);
    EXPECT_EQ(pycroscope::profile::ProfileOptions{}.tracer_options().on_conflict, ConflictPolicy::chain);
    ConflictPolicy parsed = ConflictPolicy::fail;
    EXPECT_TRUE(pycroscope::python::parse_conflict_policy("step_aside", parsed));
    EXPECT_EQ(parsed, ConflictPolicy::step_aside);
    EXPECT_FALSE(pycroscope::python::parse_conflict_policy("chained", parsed));
}

// The transcript (what the program's tracers saw, sys.gettrace(), results)
// is the same as without the tracer, with a trace function of the tracer's
// own (lines) and without one; and the tracer records the same calls.
TEST_F(ProgramHooksTest, ChainGivesTheProgramsHooksExactlyWhatTheyGetAlone) {
    const std::string plain = transcript();
    ASSERT_FALSE(plain.empty());
    ASSERT_NE(plain.find("'thread_work'"), std::string::npos) << plain;
    for (const bool lines : {false, true}) {
        PySession session;
        auto capture = std::make_shared<EventCapture>();
        session.add_sink(capture);
        auto& tracer = session.collector<PythonTracer>();
        tracer.options = profile_options();
        tracer.options.lines = lines;
        tracer.options.exceptions = lines;
        session.start();
        const std::string profiled = transcript();
        const bool getprofile_is_none = python_true("sys.getprofile() is None and sys.gettrace() is None");
        session.stop();
        EXPECT_EQ(profiled, plain) << "lines " << lines;
        EXPECT_TRUE(getprofile_is_none);
        EXPECT_TRUE(tracer.conflicts().empty()) << tracer.conflicts().front();
        EXPECT_EQ(tracer.program_hooks().stepped_aside, 0u);
        // work() twice (4 leaf calls each), thread_work() once here (6) and in 3 threads (18), leaf() once.
        EXPECT_EQ(count_calls(capture->all(), "leaf"), 4u + 4u + 6u + 18u + 1u) << "lines " << lines;
        for (const auto& thread : capture->by_thread()) {
            const Reconstruction r = reconstruct(thread.second);
            EXPECT_EQ(r.unmatched_ends + r.mismatched, 0u) << r.problems;
        }
        EXPECT_GE(tracer.program_hooks().chained_threads, 4u) << "this thread and the three new ones";
    }
    EXPECT_TRUE(python_true("sys.gettrace() is None and sys.getprofile() is None"));
}

// Even under fail, removing a hook the program never set is not a conflict.
TEST_F(ProgramHooksTest, RemovingNothingIsANoOpUnderEveryPolicy) {
    for (const ConflictPolicy policy :
         {ConflictPolicy::fail, ConflictPolicy::step_aside, ConflictPolicy::take_over, ConflictPolicy::chain}) {
        PySession session;
        auto capture = std::make_shared<EventCapture>();
        session.add_sink(capture);
        auto& tracer = session.collector<PythonTracer>();
        tracer.options = profile_with(policy);
        tracer.options.lines = true;
        session.start();
        EXPECT_TRUE(exec_in(ns_.get(), "sys.settrace(None)\nsys.setprofile(None)\nsys.settrace(sys.gettrace())\n"
                                       "sys.setprofile(sys.getprofile())\nwork()\n"))
            << to_string(policy);
        session.stop();
        EXPECT_EQ(count_calls(capture->all(), "leaf"), 4u) << to_string(policy);
        EXPECT_TRUE(tracer.conflicts().empty()) << to_string(policy);
    }
}

// cProfile.enable() sets the profile function from C (3.9-3.11), past
// sys.setprofile: the tracer chains it at the next frame, so both count.
TEST_F(ProgramHooksTest, ChainKeepsCProfileEnabledMidRunCounting) {
    PySession session;
    auto capture = std::make_shared<EventCapture>();
    session.add_sink(capture);
    auto& tracer = session.collector<PythonTracer>();
    tracer.options = profile_options();
    session.start();
    ASSERT_TRUE(exec_in(ns_.get(), "pr = cProfile.Profile()\npr.enable()\nwork()\npr.disable()\n"));
    ASSERT_TRUE(call(ns_.get(), "work"));
    session.stop();
    EXPECT_TRUE(python_true("profiler_calls(pr, 'leaf') == 4"));
    EXPECT_EQ(count_calls(capture->all(), "leaf"), 8u);
    EXPECT_TRUE(python_true("sys.getprofile() is None"));
}

// take_over: the program's call does nothing, the tracer records, and the count is reported.
TEST_F(ProgramHooksTest, TakeOverIgnoresTheProgramsCallAndCountsIt) {
    PySession session;
    auto capture = std::make_shared<EventCapture>();
    session.add_sink(capture);
    auto& tracer = session.collector<PythonTracer>();
    tracer.options = profile_with(ConflictPolicy::take_over);
    session.start();
    ASSERT_TRUE(exec_in(ns_.get(), "seen = []\nsys.setprofile(lambda f, e, a: seen.append(e))\n"
                                   "took = sys.getprofile() is None\nwork()\nsys.setprofile(None)\n"));
    session.stop();
    EXPECT_TRUE(python_true("took and seen == []"));
    EXPECT_EQ(count_calls(capture->all(), "leaf"), 4u);
    EXPECT_EQ(tracer.program_hooks().ignored_calls, 1u);
}

// step_aside with threading.settrace: each new thread runs its target under
// the program's tracer, goes unrecorded, and the loss is reported (count and time).
TEST_F(ProgramHooksTest, StepAsideLeavesThreadsToThreadingSettraceAndReportsThem) {
    TempDir dir;
    const std::string summary_path = dir.file("session.json");
    PySession session;
    auto capture = std::make_shared<EventCapture>();
    session.add_sink(capture);
    auto summary_sink = session.add_sink<pycroscope::sinks::JsonSummarySink>(summary_path);
    auto& tracer = session.collector<PythonTracer>();
    tracer.options = profile_with(ConflictPolicy::step_aside);
    tracer.options.lines = true;
    pycroscope::python::add_summary_sections(*summary_sink, tracer);
    session.start();
    ASSERT_TRUE(exec_in(ns_.get(), R"PY(
traced = []
def thread_tracer(frame, event, arg):
    if event == 'call' and frame.f_code.co_name == 'thread_work':
        traced.append(threading.get_ident())
threading.settrace(thread_tracer)
threads = [threading.Thread(target=thread_work) for _ in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
threading.settrace(None)
work()
)PY"));
    session.stop();
    EXPECT_TRUE(python_true("len(traced) == 2")) << "each new thread ran under the program's tracer";
    EXPECT_EQ(count_calls(capture->all(), "leaf"), 4u) << "only this thread's work()";
    EXPECT_EQ(tracer.program_hooks().stepped_aside, 2u);
    EXPECT_GT(tracer.program_hooks().untraced_ns, 0u);
    const json::Value doc = json::parse_file(summary_path);
    const json::Value& hooks = doc.at("python").at("program_hooks");
    EXPECT_EQ(hooks.at("policy").as_string(), "step_aside");
    EXPECT_EQ(hooks.at("stepped_aside_threads").as_int(), 2);
    EXPECT_GT(hooks.at("untraced_ns").as_int(), 0);
}

// Audit hooks of the program: no conflict, every thread recorded, the
// threads' exceptions reach the program, and the hooks see only the
// program's own sys.setprofile/settrace calls, as without the tracer.
TEST_F(ProgramHooksTest, ProgramAuditHooksChangeNothing) {
    ASSERT_TRUE(exec_in(ns_.get(), R"PY(
audit_seen = []
audit_on = [False]
for _k in range(3):
    sys.addaudithook(lambda ev, args: audit_seen.append(ev) if audit_on[0] and ev.startswith('sys.set') else None)
def audited_run():
    audit_seen.clear()
    audit_on[0] = True
    out = []
    def boom(i):
        for _ in range(3):
            leaf()
        if i % 2:
            raise KeyError(i)
        return i
    def run(i):
        try:
            out.append(boom(i))
        except KeyError as e:
            out.append(-e.args[0])
    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sys.settrace(None)
    audit_on[0] = False
    return repr((sorted(out), audit_seen))
)PY"));
    Ref plain = call(ns_.get(), "audited_run");
    ASSERT_TRUE(plain);
    PySession session;
    auto capture = std::make_shared<EventCapture>();
    session.add_sink(capture);
    auto& tracer = session.collector<PythonTracer>();
    tracer.options = profile_options();
    tracer.options.exceptions = true;
    session.start();
    Ref profiled = call(ns_.get(), "audited_run");
    session.stop();
    ASSERT_TRUE(profiled);
    EXPECT_EQ(python_string(plain.get()), "([-3, -1, 0, 2], ['sys.settrace', 'sys.settrace', 'sys.settrace'])")
        << "three hooks, one event";
#if PY_VERSION_HEX < 0x030C0000
    EXPECT_EQ(python_string(profiled.get()), python_string(plain.get()));
#else
    // Known limit: from 3.12 the tracer can set a new thread's slots only
    // through CPython, which raises an audit event the hooks see.
    EXPECT_EQ(python_string(profiled.get()).rfind("([-3, -1, 0, 2], [", 0), 0u) << python_string(profiled.get());
#endif
    EXPECT_TRUE(tracer.conflicts().empty()) << tracer.conflicts().front();
    EXPECT_EQ(count_calls(capture->all(), "leaf"), 12u) << "every thread recorded";
    EXPECT_EQ(count_calls(capture->all(), "audited_run.<locals>.boom"), 4u);
}

} // namespace
