// The sys.monitoring backend (3.12+): what Backend::automatic picks there,
// calls and C calls equal to cProfile's, the same events as the profile
// backend, balance (exceptions, generators closed early or collected,
// coroutines, threads that end), start and stop mid-stack, the tool id
// (taken, freed, conflicts) and tools the program runs itself (cProfile,
// sys.setprofile) beside it. Before 3.12 every test skips.

#include "python/event_capture.hpp"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace monitoring_backend_test {
namespace {

using namespace pycroscope_test;
using pycroscope::Event;
using pycroscope::EventKind;
using pycroscope::python::Backend;
using pycroscope::python::ConflictPolicy;
using pycroscope::python::PythonTracer;
using pycroscope::python::TracerOptions;
namespace event_flags = pycroscope::event_flags;

#define SKIP_WITHOUT_MONITORING()                                                                                      \
    do {                                                                                                               \
        ensure_python();                                                                                               \
        if (!PYCROSCOPE_HAS_SYS_MONITORING) {                                                                          \
            GTEST_SKIP() << "the sys.monitoring backend needs CPython 3.12 or newer; this is " PY_VERSION;             \
        }                                                                                                              \
    } while (0)

TracerOptions monitoring_options(bool c_calls, bool exceptions = false, bool lines = false) {
    TracerOptions o;
    o.backend = Backend::monitoring;
    o.c_calls = c_calls;
    o.exceptions = exceptions;
    o.lines = lines;
    return o;
}

struct Recorded {
    std::map<std::uint32_t, std::vector<Event>> threads;
    std::vector<std::string> conflicts;
    Backend backend = Backend::automatic;
};

// Runs globals[function]() under a session with options.
Recorded record(PyObject* globals, const char* function, const TracerOptions& options) {
    PySession session;
    auto capture = std::make_shared<EventCapture>();
    session.add_sink(capture);
    session.collector<PythonTracer>().options = options;
    session.start();
    Ref result = call(globals, function);
    const auto summary = session.stop();
    EXPECT_TRUE(result);
    EXPECT_EQ(summary.total_lost, 0u);
    Recorded out;
    out.threads = capture->by_thread();
    out.conflicts = session.collector<PythonTracer>().conflicts();
    out.backend = session.collector<PythonTracer>().backend();
    return out;
}

// C calls per name ("builtins.len", "list.append").
std::map<std::string, std::uint64_t> c_call_counts(const Recorded& recorded) {
    std::map<std::string, std::uint64_t> out;
    for (const auto& thread : recorded.threads) {
        for (const Event& e : thread.second) {
            if (e.kind == EventKind::c_call && e.location() != nullptr) {
                ++out[e.location()->display_name()];
            }
        }
    }
    return out;
}

constexpr const char* kWorkload = R"PY(
import asyncio
import threading

def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

def gen(n):
    for i in range(n):
        yield i

def closed_early():
    g = gen(100)
    next(g); next(g)
    g.close()                      # PY_THROW (GeneratorExit) then PY_UNWIND

def collected():
    g = gen(100)
    next(g)
    del g                          # closed by its finalizer

def thrown_into():
    g = gen(10)
    next(g)
    try:
        g.throw(KeyError("x"))
    except KeyError:
        pass

def thrower(i):
    if i % 2:
        raise ValueError(i)
    return i

def middle(i):
    return thrower(i) + 1

def catcher(n):
    caught = 0
    for i in range(n):
        try:
            middle(i)
        except ValueError:
            caught += 1
    return caught

class Box:
    def __init__(self, v):
        self.v = v
    def __getitem__(self, i):
        return self.v + i
    def __len__(self):
        return 3
    @property
    def double(self):
        return self.v * 2

async def leaf(i):
    await asyncio.sleep(0)
    return i

async def gather(n):
    return sum(await asyncio.gather(*(leaf(i) for i in range(n))))

def strings(n):
    parts = []
    for i in range(n):
        parts.append(str(i))
    d = {}
    for p in parts:
        d[p] = d.get(p, 0) + len(p)
    return ",".join(sorted(parts)) if isinstance(parts, list) else ""

def worker(n):
    return fib(n) + len([x for x in gen(n)])

def main():
    fib(15)
    for _ in range(3):
        closed_early()
        collected()
        thrown_into()
    catcher(20)
    b = Box(2)
    total = sum(b[i] + len(b) + b.double for i in range(50))
    total += sum(gen(30))
    asyncio.run(gather(5))
    strings(200)
    threads = [threading.Thread(target=worker, args=(10,)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return total + sum(map(lambda x: x * 2, range(10)))

def c_main():
    # Single-threaded, no event loop: C call counts that cannot depend on timing.
    closed_early()
    thrown_into()
    strings(200)
    return sum(gen(30)) + next(gen(3)) + len(Box(1))
)PY";

// cProfile's counts of the same call: Python functions of file, and C
// functions under the tracer's names ("<built-in method builtins.len>" is
// builtins.len, "<method 'append' of 'list' objects>" list.append).
constexpr const char* kCProfileHarness = R"PY(
import cProfile

def cprofile_counts(main, filename):
    main()  # warm: first-run work (imports, caches) is in neither count
    pr = cProfile.Profile()
    pr.enable()
    try:
        main()
    finally:
        pr.disable()
    py, c = {}, {}
    for entry in pr.getstats():
        code = entry.code
        if isinstance(code, str):
            if code.startswith("<built-in method ") and code.endswith(">") and " of " not in code:
                name = code[len("<built-in method "):-1]
            elif code.startswith("<method '") and code.endswith("' objects>"):
                method, _, owner = code[len("<method '"):-len("' objects>")].partition("' of '")
                name = owner + "." + method
            else:
                continue
            c[name] = c.get(name, 0) + entry.callcount
        elif code.co_filename == filename:
            key = (code.co_filename, code.co_firstlineno, code.co_name)
            py[key] = py.get(key, 0) + entry.callcount
    return sorted((f, l, n, k) for (f, l, n), k in py.items()), c
)PY";

struct CProfileCounts {
    CallCounts python;
    std::map<std::string, std::uint64_t> c;
};

CProfileCounts cprofile_counts(const char* source, const std::string& file, const char* entry) {
    CProfileCounts out;
    Ref harness = exec_module(kCProfileHarness, "monitoring_cprofile_harness.py", "monitoring_cprofile_harness");
    Ref ns = exec_module(source, file);
    EXPECT_TRUE(harness && ns);
    if (!harness || !ns) {
        return out;
    }
    Ref args(Py_BuildValue("(Os)", PyDict_GetItemString(ns.get(), entry), file.c_str()));
    Ref result = call(harness.get(), "cprofile_counts", args.get());
    EXPECT_TRUE(result);
    if (!result) {
        return out;
    }
    PyObject* rows = PyTuple_GET_ITEM(result.get(), 0);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(rows); ++i) {
        const char* f = nullptr;
        const char* name = nullptr;
        int line = 0;
        unsigned long long count = 0;
        EXPECT_TRUE(PyArg_ParseTuple(PyList_GET_ITEM(rows, i), "sisK", &f, &line, &name, &count))
            << take_python_error();
        out.python[FunctionKey{f, static_cast<std::uint32_t>(line), name}] += count;
    }
    PyObject* c = PyTuple_GET_ITEM(result.get(), 1);
    PyObject* key = nullptr;
    PyObject* value = nullptr;
    Py_ssize_t pos = 0;
    while (PyDict_Next(c, &pos, &key, &value)) {
        out.c[PyUnicode_AsUTF8(key)] = PyLong_AsUnsignedLongLong(value);
    }
    return out;
}

