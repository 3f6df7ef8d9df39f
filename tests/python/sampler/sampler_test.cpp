// The sampling collector on a real embedded interpreter: hotspot shares,
// mixed Python/native stacks in true order, running vs idle, exact frame
// content, manual samples from Python, runtime control, shutdown with the
// GIL held, native-only threads, and a comparison with Austin.

#include "support/sanitizers.hpp"
#include "python/event_capture.hpp"
#include "support/json.hpp"

#include <pycroscope/core/manual_sample.hpp>
#include <pycroscope/python/sampler/sampler.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace sampler_test {
namespace {

using pycroscope::Event;
using pycroscope::EventKind;
using pycroscope::SourceLocation;
using pycroscope::python::Sampler;
using pycroscope_test::EventCapture;
using pycroscope_test::Ref;

using SamplingSession = pycroscope::Session<pycroscope::NativeZones, Sampler>;

struct Frame {
    const SourceLocation* location;
    std::uint64_t line;
    std::string name() const { return location->display_name(); }
};

struct Sample {
    std::uint64_t tid;
    std::uint8_t flags;
    const SourceLocation* thread_name;
    std::vector<Frame> frames;
    bool running() const { return (flags & pycroscope::sample_flags::running) != 0; }
    bool has(const std::string& name) const {
        return std::any_of(frames.begin(), frames.end(), [&](const Frame& f) { return f.name() == name; });
    }
    int index_of(const std::string& name) const {
        for (std::size_t i = 0; i < frames.size(); ++i) {
            if (frames[i].name() == name) {
                return static_cast<int>(i);
            }
        }
        return -1;
    }
    std::string describe() const {
        std::string out = "[";
        for (const auto& f : frames) {
            out.append(f.name()).append(":").append(std::to_string(f.line)).append(" ");
        }
        return out.append("]");
    }
};

// Every sample of every ring, checking the framing contract on the way.
std::vector<Sample> parse_samples(const EventCapture& capture) {
    std::vector<Sample> samples;
    for (const auto& entry : capture.by_thread()) {
        const auto& events = entry.second;
        for (std::size_t i = 0; i < events.size(); ++i) {
            if (events[i].kind == EventKind::sample_frame) {
                ADD_FAILURE() << "a sample_frame outside a sample";
                continue;
            }
            if (events[i].kind != EventKind::sample) {
                continue;
            }
            Sample sample{events[i].id, events[i].flags,
                          reinterpret_cast<const SourceLocation*>(events[i].payload), {}};
            const std::size_t count = events[i].aux;
            for (std::size_t k = 0; k < count; ++k) {
                if (i + 1 + k >= events.size() || events[i + 1 + k].kind != EventKind::sample_frame) {
                    ADD_FAILURE() << "a sample announced " << count << " frames and has fewer";
                    break;
                }
                EXPECT_EQ(events[i + 1 + k].timestamp, events[i].timestamp);
                sample.frames.push_back(Frame{events[i + 1 + k].location(), events[i + 1 + k].payload});
            }
            i += count;
            samples.push_back(std::move(sample));
        }
    }
    return samples;
}

std::uint64_t main_tid() { return pycroscope::detail::current_os_tid(); }

// Runs f with the GIL released (the sampler needs it meanwhile).
template <class F>
void without_gil(F&& f) {
    PyThreadState* saved = PyEval_SaveThread();
    f();
    PyEval_RestoreThread(saved);
}

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

class SamplerTest : public ::testing::Test {
protected:
    void SetUp() override { pycroscope_test::ensure_python(); }
};

// A script spending 70% of its wall time in hot() and 30% in cold(), in long
// phases (systematic sampling of long phases is accurate to a tick per
// boundary), all CPU-bound pure Python.
const char* const shares_script = R"PY(
import time

def spin(seconds):
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x += 1
    return x

def hot(seconds):
    return spin(seconds)

def cold(seconds):
    return spin(seconds)

def run(total, cycle=0.5):
    end = time.perf_counter() + total
    while time.perf_counter() < end:
        hot(cycle * 0.7)
        cold(cycle * 0.3)
)PY";

