// The builtin `pycroscope` module: zones (with and decorator), marks,
// counters, thread names, profile() with the default and a host handler,
// and stop_at_exit(). Runs in the test process's one interpreter.

#include "python/python_environment.hpp"
#include "support/json.hpp"
#include "support/recording_sink.hpp"

#include <pycroscope.hpp>
#include <pycroscope/python/python.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace module_test {
namespace {

namespace py = pycroscope::python;
namespace fs = std::filesystem;
using pycroscope::Event;
using pycroscope::EventKind;
using pycroscope::LocationKind;
using pycroscope_test::RecordingSink;
using TracedSession = pycroscope::Session<pycroscope::NativeZones, py::PythonTracer>;

// The pending Python exception as "Type: message" (cleared).
std::string take_error() {
    PyObject *type = nullptr, *value = nullptr, *traceback = nullptr;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    std::string text = type != nullptr ? reinterpret_cast<PyTypeObject*>(type)->tp_name : "?";
    if (value != nullptr) {
        PyObject* str = PyObject_Str(value);
        if (str != nullptr) {
            text += ": ";
            text += PyUnicode_AsUTF8(str);
            Py_DECREF(str);
        }
    }
    PyErr_Clear();
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
    return text;
}

fs::path temp_root() {
#if defined(__unix__) || defined(__APPLE__)
    const std::string pid = std::to_string(::getpid());
#else
    const std::string pid = "0";
#endif
    return fs::temp_directory_path() / ("pycroscope_module_test_" + pid);
}

std::string temp_dir(const std::string& name) {
    const fs::path dir = temp_root() / name;
    fs::remove_all(dir);
    return dir.string();
}

class RemoveTempRoot : public ::testing::Environment {
public:
    void TearDown() override {
        std::error_code ignored;
        fs::remove_all(temp_root(), ignored);
    }
};
::testing::Environment* const remove_temp_root = ::testing::AddGlobalTestEnvironment(new RemoveTempRoot);

std::string name_of(const Event& e) {
    const pycroscope::SourceLocation* location = e.location();
    return location != nullptr ? location->display_name() : "";
}

bool is_python(const Event& e, const char* name) {
    return e.location() != nullptr && e.location()->kind == LocationKind::python_function && name_of(e) == name;
}

// Strict nesting on one thread: every close matches the innermost open span.
struct Nesting {
    std::vector<std::string> problems;
    // For each zone_begin of the zone, the innermost Python function open at that point.
    std::vector<std::string> zone_parents;
};

Nesting check_nesting(const std::vector<Event>& events, const std::string& zone) {
    Nesting result;
    std::vector<const Event*> open;
    for (const Event& e : events) {
        if (pycroscope::opens_span(e.kind)) {
            if (e.kind == EventKind::zone_begin && name_of(e) == zone) {
                std::string parent = "<none>";
                for (auto it = open.rbegin(); it != open.rend(); ++it) {
                    if ((*it)->location()->kind == LocationKind::python_function) {
                        parent = name_of(**it);
                        break;
                    }
                }
                result.zone_parents.push_back(parent);
            }
            open.push_back(&e);
        } else if (pycroscope::closes_span(e.kind)) {
            if (open.empty()) {
                result.problems.push_back("close of " + name_of(e) + " with nothing open");
            } else if (open.back()->location() != e.location()) {
                result.problems.push_back("close of " + name_of(e) + " while " + name_of(*open.back()) +
                                          " is innermost");
                open.pop_back();
            } else {
                open.pop_back();
            }
        }
    }
    for (const Event* e : open) {
        result.problems.push_back("never closed: " + name_of(*e));
    }
    return result;
}

std::size_t count(const std::vector<Event>& events, EventKind kind, const std::string& name) {
    std::size_t n = 0;
    for (const Event& e : events) {
        n += (e.kind == kind && name_of(e) == name) ? 1 : 0;
    }
    return n;
}

// The events of the thread that recorded the given zone (all of them if none).
std::vector<Event> thread_with(const RecordingSink& sink, const std::string& zone) {
    for (const auto& entry : sink.events_by_thread()) {
        if (count(entry.second, EventKind::zone_begin, zone) > 0) {
            return entry.second;
        }
    }
    return sink.all_events();
}

class ModuleTest : public ::testing::Test {
protected:
    void SetUp() override {
        pycroscope_test::ensure_python();
        globals_ = PyDict_New();
        ASSERT_NE(globals_, nullptr);
        PyDict_SetItemString(globals_, "__builtins__", PyEval_GetBuiltins());
        ASSERT_TRUE(run("import pycroscope"));
    }
    void TearDown() override {
        py::set_profile_handler({});
        Py_CLEAR(globals_);
    }