struct OptionsCase {
    const char* label;
    TracerOptions options;
};

class MonitoringParity : public ::testing::TestWithParam<OptionsCase> {};

TEST_P(MonitoringParity, CallsAndCCallsEqualCProfileAndEveryThreadBalances) {
    SKIP_WITHOUT_MONITORING();
    const TracerOptions& options = GetParam().options;
    const std::string file = "monitoring_workload.py";
    Ref ns = exec_module(kWorkload, file);
    ASSERT_TRUE(ns);
    ASSERT_TRUE(call(ns.get(), "main")); // warm, as cProfile's run is
    const Recorded ours = record(ns.get(), "main", options);
    EXPECT_EQ(ours.backend, Backend::monitoring);
    EXPECT_TRUE(ours.conflicts.empty());
    EXPECT_GE(ours.threads.size(), 4u) << "the main thread and the three started after start()";

    CallCounts calls;
    for (const auto& thread : ours.threads) {
        add_call_counts(calls, thread.second, file);
        const Reconstruction r = reconstruct(thread.second);
        EXPECT_EQ(r.unmatched_ends, 0u) << "thread " << thread.first << ": " << r.problems;
        EXPECT_EQ(r.mismatched, 0u) << "thread " << thread.first << ": " << r.problems;
        EXPECT_TRUE(r.open_at_end.empty()) << "thread " << thread.first << ": nothing ran before start";
        EXPECT_EQ(call_tree_unmatched(thread.second), 0u) << "thread " << thread.first;
    }

    const CProfileCounts theirs = cprofile_counts(kWorkload, file, "main");
    ASSERT_FALSE(theirs.python.empty());
    EXPECT_EQ(calls, theirs.python) << diff_counts(theirs.python, calls, "cProfile", "pycroscope");
    const FunctionKey gen{file, 8, "gen"};
    EXPECT_GT(theirs.python.count(gen) ? theirs.python.at(gen) : 0u, 50u);

    if (!options.c_calls) {
        EXPECT_TRUE(c_call_counts(ours).empty());
        return;
    }
    const auto c_calls = c_call_counts(record(ns.get(), "c_main", options));
    const CProfileCounts c_theirs = cprofile_counts(kWorkload, file, "c_main");
    for (const char* name : {"builtins.len", "list.append", "dict.get", "str.join", "builtins.sorted",
                             "builtins.isinstance", "builtins.sum", "builtins.next"}) {
        const auto found = c_theirs.c.find(name);
        ASSERT_NE(found, c_theirs.c.end()) << name << " missing from cProfile's builtins";
        EXPECT_GT(found->second, 0u) << name;
        const auto mine = c_calls.find(name);
        EXPECT_EQ(mine == c_calls.end() ? 0u : mine->second, found->second) << name;
    }
}