TEST_F(SamplerTest, SeventyThirtySharesWithinFivePoints) {
    Ref globals = pycroscope_test::exec_module(shares_script, "shares.py");
    ASSERT_TRUE(globals);
    auto capture = std::make_shared<EventCapture>();
    SamplingSession session;
    session.add_sink(capture);
    session.collector<Sampler>().options.rate_hz = 100;
    session.collector<Sampler>().options.include_idle = true;
    session.start();
    Ref result = pycroscope_test::call(globals.get(), "run", Ref(Py_BuildValue("(d)", 3.0)).get());
    ASSERT_TRUE(result);
    session.stop();
    const auto stats = session.collector<Sampler>().stats();

    std::uint64_t hot = 0, cold = 0;
    for (const Sample& s : parse_samples(*capture)) {
        if (s.tid != main_tid()) {
            continue;
        }
        hot += s.has("hot");
        cold += s.has("cold");
    }
    ASSERT_GE(hot + cold, 100u) << "too few samples: ticks " << stats.ticks << ", achieved "
                                << stats.achieved_rate() << " Hz";
    const double share = 100.0 * static_cast<double>(hot) / static_cast<double>(hot + cold);
    EXPECT_NEAR(share, 70.0, 5.0) << hot << " hot, " << cold << " cold samples";
    std::printf("70/30 workload: hot share %.1f%% of %llu samples, achieved %.1f Hz\n", share,
                static_cast<unsigned long long>(hot + cold), stats.achieved_rate());
}

// --- mixed stacks -------------------------------------------------------------

// bridge.call(f): a native function that opens a zone and calls back into Python.
PyObject* bridge_call(PyObject*, PyObject* callable) {
    PYCRO_SCOPE_N("native_bridge");
    return PyObject_CallNoArgs(callable);
}
PyMethodDef bridge_methods[] = {
    {"call", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&bridge_call)), METH_O, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

const char* const mixed_script = R"PY(
import time, pycroscope

def inner_spin():
    end = time.perf_counter() + 0.8
    while time.perf_counter() < end:
        pass

def outer():
    return bridge.call(inner_spin)

def py_inner():
    end = time.perf_counter() + 0.8
    while time.perf_counter() < end:
        pass

def py_outer():
    with pycroscope.zone("python_zone"):
        py_inner()
)PY";

TEST_F(SamplerTest, MixedStacksInterleaveZonesInTrueOrder) {
    Ref globals = pycroscope_test::exec_module(mixed_script, "mixed.py");
    ASSERT_TRUE(globals);
    Ref bridge(PyCFunction_New(&bridge_methods[0], nullptr));
    ASSERT_TRUE(bridge);
    // bridge.call: a namespace object holding the C function.
    Ref types(PyImport_ImportModule("types"));
    Ref ns(PyObject_CallMethod(types.get(), "SimpleNamespace", nullptr));
    PyObject_SetAttrString(ns.get(), "call", bridge.get());
    PyDict_SetItemString(globals.get(), "bridge", ns.get());

    auto capture = std::make_shared<EventCapture>();
    SamplingSession session;
    session.add_sink(capture);
    session.collector<Sampler>().options.include_idle = true;
    session.start();
    ASSERT_TRUE(pycroscope_test::call(globals.get(), "outer"));
    ASSERT_TRUE(pycroscope_test::call(globals.get(), "py_outer"));
    session.stop();

    int native_level = 0, python_level = 0;
    for (const Sample& s : parse_samples(*capture)) {
        if (s.tid != main_tid()) {
            continue;
        }
        if (s.has("inner_spin")) {
            const int o = s.index_of("outer"), z = s.index_of("native_bridge"), i = s.index_of("inner_spin");
            ASSERT_TRUE(o >= 0 && z >= 0) << s.describe();
#if PY_VERSION_HEX >= 0x030A0000
            EXPECT_LT(o, z) << s.describe();
            EXPECT_LT(z, i) << s.describe();
            EXPECT_EQ(i, static_cast<int>(s.frames.size()) - 1) << s.describe();
#else
            // 3.9 has no C-stack marker per eval loop: zones go innermost (documented).
            EXPECT_LT(o, i) << s.describe();
            EXPECT_EQ(z, static_cast<int>(s.frames.size()) - 1) << s.describe();
#endif
            EXPECT_EQ(s.frames[static_cast<std::size_t>(z)].location->kind, pycroscope::LocationKind::native_zone);
            ++native_level;
        }
        if (s.has("py_inner")) {
            const int o = s.index_of("py_outer"), z = s.index_of("python_zone"), i = s.index_of("py_inner");
            ASSERT_TRUE(o >= 0 && z >= 0) << s.describe();
            EXPECT_EQ(z, o + 1) << s.describe();
            EXPECT_EQ(i, z + 1) << s.describe();
            ++python_level;
        }
        if (s.has("native_bridge")) {
            EXPECT_TRUE(s.has("outer")) << s.describe();
        }
    }
    EXPECT_GE(native_level, 10);
    EXPECT_GE(python_level, 10);
}

