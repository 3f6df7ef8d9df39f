// The `pycroscope profile` command runs a script exactly as the interpreter of
// the same libpython would: same exit status, same sys.argv / sys.path /
// __name__ / sys.executable, same traceback; and it writes the profile even
// when the script exits early or raises.
//
// CMake passes the built CLI as PYCROSCOPE_CLI_PATH (examples enabled) and
// the matching interpreter as PYCROSCOPE_PYTHON_EXECUTABLE.

#include "support/child_process.hpp"
#include "support/json.hpp"
#include "support/scoped_env.hpp"

#include <pycroscope/model/profile_loader.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <functional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
extern char** environ;
#define PYCROSCOPE_CLI_TEST_POSIX 1
#endif

namespace cli_test {
namespace {

namespace fs = std::filesystem;

#if defined(PYCROSCOPE_CLI_PATH) && defined(PYCROSCOPE_PYTHON_EXECUTABLE) && defined(PYCROSCOPE_CLI_TEST_POSIX)
#define PYCROSCOPE_CLI_TESTS 1
#else
#define PYCROSCOPE_CLI_TESTS 0
#endif

#if PYCROSCOPE_CLI_TESTS

const std::string cli = PYCROSCOPE_CLI_PATH;
const std::string python = PYCROSCOPE_PYTHON_EXECUTABLE;

using pycroscope_test::ProcessResult;
using pycroscope_test::read_file;
using pycroscope_test::run_process;

fs::path temp_root() { return fs::temp_directory_path() / ("pycroscope_cli_test_" + std::to_string(::getpid())); }

class RemoveTempRoot : public ::testing::Environment {
public:
    void TearDown() override {
        std::error_code ignored;
        fs::remove_all(temp_root(), ignored);
    }
};
::testing::Environment* const remove_temp_root = ::testing::AddGlobalTestEnvironment(new RemoveTempRoot);

class CliTest : public ::testing::Test {
protected:
    void SetUp() override {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        dir_ = temp_root() / info->name();
        fs::remove_all(dir_);
        fs::create_directories(dir_ / "scripts");
    }

    // Writes scripts/<name> and returns its path relative to dir_.
    std::string script(const std::string& name, const std::string& source) {
        std::ofstream(dir_ / "scripts" / name, std::ios::binary) << source;
        return "scripts/" + name;
    }

    ProcessResult python_run(const std::vector<std::string>& args) {
        std::vector<std::string> argv{python};
        argv.insert(argv.end(), args.begin(), args.end());
        return run_process(argv, dir_);
    }

    // pycroscope profile --output-dir out [options] args...
    ProcessResult profile_run(const std::vector<std::string>& args, const std::vector<std::string>& options = {}) {
        std::vector<std::string> argv{cli, "profile", "--output-dir", (dir_ / "out").string()};
        argv.insert(argv.end(), options.begin(), options.end());
        argv.insert(argv.end(), args.begin(), args.end());
        return run_process(argv, dir_);
    }

    json::Value session_json() { return json::parse_file((dir_ / "out" / "session.json").string()); }