std::vector<OptionsCase> options_cases() {
    return {OptionsCase{"python_only", monitoring_options(false)}, OptionsCase{"c_calls", monitoring_options(true)},
            OptionsCase{"exceptions_lines", monitoring_options(true, true, true)},
            OptionsCase{"automatic", TracerOptions{}}};
}

INSTANTIATE_TEST_SUITE_P(Options, MonitoringParity, ::testing::ValuesIn(options_cases()),
                         [](const ::testing::TestParamInfo<OptionsCase>& info) { return info.param.label; });

// ---------------------------------------------------------------------------
// The same events as the profile backend
// ---------------------------------------------------------------------------

constexpr const char* kSingleThread = R"PY(
def gen(n):
    for i in range(n):
        yield i

def thrower(i):
    if i % 3 == 0:
        raise KeyError(i)
    return [i] * 2

def middle(i):
    try:
        return len(thrower(i))
    finally:
        pass

def catcher(n):
    total = 0
    for i in range(n):
        try:
            total += middle(i)
        except KeyError:
            total -= 1
    return total

class Point:
    def __init__(self, x):
        self.x = x
    def __repr__(self):
        return "P(%d)" % self.x

def main():
    g = gen(5)
    next(g)
    g.close()
    total = catcher(10) + sum(gen(4))
    names = [repr(Point(i)) for i in range(4)]
    d = {}
    for n in names:
        d.setdefault(n, []).append(len(n))
    return total + len(",".join(sorted(d)))
)PY";

// A thread's events as (kind, name, flags, payload): what the models read
// (an exception's identity, which differs between runs, left out).
std::vector<std::string> projected(const std::vector<Event>& events) {
    std::vector<std::string> out;
    for (const Event& e : events) {
        const std::uint64_t payload = e.kind == EventKind::exception_info ? 0 : e.payload;
        out.push_back(std::to_string(static_cast<int>(e.kind)) + " " +
                      (e.location() != nullptr ? e.location()->display_name() : "?") + " f" + std::to_string(e.flags) +
                      " p" + std::to_string(payload));
    }
    return out;
}