// --- running vs idle, exact frames ----------------------------------------------

const char* const threads_script = R"PY(
import threading, time

stop = threading.Event()

def level3():
    while not stop.is_set():
        time.sleep(0.01)

def level2():
    level3()

def level1():
    level2()

def burn():
    x = 0
    while not stop.is_set():
        x += 1

def start():
    global sleeper, burner
    sleeper = threading.Thread(target=level1, name="sleeper-thread")
    burner = threading.Thread(target=burn, name="burner-thread")
    sleeper.start()
    burner.start()

def finish():
    stop.set()
    sleeper.join()
    burner.join()
    return [sleeper.native_id, burner.native_id]
)PY";

int line_of(const char* script, const char* text) {
    const std::string source(script);
    const std::size_t at = source.find(text);
    return 1 + static_cast<int>(std::count(source.begin(), source.begin() + static_cast<long>(at), '\n'));
}

struct ThreadsRun {
    std::vector<Sample> samples;
    std::uint64_t sleeper_tid = 0;
    std::uint64_t burner_tid = 0;
};

ThreadsRun run_threads(bool include_idle) {
    ThreadsRun run;
    Ref globals = pycroscope_test::exec_module(threads_script, "threads.py");
    if (!globals) {
        return run;
    }
    auto capture = std::make_shared<EventCapture>();
    SamplingSession session;
    session.add_sink(capture);
    session.collector<Sampler>().options.include_idle = include_idle;
    pycroscope_test::call(globals.get(), "start");
    session.start();
    without_gil([] { sleep_ms(1500); });
    session.stop();
    Ref ids = pycroscope_test::call(globals.get(), "finish");
    if (ids) {
        run.sleeper_tid = PyLong_AsUnsignedLongLong(PyList_GetItem(ids.get(), 0));
        run.burner_tid = PyLong_AsUnsignedLongLong(PyList_GetItem(ids.get(), 1));
    }
    run.samples = parse_samples(*capture);
    return run;
}

TEST_F(SamplerTest, SleepingThreadIsIdleAndSpinningThreadIsRunning) {
    if (pycroscope_test::under_thread_sanitizer) {
        GTEST_SKIP() << "timing-dependent: see tests/support/sanitizers.hpp";
    }
    const ThreadsRun run = run_threads(true);
    int sleeper = 0, sleeper_idle = 0, burner = 0, burner_running = 0;
    for (const Sample& s : run.samples) {
        if (s.tid == run.sleeper_tid) {
            ++sleeper;
            sleeper_idle += !s.running();
        } else if (s.tid == run.burner_tid) {
            ++burner;
            burner_running += s.running();
        }
    }
    ASSERT_GE(sleeper, 20);
    ASSERT_GE(burner, 20);
    EXPECT_GE(sleeper_idle * 10, sleeper * 9) << sleeper_idle << " of " << sleeper << " idle";
    EXPECT_GE(burner_running * 10, burner * 8) << burner_running << " of " << burner << " running";
}