    fs::path dir_;
};

std::int64_t calls_of(const json::Value& doc, const std::string& name) {
    const json::Value& functions = doc.at("functions");
    for (std::size_t i = 0; i < functions.size(); ++i) {
        if (functions[i].at("name").as_string() == name) {
            return functions[i].at("calls").as_int();
        }
    }
    return -1;
}

const char* const identity_script = R"PY(import sys
print(sys.argv)
print(sys.path)
print(__name__, __file__, __spec__, __package__)
print(sys.executable, sys.prefix)
print(sys.flags)
)PY";

TEST_F(CliTest, ScriptSeesTheSameInterpreterStateAsPython) {
    const std::string path = script("identity.py", identity_script);
    const ProcessResult plain = python_run({path, "first", "with space", "--not-an-option"});
    const ProcessResult profiled = profile_run({path, "first", "with space", "--not-an-option"});
    EXPECT_EQ(plain.status, 0) << plain.err;
    EXPECT_EQ(profiled.status, 0) << profiled.err;
    EXPECT_EQ(profiled.out, plain.out);
    EXPECT_NE(plain.out.find("['scripts/identity.py', 'first', 'with space', '--not-an-option']"),
              std::string::npos)
        << plain.out;
    EXPECT_NE(plain.out.find("__main__"), std::string::npos);
}

TEST_F(CliTest, DashMRunsAModuleAsPythonDoes) {
    std::ofstream(dir_ / "tool_mod.py", std::ios::binary) << R"PY(import sys
def work(n):
    return sum(range(n))
for _ in range(3):
    work(1000)
print(sys.argv)
print(sys.path[0], __name__, __file__, __spec__.name, __package__)
print(sys.executable, sys.prefix)
)PY";
    const ProcessResult plain = python_run({"-m", "tool_mod", "first", "-x"});
    const ProcessResult profiled = profile_run({"-m", "tool_mod", "first", "-x"});
    EXPECT_EQ(plain.status, 0) << plain.err;
    EXPECT_EQ(profiled.status, 0) << profiled.err;
    EXPECT_EQ(profiled.out, plain.out);
    EXPECT_NE(plain.out.find("tool_mod.py', 'first', '-x']"), std::string::npos) << plain.out;
    EXPECT_EQ(calls_of(session_json(), "work"), 3);

    const ProcessResult missing_plain = python_run({"-m", "no_such_module_here"});
    const ProcessResult missing = profile_run({"-m", "no_such_module_here"});
    EXPECT_EQ(missing.status, missing_plain.status);
    EXPECT_NE(missing.err.find("No module named no_such_module_here"), std::string::npos) << missing.err;
}

TEST_F(CliTest, DashCRunsCodeAsPythonDoes) {
    const std::string code = "import sys\n"
                             "def work(n):\n"
                             "    return n * 2\n"
                             "print(sys.argv, repr(sys.path[0]), __name__, [work(i) for i in range(4)])\n"
                             "raise SystemExit(4)";
    const ProcessResult plain = python_run({"-c", code, "a", "--b"});
    const ProcessResult profiled = profile_run({"-c", code, "a", "--b"});
    EXPECT_EQ(plain.status, 4) << plain.err;
    EXPECT_EQ(profiled.status, 4) << profiled.err;
    EXPECT_EQ(profiled.out, plain.out);
    EXPECT_NE(plain.out.find("['-c', 'a', '--b'] '' __main__ [0, 2, 4, 6]"), std::string::npos) << plain.out;
    EXPECT_EQ(calls_of(session_json(), "work"), 4);
}

TEST_F(CliTest, ActivatedVirtualenvIsHonouredAsPythonHonoursIt) {
    const fs::path venv = dir_ / "venv";
    const ProcessResult made = python_run({"-m", "venv", "--without-pip", venv.string()});
    if (made.status != 0) {
        GTEST_SKIP() << "python -m venv failed here: " << made.err;
    }
    fs::path site_packages;
    for (const auto& entry : fs::directory_iterator(venv / "lib")) {
        site_packages = entry.path() / "site-packages";
    }
    ASSERT_TRUE(fs::is_directory(site_packages)) << site_packages;
    std::ofstream(site_packages / "only_in_the_venv.py") << "WHERE = 'venv'\n";
    const std::string path = script("venv_check.py", "import sys, only_in_the_venv\n"
                                                     "print(sys.prefix, sys.base_prefix, only_in_the_venv.WHERE)\n");
    const pycroscope_test::ScopedEnv active("VIRTUAL_ENV", venv.string().c_str());
    const ProcessResult in_venv = run_process({(venv / "bin" / "python3").string(), path}, dir_);
    const ProcessResult profiled = profile_run({path});
    EXPECT_EQ(in_venv.status, 0) << in_venv.err;
    EXPECT_EQ(profiled.status, 0) << profiled.err;
    EXPECT_EQ(profiled.out, in_venv.out);
    EXPECT_EQ(profiled.out.rfind(venv.string() + " ", 0), 0u) << profiled.out;
}