TEST(MonitoringBackend, RecordsTheSameEventsAsTheProfileBackend) {
    SKIP_WITHOUT_MONITORING();
    for (const TracerOptions& options : {monitoring_options(false), monitoring_options(true),
                                         monitoring_options(true, false, true), monitoring_options(true, true, true)}) {
        Ref ns = exec_module(kSingleThread, "monitoring_same_events.py");
        ASSERT_TRUE(ns);
        // With exceptions: each raise or propagation followed by its exception_info, as
        // while the ExceptionCollector runs.
        pycroscope::python::detail::exception_details.store(options.exceptions);
        const Recorded monitoring = record(ns.get(), "main", options);
        TracerOptions profile = options;
        profile.backend = Backend::profile;
        const Recorded legacy = record(ns.get(), "main", profile);
        pycroscope::python::detail::exception_details.store(false);
        ASSERT_EQ(monitoring.backend, Backend::monitoring);
        ASSERT_EQ(legacy.backend, Backend::profile);
        ASSERT_EQ(monitoring.threads.size(), 1u);
        ASSERT_EQ(legacy.threads.size(), 1u);
        const auto ours = projected(monitoring.threads.begin()->second);
        std::size_t infos = 0;
        for (const Event& e : monitoring.threads.begin()->second) {
            infos += e.kind == EventKind::exception_info ? 1 : 0;
        }
        // 4 KeyErrors in thrower, middle and catcher; 3.12 also raises the GeneratorExit that
        // g.close() throws into gen (3.13 closes a generator paused outside any try without running it).
        EXPECT_EQ(infos, options.exceptions ? (PY_VERSION_HEX < 0x030D0000 ? 13u : 12u) : 0u);
        const auto theirs = projected(legacy.threads.begin()->second);
        EXPECT_GT(ours.size(), 40u);
        std::size_t first = 0;
        while (first < ours.size() && first < theirs.size() && ours[first] == theirs[first]) {
            ++first;
        }
        std::string window;
        for (std::size_t i = first >= 3 ? first - 3 : 0; i < first + 6; ++i) {
            window += "\n  " + (i < ours.size() ? ours[i] : "-") + "  |  " + (i < theirs.size() ? theirs[i] : "-");
        }
        EXPECT_EQ(ours, theirs) << "c_calls " << options.c_calls << " lines " << options.lines << " exceptions "
                                << options.exceptions << "; first difference at " << first
                                << " (monitoring | profile):" << window;
    }
}

// Exceptions: raised in every frame they reach, handled once, frames left
// by one flagged; the exception's identity follows while details are wanted.
TEST(MonitoringBackend, ExceptionsAreRaisedInEveryFrameTheyReachAndHandledOnce) {
    SKIP_WITHOUT_MONITORING();
    Ref ns = exec_module(kSingleThread, "monitoring_exceptions.py");
    ASSERT_TRUE(ns);
    PySession session;
    auto capture = std::make_shared<EventCapture>();
    session.add_sink(capture);
    session.collector<PythonTracer>().options = monitoring_options(false, true);
    session.start();
    pycroscope::python::detail::exception_details.store(true);
    Ref result = call(ns.get(), "catcher", Ref(Py_BuildValue("(i)", 10)).get());
    pycroscope::python::detail::exception_details.store(false);
    session.stop();
    ASSERT_TRUE(result);
    EXPECT_EQ(session.collector<PythonTracer>().backend(), Backend::monitoring);
    std::map<std::string, int> raised, handled, left;
    int infos = 0;
    for (const Event& e : capture->all()) {
        if (e.kind == EventKind::py_exception) {
            ++((e.flags & event_flags::exception) != 0 ? handled : raised)[e.location()->display_name()];
            EXPECT_GT(e.payload, 0u) << "a line number: " << e.location()->display_name() << " flags " << int(e.flags);
        } else if (e.kind == EventKind::exception_info) {
            ++infos;
            EXPECT_STREQ(e.location()->display_name(), "KeyError");
        } else if (e.kind == EventKind::py_return && (e.flags & event_flags::exception) != 0) {
            ++left[e.location()->display_name()];
        }
    }
    // i = 0, 3, 6, 9 raise.
    EXPECT_EQ(raised, (std::map<std::string, int>{{"catcher", 4}, {"middle", 4}, {"thrower", 4}}));
    // middle's finally is a handler too; the exception then leaves middle anyway.
    EXPECT_EQ(handled, (std::map<std::string, int>{{"catcher", 4}, {"middle", 4}}));
    EXPECT_EQ(left, (std::map<std::string, int>{{"middle", 4}, {"thrower", 4}}));
    EXPECT_EQ(infos, 12);
    const Reconstruction r = reconstruct(capture->all());
    EXPECT_EQ(r.unmatched_ends + r.mismatched, 0u) << r.problems;
}

