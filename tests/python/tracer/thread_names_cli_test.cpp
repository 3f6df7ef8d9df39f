// `pycroscope profile` names each thread the threading module starts after
// its Python name (threading.Thread(name=...)): session.json's threads and
// the Chrome trace's tracks carry it, in --minimal (the eval-frame hook on
// 3.9-3.11) and in the default mode (the profile function).

#include "support/child_process.hpp"
#include "support/json.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#define PYCROSCOPE_THREAD_NAMES_POSIX 1
#endif

namespace thread_names_cli_test {
namespace {

#if defined(PYCROSCOPE_CLI_PATH) && defined(PYCROSCOPE_THREAD_NAMES_POSIX)

namespace fs = std::filesystem;

const char* const script = R"PY(import threading
def work(n):
    return sum(i * i for i in range(n))
threads = [threading.Thread(target=work, args=(2000,), name=name) for name in ("loader", "writer")]
for t in threads:
    t.start()
for t in threads:
    t.join()
unnamed = threading.Thread(target=work, args=(10,))
unnamed.start()
unnamed.join()
print(unnamed.name.startswith("Thread-"))
)PY";

std::set<std::string> session_thread_names(const fs::path& out) {
    const json::Value doc = json::parse_file((out / "session.json").string());
    std::set<std::string> names;
    const json::Value& threads = doc.at("threads");
    for (std::size_t i = 0; i < threads.size(); ++i) {
        names.insert(threads[i].at("name").as_string());
    }
    return names;
}

std::set<std::string> trace_thread_names(const fs::path& out) {
    const json::Value doc = json::parse_file((out / "trace.json").string());
    const json::Value& events = doc.is_array() ? doc : doc.at("traceEvents");
    std::set<std::string> names;
    for (std::size_t i = 0; i < events.size(); ++i) {
        if (events[i].at("ph").as_string() == "M" && events[i].at("name").as_string() == "thread_name") {
            names.insert(events[i].at("args").at("name").as_string());
        }
    }
    return names;
}

class ThreadNamesCli : public ::testing::TestWithParam<const char*> {};

TEST_P(ThreadNamesCli, PythonThreadNamesNameTheThreadsInSessionJsonAndTheTrace) {
    const fs::path dir = fs::temp_directory_path() /
                         ("pycroscope_thread_names_" + std::to_string(::getpid()) + "_" + GetParam() + "_mode");
    fs::remove_all(dir);
    fs::create_directories(dir);
    std::ofstream(dir / "threads.py") << script;
    std::vector<std::string> argv{PYCROSCOPE_CLI_PATH, "profile",    "--output-dir", (dir / "out").string(),
                                  "--no-system",       "--sinks",    "json,chrome"};
    if (std::string(GetParam()) == "minimal") {
        argv.push_back("--minimal");
    }
    argv.push_back((dir / "threads.py").string());
    const pycroscope_test::ProcessResult run = pycroscope_test::run_process(argv, dir);
    ASSERT_EQ(run.status, 0) << run.err;
    EXPECT_EQ(run.out, "True\n");
    for (const auto& names : {session_thread_names(dir / "out"), trace_thread_names(dir / "out")}) {
        EXPECT_EQ(names.count("loader"), 1u);
        EXPECT_EQ(names.count("writer"), 1u);
        // An unnamed Thread has its default name (Thread-N (work) on 3.10+).
        std::size_t defaults = 0;
        for (const auto& name : names) {
            defaults += name.rfind("Thread-", 0) == 0 ? 1 : 0;
        }
        EXPECT_EQ(defaults, 1u);
    }
    std::error_code ignored;
    fs::remove_all(dir, ignored);
}

INSTANTIATE_TEST_SUITE_P(Modes, ThreadNamesCli, ::testing::Values("minimal", "default"),
                         [](const ::testing::TestParamInfo<const char*>& info) { return std::string(info.param); });

#else

TEST(ThreadNamesCli, SkippedWithoutTheCli) { GTEST_SKIP() << "PYCROSCOPE_CLI_PATH not set or not POSIX"; }

#endif

} // namespace
} // namespace thread_names_cli_test