TEST_F(CliTest, NormalExitWritesEveryOutput) {
    const std::string path = script("work.py", R"PY(
def hot(n):
    return n * n

def main():
    return sum(hot(i) for i in range(321))

print(main())
)PY");
    const ProcessResult plain = python_run({path});
    const ProcessResult profiled = profile_run({path});
    EXPECT_EQ(profiled.status, plain.status);
    EXPECT_EQ(profiled.status, 0) << profiled.err;
    EXPECT_EQ(profiled.out, plain.out);
    for (const char* file : {"session.json", "stacks.folded", "capture.pycro", "report.html", "report.md"}) {
        EXPECT_TRUE(fs::exists(dir_ / "out" / file)) << file;
    }
    const json::Value doc = session_json();
    EXPECT_EQ(calls_of(doc, "hot"), 321);
    EXPECT_EQ(calls_of(doc, "main"), 1);
    // The report: top functions by self time, then the files.
    EXPECT_NE(profiled.err.find("self ms"), std::string::npos) << profiled.err;
    EXPECT_NE(profiled.err.find("hot"), std::string::npos) << profiled.err;
    EXPECT_NE(profiled.err.find("session.json"), std::string::npos) << profiled.err;
}

// A script sleeping about 80% of its run: the C function time.sleep and its
// caller lead the terminal summary, the ranking, the hot path and the call
// graph of session.json, which load_profile() reads back.
TEST_F(CliTest, SleepingScriptShowsSleepAndItsCallerAtTheTop) {
    const std::string path = script("sleeper.py", R"PY(
import time

def compute(n):
    total = 0
    for i in range(n):
        total += i * i
    return total

def wait():
    time.sleep(0.2)

def main():
    for _ in range(4):
        wait()
    end = time.perf_counter() + 0.2
    while time.perf_counter() < end:
        compute(200)

main()
)PY");
    const ProcessResult profiled = profile_run({path}, {"--c-calls"});
    ASSERT_EQ(profiled.status, 0) << profiled.err;
    const std::string& err = profiled.err;
    // The table's first row is time.sleep, critical; its caller is in the table too.
    const std::size_t header = err.find("severity");
    ASSERT_NE(header, std::string::npos) << err;
    const std::size_t first = err.find('\n', header) + 1;
    const std::string row = err.substr(first, err.find('\n', first) - first);
    EXPECT_NE(row.find("time.sleep"), std::string::npos) << err;
    EXPECT_NE(row.find("critical"), std::string::npos) << err;
    EXPECT_NE(row.find("         4  "), std::string::npos) << err; // 4 calls
    EXPECT_NE(err.find("callers of time.sleep: wait (4 calls, 100.0%)"), std::string::npos) << err;
    EXPECT_NE(err.find("> main ("), std::string::npos) << err;
    EXPECT_NE(err.find("> wait (") , std::string::npos) << err;
    EXPECT_NE(err.find("> time.sleep ("), std::string::npos) << err;

    const json::Value doc = session_json();
    const json::Value& top = doc.at("ranking").at("functions")[0];
    EXPECT_EQ(top.at("name").as_string(), "time.sleep");
    EXPECT_EQ(top.at("kind").as_string(), "c");
    EXPECT_EQ(top.at("calls").as_int(), 4);
    EXPECT_EQ(top.at("severity").as_string(), "critical");
    EXPECT_GT(top.at("self_pct").as_number(), 60.0);
    EXPECT_LT(top.at("self_pct").as_number(), 95.0);
    ASSERT_EQ(top.at("callers").size(), 1u);
    EXPECT_EQ(top.at("callers")[0].at("name").as_string(), "wait");
    EXPECT_EQ(top.at("callers")[0].at("calls").as_int(), 4);
    const json::Value& path_steps = doc.at("hot_path");
    ASSERT_GE(path_steps.size(), 3u);
    EXPECT_EQ(path_steps[path_steps.size() - 1].at("name").as_string(), "time.sleep");
    EXPECT_EQ(path_steps[path_steps.size() - 2].at("name").as_string(), "wait");
    // functions[*] / c_functions[*] carry the call graph.
    bool saw_sleep = false, saw_wait = false;
    for (const auto& f : doc.at("c_functions").items()) {
        if (f.at("name").as_string() == "time.sleep") {
            saw_sleep = true;
            ASSERT_EQ(f.at("callers").size(), 1u);
            EXPECT_EQ(f.at("callers")[0].at("name").as_string(), "wait");
            EXPECT_EQ(f.at("callers")[0].at("calls").as_int(), 4);
            EXPECT_EQ(f.at("callers")[0].at("time_ns").as_int(), f.at("inclusive_ns").as_int());
        }
    }
    for (const auto& f : doc.at("functions").items()) {
        if (f.at("name").as_string() == "wait") {
            saw_wait = true;
            ASSERT_EQ(f.at("callees").size(), 1u);
            EXPECT_EQ(f.at("callees")[0].at("name").as_string(), "time.sleep");
            EXPECT_EQ(f.at("callers")[0].at("name").as_string(), "main");
        }
    }
    EXPECT_TRUE(saw_sleep);
    EXPECT_TRUE(saw_wait);
    // The same call graph, read back without the capture.
    const pycroscope::model::Profile loaded = pycroscope::model::load_profile((dir_ / "out" / "session.json").string());
    const std::uint32_t sleep = loaded.find("time.sleep");
    const std::uint32_t wait = loaded.find("wait");
    ASSERT_NE(sleep, pycroscope::model::no_index);
    ASSERT_NE(wait, pycroscope::model::no_index);
    EXPECT_EQ(loaded.functions[sleep].calls, 4u);
    ASSERT_NE(loaded.edge(wait, sleep), nullptr);
    EXPECT_EQ(loaded.edge(wait, sleep)->calls, 4u);
    EXPECT_GT(loaded.functions[sleep].self * 10, loaded.total * 6);
}

