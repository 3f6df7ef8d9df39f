// "For every Python function of a script, calls + resumes equals cProfile's
// ncalls on the same script and the same libpython."
//
// Each workload runs twice in this process's interpreter, each time from a
// fresh exec of its source: once under a Pycroscope session, once under
// cProfile. cProfile is itself a profile hook, so the two never run at the
// same time. For every function defined in the workload's file, Pycroscope's
// non-synthetic py_call + py_resume count must equal pstats' total ncalls.
//
// Threads: cProfile only sees the thread that enabled it. The harness
// (parity_harness.py, filtered out of the comparison) therefore starts a
// cProfile.Profile inside every thread the threads workload starts, and the
// comparison is over the sum of all threads on both sides: Pycroscope's
// per-thread buffers, cProfile's per-thread profilers. Per-thread placement
// is checked exactly in threads_test.cpp. From 3.12 cProfile is built on
// sys.monitoring, per interpreter: one profiler sees every thread and a
// second one cannot be enabled, so the harness starts only the main one.

#include "python/event_capture.hpp"

#include <gtest/gtest.h>

#include <string>
#include <tuple>

namespace cprofile_parity_test {
namespace {

using namespace pycroscope_test;

constexpr const char* kHarness = R"PY(
import cProfile
import sys
import threading

_lock = threading.Lock()
_profiles = []
MODE = None
PER_THREAD_PROFILERS = sys.version_info < (3, 12)

def quiet_excepthook(args):
    pass

def run_thread(target, *args):
    # Thread body wrapper: in cProfile mode every thread gets its own profiler.
    if MODE == "cprofile" and PER_THREAD_PROFILERS:
        pr = cProfile.Profile()
        pr.enable()
        try:
            return target(*args)
        finally:
            pr.disable()
            with _lock:
                _profiles.append(pr)
    return target(*args)

def _counts(profiles, filename):
    # pstats keys are (file, line, name), and pstats keeps only one of several
    # code objects with the same key (two comprehensions on one line): sum the
    # raw per-code-object entries instead. callcount is what pstats calls nc.
    out = {}
    for pr in profiles:
        for entry in pr.getstats():
            code = entry.code
            if isinstance(code, str) or code.co_filename != filename:
                continue
            key = (code.co_filename, code.co_firstlineno, code.co_name)
            out[key] = out.get(key, 0) + entry.callcount
    return sorted((f, l, n, c) for (f, l, n), c in out.items())

def profile_main(main, filename):
    global MODE
    _profiles.clear()
    old = threading.excepthook
    threading.excepthook = quiet_excepthook
    MODE = "cprofile"
    pr = cProfile.Profile()
    # enable()/disable() rather than runcall(): main then runs at the same
    # stack depth as under plain_main, which matters at the recursion limit.
    pr.enable()
    try:
        main(run_thread)
    finally:
        pr.disable()
        MODE = None
        threading.excepthook = old
    return _counts([pr] + _profiles, filename)

def plain_main(main):
    global MODE
    old = threading.excepthook
    threading.excepthook = quiet_excepthook
    MODE = "plain"
    try:
        return main(run_thread)
    finally:
        MODE = None
        threading.excepthook = old
)PY";

struct Workload {
    const char* name;
    const char* source;
    // Functions that must be among the compared ones with these exact counts
    // (guards against comparing two empty maps).
    std::vector<std::pair<const char*, std::uint64_t>> expected;
};

const Workload kRecursion{"recursion", R"PY(
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

def ackermann(m, n):
    if m == 0:
        return n + 1
    if n == 0:
        return ackermann(m - 1, 1)
    return ackermann(m - 1, ackermann(m, n - 1))

def is_even(n):
    return True if n == 0 else is_odd(n - 1)

def is_odd(n):
    return False if n == 0 else is_even(n - 1)

def hanoi(n, a, b, c, moves):
    if n:
        hanoi(n - 1, a, c, b, moves)
        moves.append((a, c))
        hanoi(n - 1, b, a, c, moves)

def runaway(n):
    return runaway(n + 1)

def hit_the_recursion_limit():
    import sys
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        runaway(0)
    except RecursionError:
        pass
    finally:
        sys.setrecursionlimit(old)

def main(run_thread):
    hit_the_recursion_limit()
    total = fib(15)
    total += ackermann(2, 3)
    total += is_even(101)
    moves = []
    hanoi(8, "a", "b", "c", moves)
    return total + len(moves)
)PY",
                            {{"fib", 1973}, {"hanoi", 511}, {"is_even", 51}, {"is_odd", 51}, {"main", 1}}};