TEST_F(SamplerTest, IdleThreadsAreLeftOutByDefault) {
    const ThreadsRun run = run_threads(false);
    int sleeper_running = 0, burner = 0;
    for (const Sample& s : run.samples) {
        EXPECT_TRUE(s.running());
        sleeper_running += s.tid == run.sleeper_tid;
        burner += s.tid == run.burner_tid;
    }
    EXPECT_GE(burner, 20);
    EXPECT_LE(sleeper_running, 2); // a wake-up may land in a sample, never a steady share
}

TEST_F(SamplerTest, KnownStackHasExactFunctionsAndLines) {
    const ThreadsRun run = run_threads(true);
    const int l1 = line_of(threads_script, "    level2()");
    const int l2 = line_of(threads_script, "    level3()");
    const int l3 = line_of(threads_script, "        time.sleep(0.01)");
    int checked = 0;
    for (const Sample& s : run.samples) {
        if (s.tid != run.sleeper_tid) {
            continue;
        }
        ASSERT_GE(s.frames.size(), 4u) << s.describe();
        ASSERT_NE(s.thread_name, nullptr);
        EXPECT_EQ(std::string(s.thread_name->name), "sleeper-thread (tid " + std::to_string(s.tid) + ")");
        const std::size_t n = s.frames.size();
        // Qualified names from 3.11 (co_qualname), plain names before.
        const bool qualified = PY_VERSION_HEX >= 0x030B0000;
        if (s.frames[n - 1].name() == (qualified ? "Event.is_set" : "is_set")) {
            // A tick between two sleeps: level3's loop condition, one frame deeper.
            ASSERT_GE(n, 5u) << s.describe();
            EXPECT_EQ(s.frames[n - 2].name(), "level3") << s.describe();
            EXPECT_EQ(s.frames[n - 2].line, static_cast<std::uint64_t>(l3 - 1)) << s.describe();
            continue;
        }
        EXPECT_EQ(s.frames[n - 4].name(), qualified ? "Thread.run" : "run") << s.describe();
        EXPECT_EQ(s.frames[n - 3].name(), "level1");
        EXPECT_EQ(s.frames[n - 3].line, static_cast<std::uint64_t>(l1));
        EXPECT_EQ(s.frames[n - 2].name(), "level2");
        EXPECT_EQ(s.frames[n - 2].line, static_cast<std::uint64_t>(l2));
        EXPECT_EQ(s.frames[n - 1].name(), "level3");
        EXPECT_EQ(s.frames[n - 1].line, static_cast<std::uint64_t>(l3));
        EXPECT_EQ(s.frames[n - 1].location->kind, pycroscope::LocationKind::python_function);
        EXPECT_STREQ(s.frames[n - 1].location->file, "threads.py");
        EXPECT_EQ(s.frames[0].name(), qualified ? "Thread._bootstrap" : "_bootstrap") << s.describe();
        ++checked;
    }
    EXPECT_GE(checked, 20);
}

// --- native-only threads ----------------------------------------------------------