TEST_F(CliTest, SysExitKeepsItsStatusAndStillWritesTheProfile) {
    const std::string path = script("exit3.py", R"PY(
import sys
def before_exit():
    return 1
before_exit()
print("leaving", flush=True)
sys.exit(3)
print("never")
)PY");
    const ProcessResult plain = python_run({path});
    const ProcessResult profiled = profile_run({path});
    EXPECT_EQ(plain.status, 3);
    EXPECT_EQ(profiled.status, 3) << profiled.err;
    EXPECT_EQ(profiled.out, plain.out);
    EXPECT_EQ(calls_of(session_json(), "before_exit"), 1);
}

TEST_F(CliTest, UncaughtExceptionPrintsTheSameTracebackAndExits1) {
    const std::string path = script("raises.py", R"PY(
def failing_function():
    raise LookupError("something was not found")

failing_function()
)PY");
    const ProcessResult plain = python_run({path});
    const ProcessResult profiled = profile_run({path});
    EXPECT_EQ(plain.status, 1);
    EXPECT_EQ(profiled.status, 1);
    EXPECT_NE(profiled.err.find("Traceback (most recent call last)"), std::string::npos) << profiled.err;
    EXPECT_NE(profiled.err.find("LookupError: something was not found"), std::string::npos) << profiled.err;
    // The traceback comes first and is Python's own; the report follows it.
    EXPECT_EQ(profiled.err.substr(0, plain.err.size()), plain.err);
    EXPECT_EQ(calls_of(session_json(), "failing_function"), 1);
}