const Workload kGenerators{"generators", R"PY(
import gc

def counter(n):
    i = 0
    while i < n:
        yield i
        i += 1

def echo():
    received = []
    try:
        while True:
            try:
                value = yield len(received)
            except ValueError:
                received.append(-1)
                continue
            received.append(value)
    finally:
        received.clear()

def sub_returning():
    yield "a"
    return "done"

def delegator(n):
    yield from counter(n)
    result = yield from sub_returning()
    yield result

def gen_with_finally(log):
    try:
        yield 1
        yield 2
        yield 3
    finally:
        log.append("closed")

def never_started():
    yield 1

def main(run_thread):
    total = sum(counter(10))                      # exhausted
    g = counter(100); next(g); next(g); g.close() # closed early
    e = echo(); next(e); e.send(1); e.send(2)
    e.throw(ValueError("x")); e.send(3); e.close()
    total += len(list(delegator(5)))              # yield from, return value
    log = []
    g2 = gen_with_finally(log); next(g2)
    del g2                                        # freed while suspended
    g3 = gen_with_finally(log); next(g3); next(g3); g3.close()
    n = never_started(); n.close()                # never runs
    n2 = never_started()
    try:
        n2.throw(KeyError("k"))                   # thrown into before it started
    except KeyError:
        pass
    g4 = gen_with_finally(log); next(g4)
    holder = [g4]; holder.append(holder)
    del g4, holder
    gc.collect()                                  # suspended generator in a cycle
    return total + len(log)
)PY",
#if PY_VERSION_HEX >= 0x030D0000
                             // 3.13 closes a generator suspended outside any
                             // try block without resuming its frame.
                             {{"counter", 11 + 2 + 6},
#else
                             {{"counter", 11 + 3 + 6},
#endif
                              {"gen_with_finally", 2 + 3 + 2},
#if PY_VERSION_HEX >= 0x030C0000
                              // 3.12+ closes a generator that never started
                              // without running its frame: the throw only.
                              {"never_started", 1}}};
#else
                              {"never_started", 2}}};
#endif

const Workload kAsync{"async", R"PY(
import asyncio

async def leaf(i):
    await asyncio.sleep(0)
    return i * 2

async def middle(n):
    total = 0
    for i in range(n):
        total += await leaf(i)
    return total

async def agen(n):
    for i in range(n):
        await asyncio.sleep(0)
        yield i

async def consume_agen(n):
    out = []
    async for v in agen(n):
        out.append(v)
    return out

async def raiser():
    await asyncio.sleep(0)
    raise ValueError("boom")

async def catcher():
    try:
        await raiser()
    except ValueError:
        return 1

async def amain():
    results = await asyncio.gather(middle(3), middle(4), consume_agen(5), catcher())
    ag = agen(10)
    async for v in ag:
        if v == 2:
            break
    await ag.aclose()
    task = asyncio.ensure_future(leaf(7))
    await task
    return results

def main(run_thread):
    return asyncio.run(amain())
)PY",
                        {{"main", 1}}};