    // Runs statements in this test's globals; a Python error fails the test.
    bool run(const std::string& code) {
        PyObject* result = PyRun_String(code.c_str(), Py_file_input, globals_, globals_);
        if (result == nullptr) {
            ADD_FAILURE() << "Python error: " << take_error() << "\nin:\n" << code;
            return false;
        }
        Py_DECREF(result);
        return true;
    }

    // Runs statements that must raise; returns "Type: message".
    std::string run_error(const std::string& code) {
        PyObject* result = PyRun_String(code.c_str(), Py_file_input, globals_, globals_);
        if (result != nullptr) {
            Py_DECREF(result);
            ADD_FAILURE() << "expected an exception from:\n" << code;
            return "";
        }
        return take_error();
    }

    PyObject* eval(const std::string& expression) {
        PyObject* result = PyRun_String(expression.c_str(), Py_eval_input, globals_, globals_);
        if (result == nullptr) {
            ADD_FAILURE() << "Python error: " << take_error() << "\nin: " << expression;
        }
        return result;
    }
    std::string eval_str(const std::string& expression) {
        PyObject* result = eval(expression);
        if (result == nullptr) {
            return "<error>";
        }
        PyObject* text = PyObject_Str(result);
        std::string out = text != nullptr ? PyUnicode_AsUTF8(text) : "<error>";
        Py_XDECREF(text);
        Py_DECREF(result);
        return out;
    }
    double eval_double(const std::string& expression) {
        PyObject* result = eval(expression);
        if (result == nullptr) {
            return -1;
        }
        const double value = PyFloat_AsDouble(result);
        Py_DECREF(result);
        return value;
    }
    void set_global(const char* name, const std::string& value) {
        PyObject* text = PyUnicode_FromString(value.c_str());
        PyDict_SetItemString(globals_, name, text);
        Py_DECREF(text);
    }

