// PythonTracer: balanced events (exceptions, generators closed early or
// collected while suspended, threads dying by exception), sessions started
// and stopped while Python frames are active, line hits against a
// sys.settrace counter, exception events, and names that outlive their code
// objects.

#include "python/event_capture.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

namespace tracer_test {
namespace {

using namespace pycroscope_test;
using pycroscope::Event;
using pycroscope::EventKind;
using pycroscope::python::PythonTracer;
namespace event_flags = pycroscope::event_flags;

// ---------------------------------------------------------------------------
// Sessions driven from Python through tiny C functions
// ---------------------------------------------------------------------------

// The sessions the C functions below start and stop, in order.
struct Scripted {
    std::vector<std::unique_ptr<PySession>> sessions;
    std::vector<std::shared_ptr<EventCapture>> captures;
    pycroscope::python::TracerOptions options;
    std::size_t next_to_start = 0;
    std::size_t next_to_stop = 0;
};
Scripted* g_scripted = nullptr;

PyObject* py_start_session(PyObject*, PyObject*) {
    if (g_scripted == nullptr || g_scripted->next_to_start >= g_scripted->sessions.size()) {
        PyErr_SetString(PyExc_RuntimeError, "no session to start");
        return nullptr;
    }
    try {
        g_scripted->sessions[g_scripted->next_to_start++]->start();
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
        return nullptr;
    }
    Py_RETURN_NONE;
}

PyObject* py_stop_session(PyObject*, PyObject*) {
    if (g_scripted == nullptr || g_scripted->next_to_stop >= g_scripted->next_to_start) {
        PyErr_SetString(PyExc_RuntimeError, "no session to stop");
        return nullptr;
    }
    try {
        g_scripted->sessions[g_scripted->next_to_stop++]->stop();
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
        return nullptr;
    }
    Py_RETURN_NONE;
}

PyMethodDef kStartDef{"start_session", &py_start_session, METH_NOARGS, nullptr};
PyMethodDef kStopDef{"stop_session", &py_stop_session, METH_NOARGS, nullptr};

void add_session_functions(PyObject* globals) {
    Ref start(PyCFunction_New(&kStartDef, nullptr));
    Ref stop(PyCFunction_New(&kStopDef, nullptr));
    PyDict_SetItemString(globals, "start_session", start.get());
    PyDict_SetItemString(globals, "stop_session", stop.get());
}

class ScriptedSessions {
public:
    ScriptedSessions(std::size_t count, const pycroscope::python::TracerOptions& options) {
        state_.options = options;
        for (std::size_t i = 0; i < count; ++i) {
            state_.sessions.push_back(std::make_unique<PySession>());
            state_.captures.push_back(std::make_shared<EventCapture>());
            state_.sessions.back()->add_sink(state_.captures.back());
            state_.sessions.back()->collector<PythonTracer>().options = options;
        }
        g_scripted = &state_;
    }
    ~ScriptedSessions() {
        for (auto& s : state_.sessions) {
            s->stop();
        }
        g_scripted = nullptr;
    }
    PySession& session(std::size_t i) { return *state_.sessions[i]; }
    EventCapture& capture(std::size_t i) { return *state_.captures[i]; }
    std::size_t started() const { return state_.next_to_start; }

private:
    Scripted state_;
};

// The single thread that recorded anything (these scripts are single-threaded).
std::vector<Event> only_thread(const EventCapture& capture) {
    const auto threads = capture.by_thread();
    EXPECT_EQ(threads.size(), 1u);
    return threads.empty() ? std::vector<Event>{} : threads.begin()->second;
}

class TracerTest : public ::testing::TestWithParam<BackendCase> {
protected:
    void SetUp() override { ensure_python(); }
    const pycroscope::python::TracerOptions& options() const { return GetParam().options; }
};

// ---------------------------------------------------------------------------
// Balanced events
// ---------------------------------------------------------------------------

constexpr const char* kBalanced = R"PY(
import gc
import threading

def deep(n):
    if n == 0:
        raise KeyError("bottom")
    return deep(n - 1)

def catch_at(depth):
    try:
        deep(depth)
    except KeyError:
        return depth

def with_finally(n):
    try:
        return deep(n)
    finally:
        catch_at(1)

def gen(log):
    try:
        yield 1
        yield 2
        yield 3
    finally:
        log.append("closed")

def generators():
    log = []
    g = gen(log); next(g); g.close()             # closed early
    g = gen(log); next(g); next(g); del g        # freed while suspended
    g = gen(log); next(g)
    cycle = [g]; cycle.append(cycle); del g, cycle
    gc.collect()                                  # collected in a cycle
    g = gen(log); list(g)                         # exhausted
    g = gen(log)
    try:
        next(g); g.throw(ValueError("into the generator"))
    except ValueError:
        pass
    return log

def dies():
    deep(3)

def quiet(args):
    pass

def threads():
    old = threading.excepthook
    threading.excepthook = quiet
    try:
        ts = [threading.Thread(target=dies) for _ in range(2)]
        ts.append(threading.Thread(target=catch_at, args=(4,)))
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    finally:
        threading.excepthook = old

def main():
    for depth in range(6):
        catch_at(depth)
    try:
        with_finally(3)
    except KeyError:
        pass
    generators()
    threads()
    try:
        deep(5)
    except KeyError:
        pass
)PY";

TEST_P(TracerTest, EventsAreBalancedOnEveryThread) {
    Ref ns = exec_module(kBalanced, "balanced.py");
    ASSERT_TRUE(ns);
    PySession session;
    auto capture = std::make_shared<EventCapture>();
    session.add_sink(capture);
    session.collector<PythonTracer>().options = options();
    session.start();
    Ref result = call(ns.get(), "main");
    const auto summary = session.stop();
    ASSERT_TRUE(result);
    EXPECT_EQ(summary.total_lost, 0u);

    const auto threads = capture->by_thread();
    EXPECT_EQ(threads.size(), 4u) << "main thread plus three threading threads";
    std::uint64_t deep_exception_returns = 0;
    std::uint64_t deep_calls = 0;
    for (const auto& thread : threads) {
        const Reconstruction r = reconstruct(thread.second);
        EXPECT_EQ(r.unmatched_ends, 0u) << "thread " << thread.first << "\n" << r.problems;
        EXPECT_EQ(r.mismatched, 0u) << "thread " << thread.first << "\n" << r.problems;
        EXPECT_TRUE(r.open_at_end.empty()) << "thread " << thread.first << ": "
                                           << (r.open_at_end.empty() ? "" : r.path(r.open_at_end.back()));
        EXPECT_EQ(call_tree_unmatched(thread.second), 0u);
        for (const auto& span : r.spans) {
            EXPECT_EQ(span.flags & event_flags::synthetic, 0) << span.name() << ": nothing ran before start";
            if (span.name() == "deep") {
                ++deep_calls;
                deep_exception_returns += (span.end_flags & event_flags::exception) != 0 ? 1 : 0;
            }
        }
    }
    // main: catch_at(0..5) -> 21 frames, with_finally(3) -> 4 + catch_at(1) -> 2,
    // deep(5) -> 6; threads: 2 x deep(3) -> 8, catch_at(4) -> 5. Every deep
    // frame exits by the KeyError.
    EXPECT_EQ(deep_calls, 21u + 4u + 2u + 6u + 8u + 5u);
    EXPECT_EQ(deep_exception_returns, deep_calls);

    // gen: the frame closed early, the one freed, the one collected and the
    // one thrown into exit by an exception; yields and the exhausted run do not.
    const auto main_events = threads.begin()->second;
    std::uint64_t gen_exception_returns = 0, gen_returns = 0;
    for (const auto& e : main_events) {
        if (e.kind == EventKind::py_return && e.location()->display_name() == std::string("gen")) {
            ++gen_returns;
            gen_exception_returns += (e.flags & event_flags::exception) != 0 ? 1 : 0;
        }
    }
    EXPECT_EQ(gen_exception_returns, 4u);
    EXPECT_EQ(gen_returns, count_calls(main_events, "gen"));
}

// ---------------------------------------------------------------------------
// Starting and stopping while Python frames are active
// ---------------------------------------------------------------------------

constexpr const char* kMidStack = R"PY(
def leaf():
    return 1

def leaf2():
    return 2

def leaf3():
    return 3

def inner(x):
    start_session()
    return leaf()

def middle():
    sorted([0], key=inner)   # a C function between middle and inner
    return leaf2()

def outer():
    middle()
    return leaf3()

def main():
    return outer()
)PY";