TEST_F(CliTest, AtexitHandlersAndThreadsOfTheScriptAreProfiled) {
    const std::string path = script("late.py", R"PY(
import atexit, threading

def in_thread():
    return sum(range(10))

def thread_body():
    for _ in range(10):
        in_thread()

def at_exit_work():
    return 42

atexit.register(at_exit_work)
threads = [threading.Thread(target=thread_body) for _ in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
)PY");
    const ProcessResult profiled = profile_run({path});
    EXPECT_EQ(profiled.status, 0) << profiled.err;
    const json::Value doc = session_json();
    EXPECT_EQ(calls_of(doc, "at_exit_work"), 1);
    EXPECT_EQ(calls_of(doc, "in_thread"), 20);
}

TEST_F(CliTest, ScriptCanUseThePycroscopeModule) {
    const std::string path = script("module.py", R"PY(
import pycroscope

@pycroscope.zone("decorated zone")
def step():
    return 1

with pycroscope.zone("script zone"):
    for _ in range(4):
        step()

# Under the CLI, profile() joins the running session.
with pycroscope.profile() as session:
    step()
print(session.get_completed_profilers())
)PY");
    const ProcessResult profiled = profile_run({path});
    EXPECT_EQ(profiled.status, 0) << profiled.err;
    EXPECT_EQ(profiled.out, "['native_zones', 'python', 'gc', 'imports', 'io', 'memory', 'system_monitor']\n");
    const json::Value doc = session_json();
    std::int64_t script_zone = -1, decorated = -1;
    const json::Value& zones = doc.at("zones");
    for (std::size_t i = 0; i < zones.size(); ++i) {
        const std::string& name = zones[i].at("name").as_string();
        if (name == "script zone") {
            script_zone = zones[i].at("count").as_int();
        } else if (name == "decorated zone") {
            decorated = zones[i].at("count").as_int();
        }
    }
    EXPECT_EQ(script_zone, 1);
    EXPECT_EQ(decorated, 5);
    EXPECT_EQ(doc.at("unmatched_ends").as_int(), 0);
}

TEST_F(CliTest, MinimalUsesTheEvalFrameBackendWithoutCCalls) {
    const std::string path = script("minimal.py", "def f():\n    return len([1])\nf()\n");
    const ProcessResult profiled = profile_run({path}, {"--minimal"});
    EXPECT_EQ(profiled.status, 0) << profiled.err;
    const json::Value doc = session_json();
    EXPECT_EQ(doc.at("python").at("backend").as_string(), "eval_frame");
    EXPECT_EQ(doc.at("c_functions").size(), 0u);
    EXPECT_EQ(calls_of(doc, "f"), 1);
}

// Each mode records what docs/cli.md's table says, and names itself in the metadata.
TEST_F(CliTest, ModesRecordWhatTheirTableSays) {
    const std::string path = script("modes.py", R"PY(
def fail():
    raise ValueError
def work():
    data = [bytes(256) for _ in range(2000)]
    try:
        fail()
    except ValueError:
        pass
    return len(data)
work()
)PY");
    struct Expected {
        std::vector<std::string> flags;
        const char* mode;
        bool c_calls;
        bool lines;
        bool exceptions;
        const char* memory; // sampling mode, or nullptr: no memory section
    };
    const Expected table[] = {
        {{}, "default", false, false, false, "sampled"},
        {{"--minimal"}, "minimal", false, false, false, nullptr},
        {{"--full"}, "full", true, true, true, "full"},
        {{"--sample"}, "sample", false, false, false, nullptr},
        {{"--memory-sample", "0"}, "default", false, false, false, "full"},
        {{"--full", "--no-line", "--no-exceptions", "--memory-sample", "1024"}, "full", true, false, false, "sampled"},
        {{"--minimal", "--memory-sample", "4096"}, "minimal", false, false, false, "sampled"},
    };
    for (const Expected& row : table) {
        fs::remove_all(dir_ / "out");
        const ProcessResult profiled = profile_run({path}, row.flags);
        const std::string label = row.flags.empty() ? "no flags" : row.flags.front() + " ...";
        ASSERT_EQ(profiled.status, 0) << label << profiled.err;
        const json::Value doc = session_json();
        EXPECT_EQ(doc.at("metadata").at("profile_mode").as_string(), row.mode) << label;
        if (std::string(row.mode) != "sample") {
            EXPECT_EQ(calls_of(doc, "work"), 1) << label;
            EXPECT_EQ(doc.at("python").at("c_calls").as_bool(), row.c_calls) << label;
            EXPECT_EQ(doc.at("python").at("lines").as_bool(), row.lines) << label;
            EXPECT_EQ(doc.at("c_functions").size() > 0, row.c_calls) << label;
        }
        EXPECT_EQ(doc.contains("exceptions"), row.exceptions) << label;
        ASSERT_EQ(doc.contains("memory"), row.memory != nullptr) << label;
        if (row.memory != nullptr) {
            EXPECT_EQ(doc.at("memory").at("sampling").at("mode").as_string(), row.memory) << label;
        }
        for (const char* section : {"gc", "imports", "io", "system"}) {
            EXPECT_TRUE(doc.contains(section)) << label << ": " << section;
        }
    }
}

TEST_F(CliTest, CollectorsTurnedOffHaveNoSection) {
    const std::string path = script("quiet.py", "import gc\ngc.collect()\ntry:\n    raise ValueError\nexcept ValueError:\n    pass\n");
    const ProcessResult profiled =
        profile_run({path}, {"--no-gc", "--no-imports", "--no-io", "--no-exceptions", "--no-memory", "--no-system"});
    ASSERT_EQ(profiled.status, 0) << profiled.err;
    const json::Value doc = session_json();
    for (const char* section : {"gc", "imports", "io", "exceptions", "memory", "system"}) {
        EXPECT_FALSE(doc.contains(section)) << section;
    }
    EXPECT_TRUE(doc.contains("functions"));

    // Each flag alone removes its own section only.
    fs::remove_all(dir_ / "out");
    const ProcessResult no_gc = profile_run({path}, {"--no-gc", "--no-memory", "--exceptions"});
    ASSERT_EQ(no_gc.status, 0) << no_gc.err;
    const json::Value partial = session_json();
    EXPECT_FALSE(partial.contains("gc"));
    EXPECT_TRUE(partial.contains("imports"));
    EXPECT_TRUE(partial.contains("io"));
    EXPECT_TRUE(partial.contains("exceptions"));
}

TEST_F(CliTest, SinksSelectTheOutputs) {
    const std::string path = script("tiny.py", "pass\n");
    const ProcessResult profiled = profile_run({path}, {"--sinks", "folded", "--no-line", "--no-memory"});
    EXPECT_EQ(profiled.status, 0) << profiled.err;
    EXPECT_TRUE(fs::exists(dir_ / "out" / "stacks.folded"));
    EXPECT_FALSE(fs::exists(dir_ / "out" / "session.json"));
    EXPECT_FALSE(fs::exists(dir_ / "out" / "trace.json"));
}

TEST_F(CliTest, DefaultOutputDirectoryIsTimestamped) {
    const std::string path = script("tiny.py", "pass\n");
    const ProcessResult first = run_process({cli, "profile", path}, dir_);
    const ProcessResult second = run_process({cli, "profile", path}, dir_);
    EXPECT_EQ(first.status, 0) << first.err;
    EXPECT_EQ(second.status, 0) << second.err;
    std::size_t runs = 0;
    for (const auto& entry : fs::directory_iterator(dir_ / "profiling_results")) {
        EXPECT_TRUE(fs::exists(entry.path() / "session.json")) << entry.path();
        ++runs;
    }
    EXPECT_EQ(runs, 2u); // never the same directory twice
}

TEST_F(CliTest, MissingScriptExits2BeforeStarting) {
    const ProcessResult plain = python_run({"missing.py"});
    const ProcessResult profiled = run_process({cli, "profile", "missing.py"}, dir_);
    EXPECT_EQ(plain.status, 2);
    EXPECT_EQ(profiled.status, 2);
    EXPECT_NE(profiled.err.find("can't open file 'missing.py'"), std::string::npos) << profiled.err;
    EXPECT_NE(profiled.err.find("No such file or directory"), std::string::npos) << profiled.err;
    EXPECT_FALSE(fs::exists(dir_ / "profiling_results"));
}

TEST_F(CliTest, BadUsageExits2WithUsage) {
    const std::string path = script("tiny.py", "pass\n");
    for (const std::vector<std::string>& argv : std::vector<std::vector<std::string>>{
             {cli, "profile", "--no-such-flag", path},
             {cli, "profile"},
             {cli},
             {cli, "frobnicate", path},
             {cli, "profile", "--sinks", "json,xml", path},
             {cli, "profile", "--backend", "turbo", path},
             {cli, "profile", "--backend", "eval_frame", "--line", path},
             {cli, "profile", "--output-dir"},
             {cli, "profile", "-m"},
             {cli, "profile", "-c"},
             {cli, "profile", "--minimal", "--full", path},
             {cli, "profile", "--full", "--sample", path},
             {cli, "profile", "--minimal", "--exceptions", path},
             {cli, "profile", "--minimal", "--line", path},
             {cli, "profile", "--sample", "--c-calls", path},
             {cli, "profile", "--memory-sample", "-5", path},
             {cli, "profile", "--no-memory", "--memory-sample", "0", path},
         }) {
        const ProcessResult run = run_process(argv, dir_);
        EXPECT_EQ(run.status, 2) << argv.back() << ": " << run.err;
        EXPECT_NE(run.err.find("usage: pycroscope profile"), std::string::npos) << run.err;
    }
    const ProcessResult help = run_process({cli, "--help"}, dir_);
    EXPECT_EQ(help.status, 0);
    EXPECT_NE(help.out.find("--output-dir"), std::string::npos);
}

// Enable once the core detaches a fork child from the parent's session
// (today the child's events have no drain thread, and with the block policy
// it waits for room forever).
TEST_F(CliTest, ForkChildDetachesFromTheSession) {
    const std::string path = script("fork.py", R"PY(
import os, sys
def work(n):
    return sum(i * i for i in range(n))
work(1000)
pid = os.fork()
if pid == 0:
    for _ in range(5000):
        work(100)
    sys.exit(0)
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status))
)PY");
    const ProcessResult profiled = profile_run({path});
    EXPECT_EQ(profiled.status, 0) << profiled.err;
    EXPECT_EQ(profiled.out, "child 0\n");
    EXPECT_GE(calls_of(session_json(), "work"), 1);
}