TEST_F(SamplerTest, NativeThreadWithZonesIsSampledZonesOnly) {
    auto capture = std::make_shared<EventCapture>();
    SamplingSession session;
    session.add_sink(capture);
    session.start();
    std::atomic<std::uint64_t> tid{0};
    std::thread native([&] {
        pycroscope::set_thread_name("native-worker");
        tid = pycroscope::detail::current_os_tid();
        PYCRO_SCOPE_N("native_outer");
        {
            PYCRO_SCOPE_N("native_inner");
            const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(800);
            volatile std::uint64_t x = 0;
            while (std::chrono::steady_clock::now() < end) {
                x = x + 1;
            }
        }
    });
    without_gil([&] { native.join(); });
    session.stop();
    int seen = 0;
    for (const Sample& s : parse_samples(*capture)) {
        if (s.tid != tid) {
            continue;
        }
        ASSERT_EQ(s.frames.size(), 2u) << s.describe();
        EXPECT_EQ(s.frames[0].name(), "native_outer");
        EXPECT_EQ(s.frames[1].name(), "native_inner");
        ASSERT_NE(s.thread_name, nullptr);
        EXPECT_EQ(std::string(s.thread_name->name), "native-worker (tid " + std::to_string(s.tid) + ")");
        ++seen;
    }
    EXPECT_GE(seen, 10);
}

// --- manual samples from Python, runtime control -----------------------------------

TEST_F(SamplerTest, AddSampleFromPythonWritesExactEvents) {
    auto capture = std::make_shared<EventCapture>();
    pycroscope::Session<> session;
    session.add_sink(capture);
    session.start();
    Ref globals = pycroscope_test::exec_module(
        "import pycroscope\n"
        "recorded = pycroscope.add_sample([('main', 'game.py', 3), ('tick', 'game.py', 17)])\n",
        "manual.py");
    session.stop();
    ASSERT_TRUE(globals);
    EXPECT_EQ(PyDict_GetItemString(globals.get(), "recorded"), Py_True);
    const auto samples = parse_samples(*capture);
    ASSERT_EQ(samples.size(), 1u);
    EXPECT_EQ(samples[0].tid, main_tid());
    EXPECT_EQ(samples[0].flags, pycroscope::sample_flags::manual | pycroscope::sample_flags::running);
    ASSERT_EQ(samples[0].frames.size(), 2u);
    EXPECT_EQ(samples[0].frames[0].name(), "main");
    EXPECT_EQ(samples[0].frames[0].line, 3u);
    EXPECT_STREQ(samples[0].frames[0].location->file, "game.py");
    EXPECT_EQ(samples[0].frames[1].name(), "tick");
    EXPECT_EQ(samples[0].frames[1].line, 17u);
}

TEST_F(SamplerTest, AddSampleRejectsBadStacks) {
    Ref globals = pycroscope_test::exec_module(R"PY(
import pycroscope
def error_of(stack):
    try:
        pycroscope.add_sample(stack)
    except Exception as e:
        return type(e).__name__ + ': ' + str(e)
    return 'no error'
results = [error_of(5), error_of([('f', 'a.py')]), error_of([('f', 'a.py', -1)]),
           error_of([('f', 'a.py', 'x')]), error_of([]), error_of([(1, 'a.py', 1)])]
no_session = pycroscope.add_sample([('f', 'a.py', 1)])
)PY",
                                               "bad_samples.py");
    ASSERT_TRUE(globals);
    PyObject* results = PyDict_GetItemString(globals.get(), "results");
    ASSERT_EQ(PyList_Size(results), 6);
    const char* prefixes[] = {"TypeError", "TypeError", "ValueError", "TypeError", "ValueError", "TypeError"};
    for (Py_ssize_t i = 0; i < 6; ++i) {
        const std::string text = PyUnicode_AsUTF8(PyList_GetItem(results, i));
        EXPECT_EQ(text.rfind(prefixes[i], 0), 0u) << i << ": " << text;
    }
    EXPECT_EQ(PyDict_GetItemString(globals.get(), "no_session"), Py_False);
}