TEST_P(TracerTest, StartedWhilePythonFramesAreActive) {
    Ref ns = exec_module(kMidStack, "midstack.py");
    ASSERT_TRUE(ns);
    add_session_functions(ns.get());
    ScriptedSessions scripted(1, options());
    Ref result = call(ns.get(), "main");
    ASSERT_TRUE(result);
    ASSERT_EQ(scripted.started(), 1u);
    scripted.session(0).stop();

    const std::vector<Event> events = only_thread(scripted.capture(0));
    ASSERT_GE(events.size(), 4u);
    // The frames running at start open as synthetic spans, outermost first.
    const char* expected[] = {"main", "outer", "middle", "inner"};
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(events[static_cast<std::size_t>(i)].kind, EventKind::py_call);
        EXPECT_NE(events[static_cast<std::size_t>(i)].flags & event_flags::synthetic, 0);
        EXPECT_STREQ(events[static_cast<std::size_t>(i)].location()->display_name(), expected[i]);
    }
    for (const char* name : expected) {
        EXPECT_EQ(count_calls(events, name), 0u) << name << " was running, not called";
    }

    const Reconstruction r = reconstruct(events);
    EXPECT_EQ(r.unmatched_ends, 0u) << r.problems;
    EXPECT_EQ(r.mismatched, 0u) << r.problems;
    EXPECT_EQ(call_tree_unmatched(events), 0u);
    for (int open : r.open_at_end) {
        EXPECT_NE(r.spans[static_cast<std::size_t>(open)].flags & event_flags::synthetic, 0)
            << "only frames that were running at start may stay open: " << r.path(open);
    }
    // Calls made after start nest under the frames that made them.
    for (const auto& check : std::vector<std::pair<const char*, const char*>>{
             {"leaf", "main > outer > middle > inner > leaf"},
             {"leaf2", "main > outer > middle > leaf2"},
             {"leaf3", "main > outer > leaf3"}}) {
        const auto found = r.find(check.first);
        ASSERT_EQ(found.size(), 1u) << check.first;
        EXPECT_EQ(r.path(found[0]), check.second);
        EXPECT_EQ(count_calls(events, check.first), 1u);
    }
    if (GetParam().options.backend == pycroscope::python::Backend::profile) {
        // The profile hook sees every return, including those of the frames
        // that were running at start.
        EXPECT_TRUE(r.open_at_end.empty());
    }
}