    PyObject* globals_ = nullptr;
};

// --- zones --------------------------------------------------------------

struct BackendCase {
    const char* label;
    py::TracerOptions options;
};

class ZoneNestingTest : public ModuleTest, public ::testing::WithParamInterface<BackendCase> {};

TEST_P(ZoneNestingTest, WithZoneNestsInsideTheFunctionOnTheSameThread) {
    ASSERT_TRUE(run(R"PY(
def outer_function():
    total = 0
    with pycroscope.zone("inner zone"):
        for i in range(10):
            total += len([i])
    return total
)PY"));
    TracedSession session;
    session.collector<py::PythonTracer>().options = GetParam().options;
    auto sink = std::make_shared<RecordingSink>();
    session.add_sink(sink);
    session.start();
    const bool ok = run("for _ in range(3):\n    outer_function()\n");
    session.stop();
    ASSERT_TRUE(ok);

    const std::vector<Event> events = thread_with(*sink, "inner zone");
    EXPECT_EQ(count(events, EventKind::zone_begin, "inner zone"), 3u);
    EXPECT_EQ(count(events, EventKind::zone_end, "inner zone"), 3u);
    std::size_t outer_calls = 0;
    for (const Event& e : events) {
        outer_calls += (e.kind == EventKind::py_call && is_python(e, "outer_function")) ? 1 : 0;
    }
    EXPECT_EQ(outer_calls, 3u);
    const Nesting nesting = check_nesting(events, "inner zone");
    EXPECT_TRUE(nesting.problems.empty()) << nesting.problems.front();
    ASSERT_EQ(nesting.zone_parents.size(), 3u);
    for (const auto& parent : nesting.zone_parents) {
        EXPECT_EQ(parent, "outer_function");
    }
    const pycroscope::SourceLocation* zone = nullptr;
    for (const Event& e : events) {
        if (e.kind == EventKind::zone_begin) {
            zone = e.location();
        }
    }
    ASSERT_NE(zone, nullptr);
    EXPECT_EQ(zone->kind, LocationKind::dynamic_zone);
}

py::TracerOptions options_for(py::Backend backend, bool c_calls) {
    py::TracerOptions options;
    options.backend = backend;
    options.c_calls = c_calls;
    return options;
}

INSTANTIATE_TEST_SUITE_P(Backends, ZoneNestingTest,
                         ::testing::Values(BackendCase{"automatic", options_for(py::Backend::automatic, false)},
                                           BackendCase{"profile_with_c_calls",
                                                       options_for(py::Backend::profile, true)}),
                         [](const ::testing::TestParamInfo<BackendCase>& info) { return std::string(info.param.label); });

TEST_F(ModuleTest, DecoratorWrapsEveryCallAndNestsRecursion) {
    ASSERT_TRUE(run(R"PY(
@pycroscope.zone("decorated")
def work(n):
    "work's doc"
    return n * 2

@pycroscope.zone("recursive")
def rec(n):
    return 0 if n == 0 else 1 + rec(n - 1)

@pycroscope.zone
def bare():
    return "bare"

class Widget:
    @pycroscope.zone("method zone")
    def method(self, x):
        return (self, x)
)PY"));
    EXPECT_EQ(eval_str("work.__name__"), "work");
    EXPECT_EQ(eval_str("work.__qualname__"), "work");
    EXPECT_EQ(eval_str("work.__doc__"), "work's doc");
    EXPECT_EQ(eval_str("work.__wrapped__.__name__"), "work");
    EXPECT_EQ(eval_str("work.zone_name"), "decorated");
    EXPECT_EQ(eval_str("bare.zone_name"), "bare");
    EXPECT_EQ(eval_str("isinstance(pycroscope.zone('x'), pycroscope.Zone)"), "True");

    TracedSession session;
    auto sink = std::make_shared<RecordingSink>();
    session.add_sink(sink);
    session.start();
    const bool ok = run(R"PY(
results = [work(i) for i in range(7)]
depth = rec(4)
w = Widget()
same, x = w.method(5)
assert same is w and x == 5, (same, x)
assert bare() == "bare"
)PY");
    session.stop();
    ASSERT_TRUE(ok);
    EXPECT_EQ(eval_str("results"), "[0, 2, 4, 6, 8, 10, 12]");
    EXPECT_EQ(eval_str("depth"), "4");

    const std::vector<Event> events = sink->all_events();
    EXPECT_EQ(count(events, EventKind::zone_begin, "decorated"), 7u);
    EXPECT_EQ(count(events, EventKind::zone_end, "decorated"), 7u);
    EXPECT_EQ(count(events, EventKind::zone_begin, "recursive"), 5u);
    EXPECT_EQ(count(events, EventKind::zone_end, "recursive"), 5u);
    EXPECT_EQ(count(events, EventKind::zone_begin, "method zone"), 1u);
    EXPECT_EQ(count(events, EventKind::zone_begin, "bare"), 1u);
    const Nesting nesting = check_nesting(thread_with(*sink, "recursive"), "recursive");
    EXPECT_TRUE(nesting.problems.empty()) << nesting.problems.front();
    // The zone of call k encloses the function of call k: the outermost is
    // opened from <module>, each deeper one from rec.
    ASSERT_EQ(nesting.zone_parents.size(), 5u);
    EXPECT_EQ(nesting.zone_parents[0], "<module>");
    for (std::size_t i = 1; i < nesting.zone_parents.size(); ++i) {
        EXPECT_EQ(nesting.zone_parents[i], "rec");
    }
}

TEST_F(ModuleTest, ZonesCostNothingWithoutASession) {
    EXPECT_EQ(eval_str("pycroscope.is_recording()"), "False");
    EXPECT_TRUE(run(R"PY(
with pycroscope.zone("idle"):
    pass
pycroscope.mark("idle mark")
pycroscope.counter("idle counter", 1)
pycroscope.frame_mark()
)PY"));
}

TEST_F(ModuleTest, ZoneOpenedBeforeTheSessionIsNotClosedInIt) {
    ASSERT_TRUE(run("z = pycroscope.zone('straddling')\nz.__enter__()\n"));
    pycroscope::Session<pycroscope::NativeZones> session;
    auto sink = std::make_shared<RecordingSink>();
    session.add_sink(sink);
    session.start();
    const bool ok = run("z.__exit__(None, None, None)\nwith z:\n    pass\n");
    session.stop();
    ASSERT_TRUE(ok);
    const std::vector<Event> events = sink->all_events();
    EXPECT_EQ(count(events, EventKind::zone_begin, "straddling"), 1u);
    EXPECT_EQ(count(events, EventKind::zone_end, "straddling"), 1u);
}

TEST_F(ModuleTest, ZoneWorksWithExitStackAndExceptions) {
    pycroscope::Session<pycroscope::NativeZones> session;
    auto sink = std::make_shared<RecordingSink>();
    session.add_sink(sink);
    session.start();
    const bool ok = run(R"PY(
import contextlib
with contextlib.ExitStack() as stack:
    stack.enter_context(pycroscope.zone("stacked"))
caught = False
try:
    with pycroscope.zone("raising"):
        raise KeyError("inside")
except KeyError:
    caught = True
assert caught
)PY");
    session.stop();
    ASSERT_TRUE(ok);
    const std::vector<Event> events = sink->all_events();
    EXPECT_EQ(count(events, EventKind::zone_begin, "stacked"), 1u);
    EXPECT_EQ(count(events, EventKind::zone_end, "stacked"), 1u);
    EXPECT_EQ(count(events, EventKind::zone_begin, "raising"), 1u);
    EXPECT_EQ(count(events, EventKind::zone_end, "raising"), 1u);
}

TEST_F(ModuleTest, SameZoneObjectNestsUpTo64Levels) {
    ASSERT_TRUE(run("z = pycroscope.zone('deep')\nfor _ in range(64):\n    z.__enter__()\n"));
    EXPECT_NE(run_error("z.__enter__()").find("RuntimeError"), std::string::npos);
    ASSERT_TRUE(run("for _ in range(64):\n    z.__exit__(None, None, None)\n"));
    EXPECT_NE(run_error("z.__exit__(None, None, None)").find("RuntimeError"), std::string::npos);
}

TEST_F(ModuleTest, ArgumentErrorsAreTypeErrors) {
    EXPECT_NE(run_error("pycroscope.zone(3)").find("TypeError"), std::string::npos);
    EXPECT_NE(run_error("pycroscope.mark(1)").find("TypeError"), std::string::npos);
    EXPECT_NE(run_error("pycroscope.counter('c', 'x')").find("TypeError"), std::string::npos);
    EXPECT_NE(run_error("pycroscope.counter('c')").find("TypeError"), std::string::npos);
    EXPECT_NE(run_error("pycroscope.set_thread_name(None)").find("TypeError"), std::string::npos);
    EXPECT_NE(run_error("pycroscope.zone('z')(1)").find("TypeError"), std::string::npos);
}

TEST_F(ModuleTest, MarkCounterFrameMarkAndThreadNameLand) {
    pycroscope::Session<pycroscope::NativeZones> session;
    auto sink = std::make_shared<RecordingSink>();
    session.add_sink(sink);
    session.start();
    EXPECT_EQ(eval_str("pycroscope.is_recording()"), "True");
    const bool ok = run(R"PY(
pycroscope.set_thread_name("python main")
pycroscope.mark("checkpoint")
pycroscope.counter("queue depth", 42.5)
pycroscope.counter("queue depth", 7)
pycroscope.frame_mark()
pycroscope.frame_mark("physics")
)PY");
    const pycroscope::SessionSummary summary = session.stop();
    pycroscope::set_thread_name(""); // later tests get the default name again
    ASSERT_TRUE(ok);

    std::vector<double> values;
    std::size_t marks = 0, frames = 0, physics = 0;
    for (const Event& e : sink->all_events()) {
        if (e.kind == EventKind::instant && name_of(e) == "checkpoint") {
            ++marks;
            EXPECT_EQ(e.location()->kind, LocationKind::mark);
        } else if (e.kind == EventKind::counter && name_of(e) == "queue depth") {
            values.push_back(e.value());
        } else if (e.kind == EventKind::frame_mark) {
            ++frames;
            physics += name_of(e) == "physics" ? 1 : 0;
        }
    }
    EXPECT_EQ(marks, 1u);
    EXPECT_EQ(values, (std::vector<double>{42.5, 7.0}));
    EXPECT_EQ(frames, 2u);
    EXPECT_EQ(physics, 1u);
    ASSERT_EQ(summary.threads.size(), 1u);
    EXPECT_EQ(summary.threads[0].name, "python main");
}

// --- profile() ------------------------------------------------------------

TEST_F(ModuleTest, ProfileContextManagerWritesTheSession) {
    const std::string out = temp_dir("context");
    set_global("OUT", out);
    ASSERT_TRUE(run(R"PY(
def profiled_function(n):
    return n + 1

with pycroscope.profile(output_dir=OUT) as session:
    assert session.running
    for i in range(25):
        profiled_function(i)
    with pycroscope.zone("in profile"):
        pass
)PY"));
    EXPECT_GT(eval_double("session.duration"), 0.0);
    EXPECT_EQ(eval_double("session.duration"), eval_double("session.duration")); // frozen at exit
    EXPECT_EQ(eval_str("session.running"), "False");
    // The default mode: sampled memory; exceptions where sys.monitoring makes them cheap (3.12+).
    EXPECT_EQ(eval_str("session.get_completed_profilers()"),
              PYCROSCOPE_HAS_SYS_MONITORING
                  ? "['native_zones', 'python', 'exceptions', 'gc', 'imports', 'io', 'memory', 'system_monitor']"
                  : "['native_zones', 'python', 'gc', 'imports', 'io', 'memory', 'system_monitor']");
    EXPECT_EQ(eval_str("session.output_dir"), out);
    EXPECT_EQ(eval_str("len(session.files)"), "4");
    for (const char* file : {"session.json", "stacks.folded", "memory.folded", "capture.pycro"}) {
        EXPECT_TRUE(fs::exists(fs::path(out) / file)) << file;
    }

    const json::Value doc = json::parse_file((fs::path(out) / "session.json").string());
    const json::Value& functions = doc.at("functions");
    std::int64_t calls = -1;
    for (std::size_t i = 0; i < functions.size(); ++i) {
        if (functions[i].at("name").as_string() == "profiled_function") {
            calls = functions[i].at("calls").as_int();
        }
    }
    EXPECT_EQ(calls, 25);
    bool zone_found = false;
    const json::Value& zones = doc.at("zones");
    for (std::size_t i = 0; i < zones.size(); ++i) {
        zone_found = zone_found || zones[i].at("name").as_string() == "in profile";
    }
    EXPECT_TRUE(zone_found);
    EXPECT_EQ(doc.at("unmatched_ends").as_int(), 0);
}

// The modes as keyword arguments: full=True records exceptions and every
// allocation, memory_sample sets the interval, and contradictions raise.
TEST_F(ModuleTest, ProfileModesAreKeywordArguments) {
    const std::string out = temp_dir("full");
    set_global("OUT", out);
    ASSERT_TRUE(run(R"PY(
def raises():
    try:
        raise KeyError("k")
    except KeyError:
        pass

with pycroscope.profile(output_dir=OUT, full=True, sinks="json") as full_session:
    for i in range(3):
        raises()
)PY"));
    EXPECT_EQ(eval_str("full_session.get_completed_profilers()"),
              "['native_zones', 'python', 'exceptions', 'gc', 'imports', 'io', 'memory', 'system_monitor']");
    const json::Value doc = json::parse_file((fs::path(out) / "session.json").string());
    EXPECT_EQ(doc.at("metadata").at("profile_mode").as_string(), "full");
    EXPECT_EQ(doc.at("memory").at("sampling").at("mode").as_string(), "full");
    std::int64_t raised = 0;
    for (const auto& site : doc.at("exceptions").items()) {
        if (site.at("function").as_string() == "raises") {
            raised += site.at("raised").as_int();
        }
    }
    EXPECT_EQ(raised, 3);

    const std::string sampled = temp_dir("sampled");
    set_global("OUT", sampled);
    ASSERT_TRUE(run("with pycroscope.profile(output_dir=OUT, memory_sample=4096, sinks='json'):\n"
                    "    data = [bytes(100) for _ in range(1000)]\n"));
    const json::Value sampled_doc = json::parse_file((fs::path(sampled) / "session.json").string());
    EXPECT_EQ(sampled_doc.at("metadata").at("profile_mode").as_string(), "default");
    EXPECT_EQ(sampled_doc.at("memory").at("sampling").at("sample_bytes").as_int(), 4096);

    EXPECT_NE(run_error("pycroscope.profile(full=True, minimal=True)").find("choose one mode"), std::string::npos);
    EXPECT_NE(run_error("pycroscope.profile(memory_sample=-1)").find("memory_sample"), std::string::npos);
    EXPECT_NE(run_error("pycroscope.profile(memory=False, memory_sample=8)").find("contradict"), std::string::npos);
}

TEST_F(ModuleTest, ProfileDecoratorProfilesEachOutermostCall) {
    const std::string out = temp_dir("decorator");
    set_global("OUT", out);
    ASSERT_TRUE(run(R"PY(
def leaf():
    return 1

@pycroscope.profile(output_dir=OUT, minimal=True)
def profiled_entry(n):
    "entry doc"
    total = sum(leaf() for _ in range(n))
    return total if n == 0 else total + profiled_entry(0)

first = profiled_entry(10)
first_session = profiled_entry.last_session
second = profiled_entry(12)
)PY"));
    EXPECT_EQ(eval_str("first"), "10");
    EXPECT_EQ(eval_str("second"), "12");
    EXPECT_EQ(eval_str("profiled_entry.__name__"), "profiled_entry");
    EXPECT_EQ(eval_str("profiled_entry.__doc__"), "entry doc");
    EXPECT_EQ(eval_str("first_session is not profiled_entry.last_session"), "True");
    // minimal=True: the eval_frame backend where there is one (3.9-3.11),
    // sys.monitoring on 3.12+, and neither exceptions nor memory either way.
    EXPECT_EQ(eval_str("profiled_entry.last_session.get_completed_profilers()"),
              "['native_zones', 'python', 'gc', 'imports', 'io', 'system_monitor']");

    // The second call overwrote the outputs: its counts.
    const json::Value doc = json::parse_file((fs::path(out) / "session.json").string());
    EXPECT_EQ(doc.at("python").at("backend").as_string(), PYCROSCOPE_HAS_EVAL_FRAME_BACKEND ? "eval_frame" : "monitoring");
    const json::Value& functions = doc.at("functions");
    std::int64_t leaf_calls = -1, entry_calls = -1;
    for (std::size_t i = 0; i < functions.size(); ++i) {
        const std::string& name = functions[i].at("name").as_string();
        if (name == "leaf") {
            leaf_calls = functions[i].at("calls").as_int();
        } else if (name == "profiled_entry") {
            entry_calls = functions[i].at("calls").as_int();
        }
    }
    EXPECT_EQ(leaf_calls, 12);
    EXPECT_EQ(entry_calls, 2); // the outer call and the recursive one
}

TEST_F(ModuleTest, ProfileDecoratorKeepsTheFunctionsException) {
    const std::string out = temp_dir("raising");
    set_global("OUT", out);
    ASSERT_TRUE(run(R"PY(
@pycroscope.profile(output_dir=OUT)
def fails():
    raise LookupError("from the function")

try:
    fails()
    raised = None
except LookupError as error:
    raised = str(error)
)PY"));
    EXPECT_EQ(eval_str("raised"), "from the function");
    EXPECT_EQ(eval_str("fails.last_session.running"), "False");
    EXPECT_TRUE(fs::exists(fs::path(out) / "session.json"));
}

// What Python sees of ZonedFunction and ProfiledFunction: type, repr,
// copied attributes, binding, weak references, collection of cycles, errors.
TEST_F(ModuleTest, FunctionWrappersLookAndBehaveLikeFunctions) {
    set_global("OUT", temp_dir("wrappers"));
    ASSERT_TRUE(run(R"PY(
import gc, weakref

def plain(a, b=2):
    "plain doc"
    return (a, b)
plain.tag = "copied"

zone = pycroscope.zone("wrapper zone")
zoned = zone(plain)
bare = pycroscope.zone(plain)
profile = pycroscope.profile(output_dir=OUT, minimal=True)
profiled = profile(plain)
zoned.extra = "own"
)PY"));
    EXPECT_EQ(eval_str("repr(type(zoned)), repr(type(profiled))"),
              "(\"<class 'pycroscope.ZonedFunction'>\", \"<class 'pycroscope.ProfiledFunction'>\")");
    EXPECT_EQ(eval_str("type(zoned) is pycroscope.ZonedFunction and type(profiled) is pycroscope.ProfiledFunction"),
              "True");
    EXPECT_EQ(eval_str("pycroscope.ZonedFunction.__doc__"), "A function whose every call is a pycroscope zone.");
    EXPECT_EQ(eval_str("pycroscope.ProfiledFunction.__doc__"), "A function profiled on every (outermost) call.");
    EXPECT_EQ(eval_str("repr(zoned) == \"<pycroscope.zone 'wrapper zone' wrapping %r>\" % (plain,)"), "True");
    EXPECT_EQ(eval_str("repr(bare) == \"<pycroscope.zone 'plain' wrapping %r>\" % (plain,)"), "True");
    EXPECT_EQ(eval_str("repr(profiled) == '<pycroscope.profile wrapping %r>' % (plain,)"), "True");

    for (const char* wrapper : {"zoned", "profiled"}) {
        const std::string w = wrapper;
        EXPECT_EQ(eval_str(w + ".__wrapped__ is plain"), "True") << w;
        EXPECT_EQ(eval_str("(" + w + ".__name__, " + w + ".__qualname__, " + w + ".__doc__, " + w + ".tag)"),
                  "('plain', 'plain', 'plain doc', 'copied')")
            << w;
    }
    EXPECT_EQ(eval_str("zoned.__dict__['extra'], 'extra' in plain.__dict__"), "('own', False)");
    EXPECT_EQ(eval_str("zoned.zone_name, bare.zone_name, hasattr(zoned, 'last_session')"),
              "('wrapper zone', 'plain', False)");
    EXPECT_EQ(eval_str("profiled.last_session, hasattr(profiled, 'zone_name')"), "(None, False)");

    ASSERT_TRUE(run(R"PY(
called = (zoned(1), zoned(1, b=3), bare(b=4, a=0), profiled(5, b=6))

class Holder:
    zoned = zone(plain)
    profiled = profile(plain)

holder = Holder()
bound = (holder.zoned(7), holder.profiled(b=8))
)PY"));
    EXPECT_EQ(eval_str("called"), "((1, 2), (1, 3), (0, 4), (5, 6))");
    EXPECT_EQ(eval_str("profiled.last_session is profile.session and not profiled.last_session.running"), "True");
    EXPECT_EQ(eval_str("bound == ((holder, 7), (holder, 8))"), "True");
    EXPECT_EQ(eval_str("Holder.zoned is Holder.__dict__['zoned'], Holder.profiled is Holder.__dict__['profiled']"),
              "(True, True)");
    EXPECT_EQ(eval_str("holder.zoned.__self__ is holder and holder.profiled.__func__ is Holder.__dict__['profiled']"),
              "True");

    // Cycles through the function, the __dict__ and the profile (its options).
    ASSERT_TRUE(run(R"PY(
class Dir:
    def __fspath__(self):
        return OUT

def make_cycles():
    @pycroscope.zone("cycle")
    def through_function():
        return through_function
    through_dict = zone(plain)
    through_dict.me = through_dict
    owner_dir = Dir()
    through_profile = pycroscope.profile(output_dir=owner_dir)(plain)
    owner_dir.wrapper = through_profile
    return [weakref.ref(w) for w in (through_function, through_dict, through_profile)]

refs = make_cycles()
alive_before = [r() is not None for r in refs]
gc.collect()
alive_after = [r() is not None for r in refs]
plain_ref = weakref.ref(pycroscope.zone(plain))
)PY"));
    EXPECT_EQ(eval_str("alive_before"), "[True, True, True]");
    EXPECT_EQ(eval_str("alive_after"), "[False, False, False]");
    EXPECT_EQ(eval_str("plain_ref()"), "None");

    EXPECT_EQ(run_error("pycroscope.zone('z')(1)"),
              "TypeError: pycroscope.zone() can decorate callables only, not int");
    EXPECT_EQ(run_error("pycroscope.profile(output_dir=OUT)(1)"),
              "TypeError: pycroscope.profile() can decorate callables only, not int");
    EXPECT_EQ(run_error("pycroscope.zone('z')(plain, plain)"), "TypeError: zone expected 1 argument, got 2");
    EXPECT_EQ(run_error("pycroscope.profile(output_dir=OUT)(plain, plain)"),
              "TypeError: profile expected 1 argument, got 2");
    EXPECT_EQ(run_error("pycroscope.zone('z')(function=plain)"),
              "TypeError: a pycroscope.zone decorates one function: @pycroscope.zone('name')");
    EXPECT_EQ(run_error("pycroscope.profile(output_dir=OUT)(function=plain)"),
              "TypeError: a pycroscope.profile() decorates one function");
    EXPECT_EQ(run_error("pycroscope.ZonedFunction()"), "TypeError: cannot create 'pycroscope.ZonedFunction' instances");
    EXPECT_EQ(run_error("pycroscope.ProfiledFunction()"),
              "TypeError: cannot create 'pycroscope.ProfiledFunction' instances");
}

TEST_F(ModuleTest, ProfileOptionErrors) {
    const std::string unknown = run_error("pycroscope.profile(bogus=1)");
    EXPECT_NE(unknown.find("TypeError"), std::string::npos) << unknown;
    EXPECT_NE(unknown.find("bogus"), std::string::npos) << unknown;
    EXPECT_NE(run_error("pycroscope.profile(backend='turbo')").find("ValueError"), std::string::npos);
    EXPECT_NE(run_error("pycroscope.profile(sinks='json,xml')").find("ValueError"), std::string::npos);
    EXPECT_NE(run_error("pycroscope.profile(backend='eval_frame', lines=True)").find("ValueError"),
              std::string::npos);
    EXPECT_NE(run_error("pycroscope.profile(minimal=True, c_calls=True)").find("ValueError"), std::string::npos);
    EXPECT_NE(run_error("pycroscope.profile(3)").find("TypeError"), std::string::npos);
    const std::string pattern = run_error("pycroscope.profile(patterns='nested_loops')");
    EXPECT_NE(pattern.find("ValueError"), std::string::npos) << pattern;
    EXPECT_NE(pattern.find("nested_loops"), std::string::npos) << pattern;
    EXPECT_NE(run_error("pycroscope.profile(pattern_severity='urgent')").find("ValueError"), std::string::npos);
}

// The pattern pass takes the command's options: pattern_analysis records them.
TEST_F(ModuleTest, ProfileTakesThePatternOptions) {
    const std::string on = temp_dir("patterns_on"), off = temp_dir("patterns_off");
    set_global("ON", on);
    set_global("OFF", off);
    ASSERT_TRUE(run(R"PY(
with pycroscope.profile(output_dir=ON, sinks="json", patterns="maintainability,-dead_code",
                        pattern_severity="high", patterns_include_libraries=True):
    sum(range(100))
with pycroscope.profile(output_dir=OFF, sinks="json", patterns=False):
    sum(range(100))
)PY"));
    const json::Value chosen = json::parse_file((fs::path(on) / "session.json").string()).at("pattern_analysis");
    EXPECT_TRUE(chosen.at("enabled").as_bool());
    EXPECT_EQ(chosen.at("severity_threshold").as_string(), "high");
    EXPECT_TRUE(chosen.at("include_libraries").as_bool());
    std::vector<std::string> detectors;
    for (const json::Value& d : chosen.at("detectors").items()) {
        detectors.push_back(d.as_string());
    }
    EXPECT_EQ(detectors, (std::vector<std::string>{"high_complexity", "unused_import"}));
    const json::Value none = json::parse_file((fs::path(off) / "session.json").string()).at("pattern_analysis");
    EXPECT_FALSE(none.at("enabled").as_bool());
}

TEST_F(ModuleTest, ProfileRefusesWhileAnotherSessionRecords) {
    const std::string out = temp_dir("refused");
    set_global("OUT", out);
    {
        pycroscope::Session<pycroscope::NativeZones> session;
        session.add_sink(std::make_shared<RecordingSink>());
        session.start();
        const std::string error = run_error("with pycroscope.profile(output_dir=OUT):\n    pass\n");
        session.stop();
        EXPECT_NE(error.find("RuntimeError"), std::string::npos) << error;
        EXPECT_NE(error.find("already recording"), std::string::npos) << error;
    }
    const std::string nested = run_error(
        "with pycroscope.profile(output_dir=OUT):\n    with pycroscope.profile(output_dir=OUT):\n        pass\n");
    EXPECT_NE(nested.find("RuntimeError"), std::string::npos) << nested;
    // The outer profile still ended cleanly: a new one starts.
    EXPECT_TRUE(run("with pycroscope.profile(output_dir=OUT) as s:\n    pass\nassert not s.running\n"));
    const std::string reentered = run_error("p = pycroscope.profile(output_dir=OUT)\nwith p:\n    with p:\n        pass\n");
    EXPECT_NE(reentered.find("already running"), std::string::npos) << reentered;
}

TEST_F(ModuleTest, DefaultOutputDirectoriesAreTimestampedAndDistinct) {
    const std::string cwd = temp_dir("cwd");
    fs::create_directories(cwd);
    set_global("CWD", cwd);
    ASSERT_TRUE(run(R"PY(
import os
previous = os.getcwd()
os.chdir(CWD)
try:
    with pycroscope.profile() as a:
        pass
    with pycroscope.profile() as b:
        pass
finally:
    os.chdir(previous)
)PY"));
    const std::string a = eval_str("a.output_dir");
    const std::string b = eval_str("b.output_dir");
    EXPECT_NE(a, b);
    EXPECT_EQ(a.rfind("profiling_results/", 0), 0u) << a;
    EXPECT_EQ(b.rfind("profiling_results/", 0), 0u) << b; // within one second: a's name plus "-2"
    EXPECT_TRUE(fs::exists(fs::path(cwd) / a / "session.json"));
    EXPECT_TRUE(fs::exists(fs::path(cwd) / b / "session.json"));
}

TEST_F(ModuleTest, HostProfileHandlerIsCalled) {
    int starts = 0, stops = 0;
    std::string seen;
    py::set_profile_handler(py::ProfileHandler{
        [](PyObject* options) {
            if (PyDict_GetItemString(options, "forbidden") != nullptr) {
                throw py::OptionError("profile() got an unexpected keyword argument 'forbidden'");
            }
        },
        [&](PyObject* options) {
            ++starts;
            PyObject* mode = PyDict_GetItemString(options, "mode");
            seen = mode != nullptr ? PyUnicode_AsUTF8(mode) : "";
            if (seen == "bad value") {
                throw pycroscope::ConfigError("bad value for mode");
            }
            if (seen == "broken") {
                throw std::runtime_error("the host is broken");
            }
            return std::string("host-output");
        },
        [&]() {
            ++stops;
            return py::ProfileResult{{"host_collector"}, {"host-output/file.bin"}};
        },
        nullptr,
    });
    ASSERT_TRUE(run("with pycroscope.profile(mode='fast') as s:\n    pass\n"));
    EXPECT_EQ(starts, 1);
    EXPECT_EQ(stops, 1);
    EXPECT_EQ(seen, "fast");
    EXPECT_EQ(eval_str("s.output_dir"), "host-output");
    EXPECT_EQ(eval_str("s.get_completed_profilers()"), "['host_collector']");
    EXPECT_EQ(eval_str("s.files"), "['host-output/file.bin']");

    EXPECT_NE(run_error("pycroscope.profile(forbidden=1)").find("TypeError"), std::string::npos);
    EXPECT_NE(run_error("with pycroscope.profile(mode='bad value'):\n    pass\n").find("ValueError"),
              std::string::npos);
    const std::string broken = run_error("with pycroscope.profile(mode='broken'):\n    pass\n");
    EXPECT_NE(broken.find("RuntimeError: the host is broken"), std::string::npos) << broken;
    EXPECT_EQ(stops, 1); // a refused start is not stopped

    py::set_profile_handler({});
    EXPECT_NE(run_error("pycroscope.profile(mode='fast')").find("TypeError"), std::string::npos);
    EXPECT_THROW(py::set_profile_handler(py::ProfileHandler{nullptr, [](PyObject*) { return std::string(); },
                                                            nullptr, nullptr}),
                 pycroscope::ConfigError);
}

// --- stop_at_exit ----------------------------------------------------------

TEST_F(ModuleTest, StopAtExitRunsOnceFromAtexit) {
    int calls = 0;
    py::stop_at_exit([&calls] { ++calls; });
    py::stop_at_exit([] { throw std::runtime_error("reported by atexit, not raised"); });
    // atexit._run_exitfuncs() runs (and clears) the handlers as finalization
    // would; called from Python, 3.9's re-raises the last handler's exception
    // after printing it (finalization ignores it).
    ASSERT_TRUE(run("import atexit, sys\n"
                    "try:\n"
                    "    atexit._run_exitfuncs()\n"
                    "except RuntimeError as e:\n"
                    "    assert sys.version_info < (3, 10) and 'reported by atexit' in str(e)\n"
                    "atexit._run_exitfuncs()\n"));
    EXPECT_EQ(calls, 1);
}

} // namespace
} // namespace module_test