// `pycroscope profile` turns every resource collector on: each section holds
// what the script did (exact counts are checked per collector in their tests).
TEST_F(CliTest, EveryResourceSectionHoldsTheRun) {
    const std::string path = script("resources.py", R"PY(import atexit, gc, sys
seen = []
gc.callbacks.append(lambda phase, info: seen.append(info["generation"]) if phase == "stop" else None)
atexit.register(lambda: print(len(seen)))
import fractions
def fail(n):
    raise ValueError(n)
def catcher():
    for i in range(3):
        try:
            fail(i)
        except ValueError:
            pass
catcher()
with open(sys.argv[1], "w") as f:
    f.write("x")
gc.collect()
gc.collect(0)
)PY");
    const ProcessResult profiled = profile_run({path, (dir_ / "written.txt").string()}, {"--full"});
    ASSERT_EQ(profiled.status, 0) << profiled.err;
    const std::int64_t callbacks_seen = std::stoll(profiled.out);
    const json::Value doc = session_json();

    // The script's callback was appended after ours: we see at least as many.
    EXPECT_GE(doc.at("gc").at("collections").as_int(), callbacks_seen);
    EXPECT_GE(callbacks_seen, 2);

    std::function<bool(const json::Value&)> has_module = [&](const json::Value& nodes) {
        for (std::size_t i = 0; i < nodes.size(); ++i) {
            if (nodes[i].at("module").as_string() == "fractions" || has_module(nodes[i].at("children"))) {
                return true;
            }
        }
        return false;
    };
    EXPECT_TRUE(has_module(doc.at("imports")));

    bool open_at_line = false;
    const json::Value& io = doc.at("io");
    for (std::size_t i = 0; i < io.size(); ++i) {
        open_at_line = open_at_line || (io[i].at("operation").as_string() == "open" && io[i].at("line").as_int() == 15);
    }
    EXPECT_TRUE(open_at_line);

    bool fail_site = false;
    const json::Value& exceptions = doc.at("exceptions");
    for (std::size_t i = 0; i < exceptions.size(); ++i) {
        if (exceptions[i].at("function").as_string() == "fail") {
            fail_site = true;
            EXPECT_EQ(exceptions[i].at("raised").as_int(), 3);
            EXPECT_EQ(exceptions[i].at("caught").as_int(), 3);
            EXPECT_EQ(exceptions[i].at("line").as_int(), 7);
        }
    }
    EXPECT_TRUE(fail_site);

    EXPECT_GE(doc.at("system").at("samples").as_int(), 1);
    EXPECT_GT(doc.at("memory").at("peak_bytes").as_int(), 0);
    EXPECT_TRUE(fs::exists(dir_ / "out" / "memory.folded"));
}

#else

TEST(CliTest, SkippedWithoutTheCli) {
    GTEST_SKIP() << "the pycroscope CLI is not built (PYCROSCOPE_BUILD_EXAMPLES=OFF or no Python embed)";
}

#endif

} // namespace
} // namespace cli_test