constexpr const char* kStopRestart = R"PY(
def work(n):
    return n if n < 2 else work(n - 1) + work(n - 2)

def stops():
    work(4)
    stop_session()          # first session ends here, three frames deep
    return work(3)

def restarts():
    work(2)
    start_session()         # second session starts here, two frames deep
    return work(5)

def middle():
    stops()
    restarts()
    return work(1)

def main():
    middle()
    return work(2)
)PY";

TEST_P(TracerTest, StoppedAndRestartedWhilePythonFramesAreActive) {
    Ref ns = exec_module(kStopRestart, "stop_restart.py");
    ASSERT_TRUE(ns);
    add_session_functions(ns.get());
    ScriptedSessions scripted(2, options());
    scripted.session(0).start();
    ASSERT_TRUE(g_scripted != nullptr);
    // The C++ start above counts as the first start.
    g_scripted->next_to_start = 1;
    Ref result = call(ns.get(), "main");
    ASSERT_TRUE(result);
    scripted.session(1).stop();

    // First session: main > middle > stops are open when it stops; nothing
    // recorded after stop_session().
    {
        const std::vector<Event> events = only_thread(scripted.capture(0));
        const Reconstruction r = reconstruct(events);
        EXPECT_EQ(r.unmatched_ends, 0u) << r.problems;
        EXPECT_EQ(r.mismatched, 0u) << r.problems;
        std::vector<std::string> open;
        for (int i : r.open_at_end) {
            if (r.spans[static_cast<std::size_t>(i)].kind != EventKind::c_call) {
                open.push_back(r.spans[static_cast<std::size_t>(i)].name());
            }
        }
        EXPECT_EQ(open, (std::vector<std::string>{"main", "middle", "stops"}));
        EXPECT_EQ(count_calls(events, "work"), 9u) << "work(4) only";
        EXPECT_EQ(count_calls(events, "restarts"), 0u);
    }
    // Second session: synthetic main > middle > restarts, then work(5) and,
    // after restarts returned, work(1) and work(2).
    {
        const std::vector<Event> events = only_thread(scripted.capture(1));
        ASSERT_GE(events.size(), 3u);
        const char* expected[] = {"main", "middle", "restarts"};
        for (int i = 0; i < 3; ++i) {
            EXPECT_NE(events[static_cast<std::size_t>(i)].flags & event_flags::synthetic, 0);
            EXPECT_STREQ(events[static_cast<std::size_t>(i)].location()->display_name(), expected[i]);
        }
        const Reconstruction r = reconstruct(events);
        EXPECT_EQ(r.unmatched_ends, 0u) << r.problems;
        EXPECT_EQ(r.mismatched, 0u) << r.problems;
        EXPECT_EQ(call_tree_unmatched(events), 0u);
        EXPECT_EQ(count_calls(events, "work"), 15u + 1u + 3u);
        EXPECT_EQ(count_calls(events, "stops"), 0u);
        for (int i : r.open_at_end) {
            EXPECT_NE(r.spans[static_cast<std::size_t>(i)].flags & event_flags::synthetic, 0) << r.path(i);
        }
        std::vector<std::string> roots;
        for (const auto& span : r.spans) {
            if (span.name() == "work" && span.parent >= 0 &&
                r.spans[static_cast<std::size_t>(span.parent)].name() != "work") {
                roots.push_back(r.path(static_cast<int>(&span - r.spans.data())));
            }
        }
        EXPECT_EQ(roots, (std::vector<std::string>{"main > middle > restarts > work", "main > middle > work",
                                                   "main > work"}));
    }
}