const Workload kThreads{"threads", R"PY(
import threading
import _thread

def square(x):
    return x * x

def work(n):
    return sum(square(i) for i in range(n))

def worker(n):
    total = 0
    for _ in range(3):
        total += work(n)
    return total

def fails():
    square(3)
    raise RuntimeError("this thread dies by exception")

def main(run_thread):
    threads = [threading.Thread(target=run_thread, args=(worker, 10 + i)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t = threading.Thread(target=run_thread, args=(fails,))
    t.start()
    t.join()
    done = threading.Event()
    def low_level():
        try:
            worker(4)
        finally:
            done.set()
    _thread.start_new_thread(run_thread, (low_level,))
    done.wait()
    return worker(5)
)PY",
                          {{"worker", 5}, {"fails", 1}, {"square", 3 * (10 + 11 + 12) + 3 * 4 + 3 * 5 + 1}}};

const Workload kExceptions{"exceptions", R"PY(
class AppError(Exception):
    pass

def level3(x):
    if x % 3 == 0:
        raise AppError(x)
    return x

def cleanup():
    pass

def level2(x):
    try:
        return level3(x)
    finally:
        cleanup()

def level1(x):
    try:
        return level2(x)
    except AppError:
        return -1

def deep(n):
    if n == 0:
        raise KeyError("bottom")
    return deep(n - 1)

def catch_deep():
    try:
        deep(20)
    except KeyError:
        return 0

def reraise():
    try:
        level3(3)
    except AppError as e:
        raise ValueError("wrapped") from e

class Swallow:
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        return True

def with_context():
    with Swallow():
        level3(6)
    return 1

def main(run_thread):
    total = sum(level1(i) for i in range(30))
    catch_deep()
    try:
        reraise()
    except ValueError:
        pass
    with_context()
    for i in range(5):
        try:
            int("x%d" % i)
        except ValueError:
            pass
    return total
)PY",
                              {{"level3", 32}, {"cleanup", 30}, {"deep", 21}, {"__exit__", 1}}};

const Workload kMethods{"methods", R"PY(
class Shape:
    created = 0
    def __init__(self, size):
        self._size = size
        Shape.created += 1
    @property
    def size(self):
        return self._size
    @size.setter
    def size(self, value):
        self._size = value
    def area(self):
        return self._size * self._size
    @classmethod
    def make(cls, size):
        return cls(size)
    @staticmethod
    def unit():
        return 1
    def __repr__(self):
        return "Shape(%d)" % self._size
    def __eq__(self, other):
        return self._size == other._size
    def __hash__(self):
        return hash(self._size)
    def __lt__(self, other):
        return self._size < other._size

class Square(Shape):
    def area(self):
        return super().area()
    def __len__(self):
        return 4

def main(run_thread):
    shapes = [Shape.make(i) for i in range(10)] + [Square(i) for i in range(5)]
    total = sum(s.area() for s in shapes)
    for s in shapes:
        s.size = s.size + Shape.unit()
    total += len(set(shapes)) + len(repr(shapes))
    total += sum(len(s) for s in shapes if isinstance(s, Square))
    total += len(sorted(shapes))
    return total
)PY",
                           {{"make", 10}, {"unit", 15}, {"__len__", 5}, {"__init__", 15}}};

const Workload kComprehensions{"comprehensions", R"PY(
def main(run_thread):
    sq = lambda x: x * x
    xs = [sq(i) for i in range(20)]
    d = {i: sq(i) for i in range(10)}
    s = {i % 3 for i in xs}
    g = sum(x for x in xs if x % 2)
    nested = [[j for j in range(i)] for i in range(5)]
    keyed = sorted(range(10), key=lambda v: -v)
    fs = [lambda k=k: k for k in range(5)]
    total = sum(f() for f in fs)
    mapped = list(map(lambda a, b: a + b, xs, xs))
    partial = (i for i in range(100)); next(partial); next(partial)
    del partial
    return len(xs) + len(d) + len(s) + g + len(nested) + keyed[0] + total + len(mapped)
)PY",
#if PY_VERSION_HEX >= 0x030C0000
                                  // PEP 709 (3.12): comprehensions in a function
                                  // run inline, no call of their own.
                                  {{"<setcomp>", 0}, {"<dictcomp>", 0}, {"main", 1}}};
#else
                                  {{"<setcomp>", 1}, {"<dictcomp>", 1}, {"main", 1}}};
#endif