// ---------------------------------------------------------------------------
// Which backend, and the tool id
// ---------------------------------------------------------------------------

TEST(MonitoringBackend, AutomaticPicksItUnlessProfileIsAskedFor) {
    SKIP_WITHOUT_MONITORING();
    TracerOptions minimal;
    minimal.c_calls = false;
    TracerOptions full;
    full.lines = true;
    full.exceptions = true;
    TracerOptions eval_frame = minimal;
    eval_frame.backend = Backend::eval_frame; // absent on 3.12+: the cheap backend instead
    for (const TracerOptions& options : {TracerOptions{}, minimal, full, eval_frame}) {
        EXPECT_EQ(PythonTracer::choose_backend(options), Backend::monitoring);
    }
    TracerOptions profile;
    profile.backend = Backend::profile;
    EXPECT_EQ(PythonTracer::choose_backend(profile), Backend::profile);
    EXPECT_STREQ(pycroscope::python::to_string(Backend::monitoring), "monitoring");
}

constexpr const char* kToolIds = R"PY(
import sys
M = sys.monitoring

def owners():
    return [M.get_tool(i) for i in range(6)]

def claim(*ids):
    for i in ids:
        M.use_tool_id(i, "other%d" % i)

def release(*ids):
    for i in ids:
        M.free_tool_id(i)

def callbacks_left(tool):
    # Claims the tool to read what is registered on it, then frees it.
    M.use_tool_id(tool, "probe")
    try:
        left = []
        for name in ("PY_START", "PY_RESUME", "PY_THROW", "PY_RETURN", "PY_YIELD", "PY_UNWIND", "CALL",
                     "C_RETURN", "C_RAISE", "LINE", "JUMP", "RAISE", "EXCEPTION_HANDLED"):
            event = getattr(M.events, name)
            previous = M.register_callback(tool, event, None)
            if previous is not None:
                left.append(name)
        return left, M.get_events(tool)
    finally:
        M.free_tool_id(tool)

def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

def main():
    return fib(10)
)PY";

Ref call_with(PyObject* globals, const char* name, const char* format, int a, int b) {
    Ref args(Py_BuildValue(format, a, b));
    return call(globals, name, args.get());
}

TEST(MonitoringBackend, HoldsOneFreeToolIdAndGivesItBackClean) {
    SKIP_WITHOUT_MONITORING();
    Ref ns = exec_module(kToolIds, "monitoring_tools.py");
    ASSERT_TRUE(ns);
    for (int round = 0; round < 2; ++round) { // start, stop, start again
        PySession session;
        auto capture = std::make_shared<EventCapture>();
        session.add_sink(capture);
        session.collector<PythonTracer>().options = monitoring_options(true, true, true);
        session.start();
        Ref owners = call(ns.get(), "owners");
        ASSERT_TRUE(owners);
        Ref four(PyUnicode_FromString("pycroscope"));
        EXPECT_EQ(PyObject_RichCompareBool(PyList_GET_ITEM(owners.get(), 4), four.get(), Py_EQ), 1);
        ASSERT_TRUE(call(ns.get(), "main"));
        session.stop();
        EXPECT_EQ(count_calls(capture->all(), "fib"), 177u);
        Ref after = call(ns.get(), "owners");
        ASSERT_TRUE(after);
        for (Py_ssize_t i = 0; i < 6; ++i) {
            if (i != 2) { // cProfile's, whatever else ran
                EXPECT_EQ(PyList_GET_ITEM(after.get(), i), Py_None) << "tool " << i << " still taken";
            }
        }
        Ref left = call_with(ns.get(), "callbacks_left", "(i)", 4, 0);
        ASSERT_TRUE(left);
        EXPECT_EQ(PyList_GET_SIZE(PyTuple_GET_ITEM(left.get(), 0)), 0) << "callbacks left registered on tool 4";
        EXPECT_EQ(PyLong_AsLong(PyTuple_GET_ITEM(left.get(), 1)), 0) << "events left set on tool 4";
    }
}