// ---------------------------------------------------------------------------
// Lines and exceptions
// ---------------------------------------------------------------------------

constexpr const char* kLines = R"PY(
def branchy(n):
    total = 0
    for i in range(n):
        if i % 3 == 0:
            total += i
        elif i % 3 == 1:
            total -= 1
        else:
            try:
                raise ValueError(i)
            except ValueError:
                total += 2
    return total

def squares(n):
    for i in range(n):
        yield i * i

def comprehension(n):
    return [x
            for x in squares(n)
            if x % 2]

def main():
    branchy(20)
    comprehension(10)
    while_loop = 0
    while while_loop < 5:
        while_loop += 1
    return while_loop
)PY";

constexpr const char* kSettraceCounter = R"PY(
import sys

def count_lines(main, filename):
    counts = {}
    def tracer(frame, event, arg):
        if event == "line" and frame.f_code.co_filename == filename:
            counts[frame.f_lineno] = counts.get(frame.f_lineno, 0) + 1
        return tracer
    sys.settrace(tracer)
    try:
        main()
    finally:
        sys.settrace(None)
    return sorted(counts.items())
)PY";

TEST(TracerLines, LineHitsEqualASettraceCounter) {
    ensure_python();
    // Pycroscope, lines on.
    std::map<std::uint32_t, std::uint64_t> ours;
    {
        Ref ns = exec_module(kLines, "lines_workload.py");
        ASSERT_TRUE(ns);
        PySession session;
        auto capture = std::make_shared<EventCapture>();
        session.add_sink(capture);
        auto& tracer = session.collector<PythonTracer>();
        tracer.options.lines = true;
        tracer.options.c_calls = false;
        session.start();
        EXPECT_EQ(tracer.backend(), PYCROSCOPE_HAS_SYS_MONITORING ? pycroscope::python::Backend::monitoring
                                                                  : pycroscope::python::Backend::profile);
        Ref result = call(ns.get(), "main");
        session.stop();
        ASSERT_TRUE(result);
        for (const auto& e : capture->all()) {
            if (e.kind == EventKind::py_line && std::string(e.location()->file) == "lines_workload.py") {
                ++ours[static_cast<std::uint32_t>(e.payload)];
            }
        }
    }
    // sys.settrace, on a fresh run of the same source.
    std::map<std::uint32_t, std::uint64_t> theirs;
    {
        Ref ns = exec_module(kLines, "lines_workload.py");
        Ref counter = exec_module(kSettraceCounter, "settrace_counter.py");
        ASSERT_TRUE(ns && counter);
        Ref args(Py_BuildValue("(Os)", PyDict_GetItemString(ns.get(), "main"), "lines_workload.py"));
        Ref rows = call(counter.get(), "count_lines", args.get());
        ASSERT_TRUE(rows);
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(rows.get()); ++i) {
            int line = 0;
            unsigned long long hits = 0;
            ASSERT_TRUE(PyArg_ParseTuple(PyList_GET_ITEM(rows.get(), i), "iK", &line, &hits));
            theirs[static_cast<std::uint32_t>(line)] = hits;
        }
    }
    ASSERT_FALSE(theirs.empty());
    EXPECT_EQ(ours, theirs);
    EXPECT_EQ(theirs[4], 21u) << "the for line of branchy: 20 iterations + the exit test";
}

