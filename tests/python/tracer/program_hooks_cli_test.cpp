// `pycroscope profile` leaves the script's own hooks alone: a script that
// uses doctest, sys.settrace/setprofile, threading.settrace/setprofile or
// audit hooks prints the same output and exits with the same status as under
// the interpreter itself (PYCROSCOPE_PYTHON_EXECUTABLE, never a PATH shim),
// in every mode of the command.

#include "support/child_process.hpp"
#include "support/json.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#define PYCROSCOPE_HOOKS_CLI_POSIX 1
#endif

namespace program_hooks_cli_test {
namespace {

#if defined(PYCROSCOPE_CLI_PATH) && defined(PYCROSCOPE_PYTHON_EXECUTABLE) && defined(PYCROSCOPE_HOOKS_CLI_POSIX)

namespace fs = std::filesystem;

using ChildResult = pycroscope_test::ProcessResult;

ChildResult run_child(const std::vector<std::string>& argv, const fs::path& dir) {
    return pycroscope_test::run_process(argv, dir);
}

const char* const doctest_script = R"PY(def add(a, b):
    """
    >>> add(2, 3)
    5
    >>> [add(i, i) for i in range(3)]
    [0, 2, 4]
    """
    return a + b

if __name__ == "__main__":
    import doctest
    result = doctest.testmod()
    print(result)
    raise SystemExit(3 if result.failed == 0 else 1)
)PY";

// What the script's own tracers and profilers observe, printed.
const char* const hooks_script = R"PY(import sys, threading
calls = {}
def counter(frame, event, arg):
    if event == 'call':
        calls[frame.f_code.co_name] = calls.get(frame.f_code.co_name, 0) + 1
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)
print(sys.gettrace(), sys.getprofile())
sys.settrace(None)
sys.setprofile(None)
saved = sys.gettrace()
sys.settrace(counter)
print(sys.gettrace() is counter)
fib(12)
sys.settrace(saved)
print(sys.gettrace(), sorted(calls.items()))
events = []
def local(frame, event, arg):
    events.append((event, frame.f_lineno - frame.f_code.co_firstlineno))
    return local
def glob(frame, event, arg):
    return local if frame.f_code.co_name == 'body' else None
def body():
    x = 1
    for i in range(2):
        x += i
    return x
sys.settrace(glob)
body()
sys.settrace(None)
print(events)
profiled = []
def prof(frame, event, arg):
    profiled.append((event, frame.f_code.co_name if event in ('call', 'return') else arg.__name__))
sys.setprofile(prof)
fib(3)
len('abc')
sys.setprofile(None)
print(profiled)
results, seen = [], []
lock = threading.Lock()
def thread_tracer(frame, event, arg):
    if event == 'call' and frame.f_code.co_name == 'work':
        with lock:
            seen.append('trace')
def thread_profiler(frame, event, arg):
    if event == 'call' and frame.f_code.co_name == 'fib':
        with lock:
            seen.append('profile')
def work(i):
    results.append((i, fib(i + 5)))
threading.settrace(thread_tracer)
threading.setprofile(thread_profiler)
threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
threading.settrace(None)
threading.setprofile(None)
print(sorted(results), seen.count('trace'), seen.count('profile'))
def bad(frame, event, arg):
    raise ValueError('tracer failed')
sys.settrace(bad)
try:
    body()
except ValueError as e:
    print('caught', e, sys.gettrace())
print(sys.gettrace(), sys.getprofile())
)PY";

const char* const audit_script = R"PY(import sys, threading
seen = []
for k in range(3):
    sys.addaudithook(lambda event, args, k=k: seen.append((k, event)) if event.startswith('sys.set') else None)
def boom(i):
    if i % 2:
        raise KeyError(i)
    return i * 10
out = []
def run(i):
    try:
        out.append(boom(i))
    except KeyError as e:
        out.append(-e.args[0])
threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(sorted(out))
def fails():
    raise RuntimeError('uncaught in a thread')
t = threading.Thread(target=fails, name='failing')
t.start()
t.join()
sys.settrace(None)
print(seen)
raise SystemExit(5)
)PY";