TEST_F(SamplerTest, StartAndStopSamplingAtRuntime) {
    Ref globals = pycroscope_test::exec_module(R"PY(
import pycroscope, time
def spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
def error_of(f, *args, **kwargs):
    try:
        f(*args, **kwargs)
    except Exception as e:
        return type(e).__name__
    return 'no error'
)PY",
                                               "control.py");
    ASSERT_TRUE(globals);
    PyObject* pycroscope_module = PyImport_ImportModule("pycroscope");
    ASSERT_NE(pycroscope_module, nullptr);
    Ref module(pycroscope_module);
    auto run = [&](const char* code) { return pycroscope_test::exec_in(globals.get(), code, "control.py"); };
    // No sampler running: a clear error.
    ASSERT_TRUE(run("before = error_of(pycroscope.start_sampling)\ncount_before = pycroscope.sample_count()\n"));
    EXPECT_STREQ(PyUnicode_AsUTF8(PyDict_GetItemString(globals.get(), "before")), "RuntimeError");

    SamplingSession session;
    session.collector<Sampler>().options.start_paused = true;
    session.collector<Sampler>().options.include_idle = true;
    session.start();
    ASSERT_TRUE(run("spin(0.2)\npaused_count = pycroscope.sample_count()\n"
                    "bad_rate = error_of(pycroscope.start_sampling, rate=0)\n"
                    "bad_type = error_of(pycroscope.start_sampling, rate='fast')\n"
                    "pycroscope.start_sampling(rate=150)\nspin(0.6)\n"
                    "pycroscope.stop_sampling()\nrunning_count = pycroscope.sample_count()\n"
                    "spin(0.3)\nafter_stop = pycroscope.sample_count()\n"
                    "spin(0.3)\nlater = pycroscope.sample_count()\n"));
    const double rate = session.collector<Sampler>().stats().achieved_rate();
    session.stop();
    auto integer = [&](const char* name) { return PyLong_AsLongLong(PyDict_GetItemString(globals.get(), name)); };
    EXPECT_EQ(integer("count_before"), 0);
    EXPECT_EQ(integer("paused_count"), 0);
    EXPECT_STREQ(PyUnicode_AsUTF8(PyDict_GetItemString(globals.get(), "bad_rate")), "ValueError");
    EXPECT_STREQ(PyUnicode_AsUTF8(PyDict_GetItemString(globals.get(), "bad_type")), "TypeError");
    EXPECT_GE(integer("running_count"), 10);
    // Samples taken before stop_sampling() are still named (every 20 ms) after it
    // returns; none is taken after: the count settles and stays.
    EXPECT_GE(integer("after_stop"), integer("running_count"));
    EXPECT_EQ(integer("later"), integer("after_stop"));
    EXPECT_GT(rate, 0.0);
}

TEST_F(SamplerTest, RateIsValidated) {
    for (double bad : {0.0, -5.0, 20000.0}) {
        SamplingSession session;
        session.collector<Sampler>().options.rate_hz = bad;
        EXPECT_THROW(session.start(), pycroscope::ConfigError) << bad;
        EXPECT_FALSE(session.running());
    }
    Sampler sampler;
    EXPECT_THROW(sampler.set_rate(0), pycroscope::ConfigError);
    sampler.set_rate(250);
    EXPECT_EQ(sampler.options.rate_hz, 250);
}

// stop() with the GIL held while a tick waits for it: no deadlock.
TEST_F(SamplerTest, StopWithTheGilHeldDoesNotDeadlock) {
    for (int round = 0; round < 3; ++round) {
        SamplingSession session;
        session.collector<Sampler>().options.rate_hz = 1000;
        session.start();
        sleep_ms(30); // the GIL stays held: the sampler blocks on it
        session.stop();
        EXPECT_FALSE(session.running());
    }
}

std::string run_command(const std::string& command, int& status);

// --- pycroscope.profile(sample=True) and `pycroscope profile --sample` --------------------

// The hot/cold total shares of a "hotspots" section.
void expect_seventy_thirty(const std::string& session_json) {
    const auto doc = json::parse_file(session_json);
    ASSERT_TRUE(doc.contains("hotspots")) << session_json;
    const auto& hotspots = doc.at("hotspots");
    ASSERT_GE(hotspots.at("samples").as_uint(), 100u);
    double hot = -1, cold = -1;
    const auto& functions = hotspots.at("functions");
    for (std::size_t i = 0; i < functions.size(); ++i) {
        const std::string name = functions[i].at("name").as_string();
        if (name == "hot") {
            hot = functions[i].at("total_pct").as_number();
        } else if (name == "cold") {
            cold = functions[i].at("total_pct").as_number();
        }
    }
    ASSERT_GT(hot, 0);
    ASSERT_GT(cold, 0);
    EXPECT_NEAR(100.0 * hot / (hot + cold), 70.0, 5.0) << "hot " << hot << "%, cold " << cold << "%";
}