TEST(MonitoringBackend, TakesToolThreeWhenFourIsTaken) {
    SKIP_WITHOUT_MONITORING();
    Ref ns = exec_module(kToolIds, "monitoring_tools.py");
    ASSERT_TRUE(ns);
    ASSERT_TRUE(call_with(ns.get(), "claim", "(i)", 4, 0));
    PySession session;
    auto capture = std::make_shared<EventCapture>();
    session.add_sink(capture);
    session.collector<PythonTracer>().options = monitoring_options(false);
    session.start();
    Ref owners = call(ns.get(), "owners");
    ASSERT_TRUE(call(ns.get(), "main"));
    session.stop();
    ASSERT_TRUE(call_with(ns.get(), "release", "(i)", 4, 0));
    ASSERT_TRUE(owners);
    EXPECT_EQ(PyUnicode_CompareWithASCIIString(PyList_GET_ITEM(owners.get(), 3), "pycroscope"), 0);
    EXPECT_EQ(session.collector<PythonTracer>().backend(), Backend::monitoring);
    EXPECT_EQ(count_calls(capture->all(), "fib"), 177u);
    Ref after = call(ns.get(), "owners");
    ASSERT_TRUE(after);
    EXPECT_EQ(PyList_GET_ITEM(after.get(), 3), Py_None);
}

TEST(MonitoringBackend, BothToolIdsTakenFailsNamingTheOwnersOrStepsAsideToTheProfileBackend) {
    SKIP_WITHOUT_MONITORING();
    Ref ns = exec_module(kToolIds, "monitoring_tools.py");
    ASSERT_TRUE(ns);
    ASSERT_TRUE(call_with(ns.get(), "claim", "(ii)", 4, 3));
    {
        PySession session;
        TracerOptions options = monitoring_options(true);
        options.on_conflict = ConflictPolicy::fail;
        session.collector<PythonTracer>().options = options;
        expect_start_refused(session, "4 (other4), 3 (other3)");
    }
    {
        PySession session;
        auto capture = std::make_shared<EventCapture>();
        session.add_sink(capture);
        TracerOptions options = monitoring_options(true);
        options.on_conflict = ConflictPolicy::step_aside;
        session.collector<PythonTracer>().options = options;
        session.start();
        EXPECT_TRUE(call(ns.get(), "main"));
        session.stop();
        const auto& tracer = session.collector<PythonTracer>();
        EXPECT_EQ(tracer.backend(), Backend::profile);
        std::string all;
        for (const auto& c : tracer.conflicts()) {
            all += c + "\n";
        }
        EXPECT_NE(all.find("the profile backend records instead"), std::string::npos) << all;
        EXPECT_EQ(count_calls(capture->all(), "fib"), 177u);
    }
    ASSERT_TRUE(call_with(ns.get(), "release", "(ii)", 4, 3));
    Ref owners = call(ns.get(), "owners");
    ASSERT_TRUE(owners);
    EXPECT_EQ(PyList_GET_ITEM(owners.get(), 4), Py_None);
    EXPECT_EQ(PyList_GET_ITEM(owners.get(), 3), Py_None);
}

// ---------------------------------------------------------------------------
// The program's own tools run beside it, unchanged
// ---------------------------------------------------------------------------

constexpr const char* kProgramTools = R"PY(
import cProfile
import pstats
import sys

def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

def profiled():
    pr = cProfile.Profile()
    pr.enable()
    fib(12)
    pr.disable()
    stats = pstats.Stats(pr)
    return [v[1] for k, v in stats.stats.items() if k[2] == "fib"]

seen = []

def program_profile(frame, event, arg):
    if event == "call" and frame.f_code.co_name == "fib":
        seen.append(1)

def with_setprofile():
    seen.clear()
    sys.setprofile(program_profile)
    try:
        fib(8)
    finally:
        sys.setprofile(None)
    return len(seen)

def main():
    return profiled(), with_setprofile()
)PY";

TEST(MonitoringBackend, AProgramRunningCProfileOrSetprofileGetsItsOwnCorrectResults) {
    SKIP_WITHOUT_MONITORING();
    Ref ns = exec_module(kProgramTools, "monitoring_program_tools.py");
    ASSERT_TRUE(ns);
    for (ConflictPolicy policy : {ConflictPolicy::chain, ConflictPolicy::fail}) {
        PySession session;
        auto capture = std::make_shared<EventCapture>();
        session.add_sink(capture);
        TracerOptions options = monitoring_options(true);
        options.on_conflict = policy;
        session.collector<PythonTracer>().options = options;
        session.start();
        Ref result = call(ns.get(), "main");
        session.stop();
        ASSERT_TRUE(result) << "the program's cProfile / sys.setprofile must work under the tracer";
        Ref expected(Py_BuildValue("([i]i)", 465, 67));
        EXPECT_EQ(PyObject_RichCompareBool(result.get(), expected.get(), Py_EQ), 1)
            << PyUnicode_AsUTF8(Ref(PyObject_Repr(result.get())).get());
        EXPECT_EQ(count_calls(capture->all(), "fib"), 465u + 67u);
        EXPECT_TRUE(session.collector<PythonTracer>().conflicts().empty());
        const Reconstruction r = reconstruct(capture->all());
        EXPECT_EQ(r.unmatched_ends + r.mismatched, 0u) << r.problems;
    }
}