constexpr const char* kExceptions = R"PY(
def thrower():
    raise ValueError("x")

def middle():
    thrower()

def catcher():
    try:
        middle()
    except ValueError:
        return 1

def main():
    for _ in range(3):
        catcher()
)PY";

TEST(TracerExceptions, RaisedInEveryFrameItPassesAndHandledOnce) {
    ensure_python();
    Ref ns = exec_module(kExceptions, "exceptions_workload.py");
    ASSERT_TRUE(ns);
    PySession session;
    auto capture = std::make_shared<EventCapture>();
    session.add_sink(capture);
    auto& tracer = session.collector<PythonTracer>();
    tracer.options.exceptions = true;
    tracer.options.c_calls = false;
    session.start();
    Ref result = call(ns.get(), "main");
    session.stop();
    ASSERT_TRUE(result);
    std::map<std::string, int> raised, handled;
    for (const auto& e : capture->all()) {
        if (e.kind != EventKind::py_exception) {
            continue;
        }
        auto& map = (e.flags & event_flags::exception) != 0 ? handled : raised;
        ++map[e.location()->display_name()];
    }
    EXPECT_EQ(raised, (std::map<std::string, int>{{"catcher", 3}, {"middle", 3}, {"thrower", 3}}));
    EXPECT_EQ(handled, (std::map<std::string, int>{{"catcher", 3}}));
    const Reconstruction r = reconstruct(capture->all());
    EXPECT_EQ(r.unmatched_ends + r.mismatched, 0u) << r.problems;
}

// ---------------------------------------------------------------------------
// Code interning
// ---------------------------------------------------------------------------

constexpr const char* kDynamic = R"PY(
import gc

def run(count):
    for i in range(count):
        ns = {}
        source = "def dyn_%d(x):\n    return x + %d\n" % (i, i)
        exec(compile(source, "<dynamic_%d>" % i, "exec"), ns)
        f = ns.pop("dyn_%d" % i)
        f(i)
        del f, ns
        gc.collect()   # frees the code object; the next one may reuse its address
)PY";

TEST_P(TracerTest, NamesOutliveTheirCodeObjects) {
    Ref ns = exec_module(kDynamic, "dynamic.py");
    ASSERT_TRUE(ns);
    PySession session;
    auto capture = std::make_shared<EventCapture>();
    session.add_sink(capture);
    session.collector<PythonTracer>().options = options();
    session.start();
    constexpr int count = 40;
    Ref args(Py_BuildValue("(i)", count));
    Ref result = call(ns.get(), "run", args.get());
    session.stop();
    ASSERT_TRUE(result);
    // Every code object is gone; the names are read now.
    Ref collected(PyObject_CallMethod(Ref(PyImport_ImportModule("gc")).get(), "collect", nullptr));
    std::vector<std::string> seen;
    for (const auto& e : only_thread(*capture)) {
        if (e.kind == EventKind::py_call && std::string(e.location()->display_name()).rfind("dyn_", 0) == 0) {
            seen.push_back(std::string(e.location()->display_name()) + "@" + e.location()->file + ":" +
                           std::to_string(e.location()->line));
        }
    }
    std::vector<std::string> expected;
    for (int i = 0; i < count; ++i) {
        expected.push_back("dyn_" + std::to_string(i) + "@<dynamic_" + std::to_string(i) + ">:1");
    }
    EXPECT_EQ(seen, expected);
}

// A thread started by threading takes its Python name (threading.Thread(name=...)).
TEST_P(TracerTest, ThreadsStartedByThreadingAreNamedAfterTheirPythonName) {
    Ref ns = exec_module(R"PY(
import threading
def work(n):
    return sum(i for i in range(n))
def main():
    threads = [threading.Thread(target=work, args=(100,), name=name) for name in ("loader", "writer")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
)PY",
                         "thread_names.py");
    ASSERT_TRUE(ns);
    PySession session;
    session.collector<pycroscope::python::PythonTracer>().options = GetParam().options;
    session.start();
    Ref result = call(ns.get(), "main");
    const auto summary = session.stop();
    ASSERT_TRUE(result);
    std::set<std::string> names;
    for (const auto& thread : summary.threads) {
        names.insert(thread.name);
    }
    EXPECT_EQ(names.count("loader"), 1u);
    EXPECT_EQ(names.count("writer"), 1u);
}

INSTANTIATE_TEST_SUITE_P(Backends, TracerTest, ::testing::ValuesIn(backend_cases()), backend_case_name);

} // namespace
} // namespace tracer_test