// Dunder methods called by the interpreter's own instructions, each in a hot
// loop: 3.11 specialises such sites (BINARY_SUBSCR_GETITEM before 3.11.4
// pushes __getitem__ past the PEP 523 hook), 3.12 and 3.13 specialise
// properties, generators driven by FOR_ITER and __init__ through type calls.
// The loops run long enough for every site to be quickened and specialised.
const Workload kDunders{"dunders", R"PY(
class Grid:
    def __init__(self, n):
        self.cells = list(range(n))
    def __getitem__(self, i):
        return self.cells[i]
    def __setitem__(self, i, value):
        self.cells[i] = value
    def __len__(self):
        return len(self.cells)
    def __iter__(self):
        return GridIter(self.cells)
    def __contains__(self, value):
        return False
    @property
    def first(self):
        return self.cells[0]

class GridIter:
    def __init__(self, cells):
        self.cells = cells
        self.i = 0
    def __iter__(self):
        return self
    def __next__(self):
        i = self.i
        if i >= len(self.cells):
            raise StopIteration
        self.i = i + 1
        return self.cells[i]

class Key:
    __slots__ = ("k",)
    def __init__(self, k):
        self.k = k
    def __eq__(self, other):
        return self.k == other.k
    def __hash__(self):
        return self.k

def gen(n):
    for i in range(n):
        yield i

def late_subscript(g, use):
    # Quickened by the first calls, subscripted only later: the site's first
    # execution is already specialisable.
    if use:
        return g[0] + g[1]
    return 0

def main(run_thread):
    g = Grid(50)
    total = 0
    for _ in range(8):
        for i in range(50):
            total += g[i]              # __getitem__ x 400
            g[i] = i                   # __setitem__ x 400
            total += len(g)            # __len__ x 400
            total += g.first           # property x 400
    for i in range(5000):              # past the adaptive counter's longest deferral
        total += g[i % 50]             # __getitem__ x 5000
    for _ in range(10):
        for v in g:                    # __iter__ x 10, __next__ x 510
            total += v
    for x in gen(300):                 # generator x 301 resumes
        total += x
    keys = [Key(i % 20) for i in range(300)]   # __init__ x 300
    seen = {}
    for k in keys:
        seen[k] = seen.get(k, 0) + 1   # __hash__ x 600, __eq__ on hits
    for _ in range(20):
        total += late_subscript(g, False)
    for _ in range(200):
        total += late_subscript(g, True)
    grids = [Grid(3) for _ in range(200)]   # __init__ x 200 (type call)
    return total + len(seen) + len(grids)
)PY",
                          {{"__getitem__", 8 * 50 + 5000 + 2 * 200},
                           {"__setitem__", 400},
                           {"__len__", 400},
                           {"first", 400},
                           {"__next__", 10 * 51},
                           {"__hash__", 600},
                           {"__iter__", 10},
                           {"__init__", 201 + 10 + 300},
                           {"gen", 301},
                           {"late_subscript", 220}}};

// The tracer options each mode of `pycroscope profile` resolves to
// (profile/profile_options.hpp, StandardProfile): --minimal is Python calls
// only (the eval-frame backend on 3.9-3.11), the default adds C calls and
// exceptions, --full adds lines.
std::vector<BackendCase> mode_cases() {
    pycroscope::python::TracerOptions minimal;
    minimal.c_calls = false;
    pycroscope::python::TracerOptions standard = profile_options();
    standard.exceptions = true;
    pycroscope::python::TracerOptions full = standard;
    full.lines = true;
    return {BackendCase{"minimal", minimal}, BackendCase{"default", standard}, BackendCase{"full", full}};
}

using ParityParam = std::tuple<Workload, BackendCase>;

class CProfileParity : public ::testing::TestWithParam<ParityParam> {
protected:
    void SetUp() override { ensure_python(); }
};