// ---------------------------------------------------------------------------
// Start and stop mid-stack
// ---------------------------------------------------------------------------

PySession* g_session = nullptr;
PyObject* py_start(PyObject*, PyObject*) {
    g_session->start();
    Py_RETURN_NONE;
}
PyObject* py_stop(PyObject*, PyObject*) {
    g_session->stop();
    Py_RETURN_NONE;
}
PyMethodDef kStart{"start_session", &py_start, METH_NOARGS, nullptr};
PyMethodDef kStop{"stop_session", &py_stop, METH_NOARGS, nullptr};

constexpr const char* kMidStack = R"PY(
def leaf(n):
    return len([n] * n)

def gen():
    yield leaf(1)
    start_session()
    yield leaf(2)
    yield leaf(3)

def inner(g):
    return next(g)

def outer():
    g = gen()
    inner(g)
    inner(g)            # resumes gen, which starts the session mid-stack
    leaf(4)
    return g

def stopper(g):
    inner(g)
    stop_session()      # stops three frames deep
    return leaf(5)

def main():
    g = outer()
    return stopper(g)
)PY";

TEST(MonitoringBackend, StartAndStopMidStackStayBalancedWithCCalls) {
    SKIP_WITHOUT_MONITORING();
    Ref ns = exec_module(kMidStack, "monitoring_midstack.py");
    ASSERT_TRUE(ns);
    Ref start(PyCFunction_New(&kStart, nullptr));
    Ref stop(PyCFunction_New(&kStop, nullptr));
    PyDict_SetItemString(ns.get(), "start_session", start.get());
    PyDict_SetItemString(ns.get(), "stop_session", stop.get());
    for (int round = 0; round < 2; ++round) {
        PySession session;
        auto capture = std::make_shared<EventCapture>();
        session.add_sink(capture);
        session.collector<PythonTracer>().options = monitoring_options(true, true);
        g_session = &session;
        Ref result = call(ns.get(), "main");
        g_session = nullptr;
        ASSERT_TRUE(result);
        EXPECT_EQ(session.collector<PythonTracer>().backend(), Backend::monitoring);
        const auto threads = capture->by_thread();
        ASSERT_EQ(threads.size(), 1u);
        const std::vector<Event>& events = threads.begin()->second;
        ASSERT_GE(events.size(), 4u);
        const char* running[] = {"main", "outer", "inner", "gen"};
        for (int i = 0; i < 4; ++i) {
            EXPECT_EQ(events[static_cast<std::size_t>(i)].kind, EventKind::py_call);
            EXPECT_NE(events[static_cast<std::size_t>(i)].flags & event_flags::synthetic, 0);
            EXPECT_STREQ(events[static_cast<std::size_t>(i)].location()->display_name(), running[i]);
        }
        const Reconstruction r = reconstruct(events);
        EXPECT_EQ(r.unmatched_ends, 0u) << r.problems;
        EXPECT_EQ(r.mismatched, 0u) << r.problems;
        std::vector<std::string> open;
        for (int i : r.open_at_end) {
            open.push_back(r.path(i));
        }
        EXPECT_EQ(open, (std::vector<std::string>{"main", "main > stopper", "main > stopper > stop_session"}))
            << "open when the session stopped";
        EXPECT_EQ(count_calls(events, "leaf"), 3u) << "leaf(2), leaf(3), leaf(4)";
        EXPECT_EQ(count_calls(events, "gen"), 1u) << "one resume after start";
        EXPECT_EQ(count_calls(events, "inner"), 1u);
        const auto c = c_call_counts(Recorded{threads, {}, Backend::monitoring});
        EXPECT_EQ(c.count("builtins.len") ? c.at("builtins.len") : 0u, 3u);
    }
}

} // namespace
} // namespace monitoring_backend_test