TEST_F(SamplerTest, ProfileWithSampleWritesHotspotsAndSampleWeights) {
    if (pycroscope_test::under_sanitizer) {
        GTEST_SKIP() << "timing-dependent: see tests/support/sanitizers.hpp";
    }
    const std::string dir = ::testing::TempDir() + "/pycroscope_profile_sample";
    std::filesystem::remove_all(dir);
    Ref globals = pycroscope_test::exec_module(shares_script, "profile_sample.py");
    ASSERT_TRUE(globals);
    ASSERT_TRUE(pycroscope_test::exec_in(globals.get(),
                                         "import pycroscope\n"
                                         "with pycroscope.profile(output_dir=" + std::string("'") + dir +
                                             "', sample=True, rate=100, sinks='json,folded'):\n"
                                             "    run(2.0)\n"
                                             "try:\n"
                                             "    pycroscope.profile(sample=True, rate=-1)\n"
                                             "    bad_rate = 'no error'\n"
                                             "except ValueError:\n"
                                             "    bad_rate = 'ValueError'\n",
                                         "profile_sample.py"));
    EXPECT_STREQ(PyUnicode_AsUTF8(PyDict_GetItemString(globals.get(), "bad_rate")), "ValueError");
    expect_seventy_thirty(dir + "/session.json");
    // stacks.folded: sample counts as weights, no tracer spans.
    std::ifstream folded(dir + "/stacks.folded");
    std::string line;
    std::uint64_t hot_weight = 0;
    while (std::getline(folded, line)) {
        if (line.find(";hot;") != std::string::npos) {
            hot_weight += std::stoull(line.substr(line.rfind(' ') + 1));
        }
    }
    EXPECT_GE(hot_weight, 70u);
    EXPECT_LE(hot_weight, 250u); // counts, not nanoseconds
}

#ifdef PYCROSCOPE_CLI_PATH
TEST_F(SamplerTest, CliSampleModeWritesAllThreeOutputs) {
    const std::string dir = ::testing::TempDir() + "/pycroscope_cli_sample";
    std::filesystem::remove_all(dir);
    const std::string script = ::testing::TempDir() + "/cli_sample.py";
    {
        std::ofstream out(script);
        out << shares_script << "\nrun(2.0)\n";
    }
    int status = 0;
    const std::string output = run_command(std::string(PYCROSCOPE_CLI_PATH) + " profile --sample --rate 100 --sinks json,folded,chrome --output-dir " +
                                               dir + " " + script + " 2>&1",
                                           status);
    ASSERT_EQ(status, 0) << output;
    if (pycroscope_test::under_sanitizer) {
        // Shares and counts are timing-dependent (tests/support/sanitizers.hpp): the outputs only.
        EXPECT_GT(json::parse_file(dir + "/session.json").at("hotspots").at("samples").as_uint(), 0u);
    } else {
        expect_seventy_thirty(dir + "/session.json");
    }
    const auto trace = json::parse_file(dir + "/trace.json");
    (void)trace; // parses: the sample slices are the other helper's contract
    EXPECT_NE(output.find("sampling at 100 Hz"), std::string::npos) << output;
    // Usage errors are clear.
    run_command(std::string(PYCROSCOPE_CLI_PATH) + " profile --rate 50 " + script + " 2>&1", status);
    EXPECT_NE(status, 0);
    const std::string bad = run_command(std::string(PYCROSCOPE_CLI_PATH) + " profile --sample --rate 0 " + script +
                                            " 2>&1",
                                        status);
    EXPECT_NE(status, 0);
    EXPECT_NE(bad.find("rate"), std::string::npos) << bad;
}
#endif