class ProgramHooksCli : public ::testing::Test {
protected:
    void SetUp() override {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        dir_ = fs::temp_directory_path() / ("pycroscope_hooks_cli_" + std::to_string(::getpid())) / info->name();
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override {
        std::error_code ignored;
        fs::remove_all(dir_.parent_path(), ignored);
    }
    std::string script(const std::string& name, const std::string& source) {
        std::ofstream(dir_ / name, std::ios::binary) << source;
        return name;
    }
    ChildResult plain(const std::string& path) { return run_child({PYCROSCOPE_PYTHON_EXECUTABLE, path}, dir_); }
    ChildResult profiled(const std::string& path, const std::vector<std::string>& options = {}) {
        std::vector<std::string> argv{PYCROSCOPE_CLI_PATH, "profile", "--output-dir", (dir_ / "out").string()};
        argv.insert(argv.end(), options.begin(), options.end());
        argv.push_back(path);
        return run_child(argv, dir_);
    }
    // Same stdout and status; the script's stderr comes first, then the report.
    void expect_same(const ChildResult& expected, const ChildResult& actual, const std::string& label) {
        EXPECT_EQ(actual.status, expected.status) << label << "\n" << actual.err;
        EXPECT_EQ(actual.out, expected.out) << label;
        EXPECT_EQ(actual.err.substr(0, expected.err.size()), expected.err) << label;
        EXPECT_EQ(actual.err.find("owns the profile/trace hook"), std::string::npos) << label;
    }
    json::Value session() { return json::parse_file((dir_ / "out" / "session.json").string()); }

    fs::path dir_;
};

// --full: the profile backend with a trace function, where the script's own hooks meet ours.
const std::vector<std::vector<std::string>> modes = {{}, {"--minimal"}, {"--sample"}, {"--full"}};

std::string label(const std::vector<std::string>& mode) { return mode.empty() ? "default" : mode.front(); }

TEST_F(ProgramHooksCli, DoctestPassesInEveryMode) {
    const std::string path = script("doc.py", doctest_script);
    const ChildResult expected = plain(path);
    ASSERT_EQ(expected.status, 3) << expected.err;
    ASSERT_EQ(expected.out, "TestResults(failed=0, attempted=2)\n");
    for (const auto& mode : modes) {
        expect_same(expected, profiled(path, mode), label(mode));
    }
}

TEST_F(ProgramHooksCli, TheScriptsTracersAndProfilersSeeWhatTheySeeUnderPython) {
    const std::string path = script("hooks.py", hooks_script);
    const ChildResult expected = plain(path);
    ASSERT_EQ(expected.status, 0) << expected.err;
    ASSERT_NE(expected.out.find("[('fib', 465)]"), std::string::npos) << expected.out;
    for (const auto& mode : modes) {
        expect_same(expected, profiled(path, mode), label(mode));
    }
    // Full mode (the hooks chained): nothing lost, every thread's work recorded.
    const ChildResult again = profiled(path, {"--full"});
    expect_same(expected, again, "--full");
    const json::Value doc = session();
    const json::Value& hooks = doc.at("python").at("program_hooks");
    EXPECT_EQ(hooks.at("policy").as_string(), "chain");
    EXPECT_EQ(hooks.at("stepped_aside_threads").as_int(), 0);
    EXPECT_GE(hooks.at("chained_threads").as_int(), 5) << "the main thread and the four started under the hooks";
    EXPECT_EQ(doc.at("python").at("conflicts").size(), 0u);
    std::int64_t work_calls = 0;
    for (const auto& f : doc.at("functions").items()) {
        if (f.at("name").as_string() == "work") {
            work_calls += f.at("calls").as_int();
        }
    }
    EXPECT_EQ(work_calls, 4);
}

TEST_F(ProgramHooksCli, AuditHooksOfTheScriptChangeNothing) {
    const std::string path = script("audit.py", audit_script);
    const ChildResult expected = plain(path);
    ASSERT_EQ(expected.status, 5) << expected.err;
    ASSERT_NE(expected.err.find("RuntimeError: uncaught in a thread"), std::string::npos) << expected.err;
    for (const auto& mode : modes) {
        expect_same(expected, profiled(path, mode), label(mode));
    }
    const ChildResult again = profiled(path);
    expect_same(expected, again, "default");
    const json::Value doc = session();
    EXPECT_EQ(doc.at("python").at("conflicts").size(), 0u);
    std::int64_t boom_calls = -1;
    for (const auto& f : doc.at("functions").items()) {
        if (f.at("name").as_string() == "boom") {
            boom_calls = f.at("calls").as_int();
        }
    }
    EXPECT_EQ(boom_calls, 6) << "threads started after the audit hooks are profiled";
}

TEST_F(ProgramHooksCli, StepAsideReportsTheThreadsItLeft) {
    const std::string path = script("hooks.py", hooks_script);
    const ChildResult expected = plain(path);
    const ChildResult actual = profiled(path, {"--full", "--on-conflict", "step_aside"});
    expect_same(expected, actual, "step_aside");
    EXPECT_NE(actual.err.find("not recorded"), std::string::npos) << actual.err;
    const json::Value doc = session();
    const json::Value& hooks = doc.at("python").at("program_hooks");
    EXPECT_EQ(hooks.at("policy").as_string(), "step_aside");
    EXPECT_GE(hooks.at("stepped_aside_threads").as_int(), 5);
    EXPECT_GT(hooks.at("untraced_ns").as_int(), 0);
}

TEST_F(ProgramHooksCli, FailIsOnlyOnRequestAndAnUnknownPolicyIsAUsageError) {
    const std::string path = script("doc.py", doctest_script);
    EXPECT_EQ(profiled(path, {"--full", "--on-conflict", "fail"}).status, 3) << "doctest sets nothing: no conflict";
    const std::string hooks = script("hooks.py", hooks_script);
    const ChildResult refused = profiled(hooks, {"--full", "--on-conflict=fail"});
    EXPECT_EQ(refused.status, 1);
    EXPECT_NE(refused.err.find("RuntimeError"), std::string::npos) << refused.err;
    const ChildResult bad = profiled(path, {"--on-conflict", "chained"});
    EXPECT_EQ(bad.status, 2);
    EXPECT_NE(bad.err.find("--on-conflict needs a policy"), std::string::npos) << bad.err;
}

#else
TEST(ProgramHooksCli, SkippedWithoutTheCli) { GTEST_SKIP() << "the pycroscope CLI is not built"; }
#endif

} // namespace
} // namespace program_hooks_cli_test