TEST_P(CProfileParity, CallsPlusResumesEqualCProfileNcalls) {
    const Workload& workload = std::get<0>(GetParam());
    const BackendCase& backend = std::get<1>(GetParam());
    const std::string file = std::string("parity_") + workload.name + ".py";

    Ref harness = exec_module(kHarness, "parity_harness.py", "parity_harness");
    ASSERT_TRUE(harness);

    // 1. Pycroscope.
    CallCounts ours;
    {
        Ref ns = exec_module(workload.source, file);
        ASSERT_TRUE(ns);
        PySession session;
        auto capture = std::make_shared<EventCapture>();
        session.add_sink(capture);
        session.collector<pycroscope::python::PythonTracer>().options = backend.options;
        session.start();
        Ref args(Py_BuildValue("(O)", PyDict_GetItemString(ns.get(), "main")));
        Ref result = call(harness.get(), "plain_main", args.get());
        const auto summary = session.stop();
        ASSERT_TRUE(result);
        EXPECT_EQ(summary.total_lost, 0u);
        for (const auto& thread : capture->by_thread()) {
            add_call_counts(ours, thread.second, file);
            EXPECT_EQ(call_tree_unmatched(thread.second), 0u) << "thread " << thread.first;
        }
    }

    // 2. cProfile, same source, fresh namespace.
    CallCounts theirs;
    {
        Ref ns = exec_module(workload.source, file);
        ASSERT_TRUE(ns);
        Ref args(Py_BuildValue("(Os)", PyDict_GetItemString(ns.get(), "main"), file.c_str()));
        Ref rows = call(harness.get(), "profile_main", args.get());
        ASSERT_TRUE(rows);
        ASSERT_TRUE(PyList_Check(rows.get()));
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(rows.get()); ++i) {
            const char* f = nullptr;
            const char* name = nullptr;
            int line = 0;
            unsigned long long count = 0;
            ASSERT_TRUE(PyArg_ParseTuple(PyList_GET_ITEM(rows.get(), i), "sisK", &f, &line, &name, &count))
                << take_python_error();
            theirs[FunctionKey{f, static_cast<std::uint32_t>(line), name}] += count;
        }
    }

    ASSERT_FALSE(theirs.empty());
    EXPECT_EQ(ours, theirs) << "per-function calls+resumes differ (" << backend.label << " vs cProfile):\n"
                            << diff_counts(theirs, ours, "cProfile", "pycroscope");
    for (const auto& expected : workload.expected) {
        std::uint64_t found = 0;
        for (const auto& entry : theirs) {
            if (std::get<2>(entry.first) == expected.first) {
                found += entry.second;
            }
        }
        EXPECT_EQ(found, expected.second) << "cProfile ncalls of " << expected.first;
    }
}

std::string parity_name(const ::testing::TestParamInfo<ParityParam>& info) {
    return std::string(std::get<0>(info.param).name) + "_" + std::get<1>(info.param).label;
}

INSTANTIATE_TEST_SUITE_P(Workloads, CProfileParity,
                         ::testing::Combine(::testing::Values(kRecursion, kGenerators, kAsync, kThreads, kExceptions,
                                                              kMethods, kComprehensions),
                                            ::testing::ValuesIn(backend_cases())),
                         parity_name);

INSTANTIATE_TEST_SUITE_P(Modes, CProfileParity,
                         ::testing::Combine(::testing::Values(kDunders), ::testing::ValuesIn(mode_cases())),
                         parity_name);

// A session that starts after a subscript site was specialised for a
// Python __getitem__ (3.11.0-3.11.3: BINARY_SUBSCR_GETITEM, past the PEP 523
// hook) still counts every call made from that site.
TEST(SubscriptSites, CallsFromASiteSpecialisedBeforeStartAreCounted) {
    ensure_python();
    Ref ns = exec_module(R"PY(
class Row:
    def __getitem__(self, i):
        return i

def read(row, n):
    total = 0
    for i in range(n):
        total += row[i]
    return total
)PY",
                         "subscript_before_start.py");
    ASSERT_TRUE(ns);
    PyObject* read = PyDict_GetItemString(ns.get(), "read");
    Ref row(PyObject_CallObject(PyDict_GetItemString(ns.get(), "Row"), nullptr));
    ASSERT_TRUE(row);
    Ref warm(PyObject_CallFunction(read, "Oi", row.get(), 1000));
    ASSERT_TRUE(warm) << take_python_error();

    for (const BackendCase& mode : mode_cases()) {
        PySession session;
        auto capture = std::make_shared<EventCapture>();
        session.add_sink(capture);
        session.collector<pycroscope::python::PythonTracer>().options = mode.options;
        session.start();
        Ref result(PyObject_CallFunction(read, "Oi", row.get(), 3000));
        session.stop();
        ASSERT_TRUE(result) << take_python_error();
        CallCounts ours;
        for (const auto& thread : capture->by_thread()) {
            add_call_counts(ours, thread.second, "subscript_before_start.py");
        }
        const FunctionKey getitem{"subscript_before_start.py", 3, "__getitem__"};
        const FunctionKey reader{"subscript_before_start.py", 6, "read"};
        EXPECT_EQ(ours[getitem], 3000u) << mode.label;
        EXPECT_EQ(ours[reader], 1u) << mode.label;
    }
}

} // namespace
} // namespace cprofile_parity_test