// --- Austin ------------------------------------------------------------------------------

std::string run_command(const std::string& command, int& status) {
    std::string out;
    FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr) {
        status = -1;
        return out;
    }
    char buffer[4096];
    std::size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) {
        out.append(buffer, n);
    }
    status = ::pclose(pipe);
    return out;
}

// Austin's collapsed stacks: "P<pid>;T<tid>;frame;frame... <metric>", frames
// "file:function:line" (Austin 3) or "function (file);L<line>" (Austin 1/2).
[[maybe_unused]] std::map<std::string, double> austin_shares(const std::string& output, const std::vector<std::string>& functions) {
    std::map<std::string, double> counts;
    double total = 0;
    std::size_t start = 0;
    while (start < output.size()) {
        std::size_t end = output.find('\n', start);
        if (end == std::string::npos) {
            end = output.size();
        }
        const std::string line = output.substr(start, end - start);
        start = end + 1;
        if (line.empty() || line[0] == '#' || line.find(';') == std::string::npos) {
            continue;
        }
        const std::size_t space = line.rfind(' ');
        if (space == std::string::npos) {
            continue;
        }
        const double weight = std::atof(line.c_str() + space + 1);
        total += weight;
        for (const auto& f : functions) {
            if (line.find(":" + f + ":") != std::string::npos || line.find(";" + f + " (") != std::string::npos) {
                counts[f] += weight;
            }
        }
    }
    for (auto& entry : counts) {
        entry.second = total > 0 ? 100.0 * entry.second / total : 0;
    }
    return counts;
}

TEST_F(SamplerTest, SharesAgreeWithAustin) {
    int status = 0;
    const std::string help = run_command("austin --help 2>&1", status);
    if (status != 0 || help.find("austin") == std::string::npos) {
        GTEST_SKIP() << "austin is not installed (apt-get install austin)";
    }
#ifndef PYCROSCOPE_PYTHON_EXECUTABLE
    GTEST_SKIP() << "no interpreter path for the linked libpython";
#else
    const std::string dir = ::testing::TempDir();
    const std::string script = dir + "/austin_shares.py";
    {
        std::ofstream out(script);
        out << shares_script << "\nrun(3.0)\n";
    }
    const std::string output =
        run_command(std::string("austin -i 10000 ") + PYCROSCOPE_PYTHON_EXECUTABLE + " " + script + " 2>&1", status);
    const std::vector<std::string> functions = {"run", "hot", "cold", "spin"};
    const auto austin = austin_shares(output, functions);
    if (status != 0 || austin.empty() || austin.count("hot") == 0) {
        GTEST_SKIP() << "austin cannot sample this interpreter (" << PY_VERSION << "): exit status " << status
                     << ", output: " << output.substr(0, 300);
    }
    Ref globals = pycroscope_test::exec_module(shares_script, "austin_shares.py");
    ASSERT_TRUE(globals);
    auto capture = std::make_shared<EventCapture>();
    SamplingSession session;
    session.add_sink(capture);
    session.collector<Sampler>().options.include_idle = true;
    session.start();
    ASSERT_TRUE(pycroscope_test::call(globals.get(), "run", Ref(Py_BuildValue("(d)", 3.0)).get()));
    session.stop();
    std::map<std::string, double> ours;
    double total = 0;
    for (const Sample& s : parse_samples(*capture)) {
        if (s.tid != main_tid()) {
            continue;
        }
        total += 1;
        for (const auto& f : functions) {
            ours[f] += s.has(f);
        }
    }
    ASSERT_GT(total, 100);
    for (const auto& f : functions) {
        EXPECT_NEAR(100.0 * ours[f] / total, austin.count(f) ? austin.at(f) : 0.0, 5.0) << f;
    }
#endif
}

} // namespace
} // namespace sampler_test
