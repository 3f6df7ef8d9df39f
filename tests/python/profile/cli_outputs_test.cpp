// The `pycroscope profile` command when things go wrong around the script:
// outputs that cannot be written (no space, folder removed) are named as
// such and change the exit status; SIGTERM and SIGHUP stop the script as
// Python's default does but write every output first; a killed run's
// temporaries are cleaned by the next run; names that are not plain text
// stay distinct and never reach the terminal raw.

#include "support/child_process.hpp"
#include "support/json.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <signal.h>
#include <unistd.h>
#define PYCROSCOPE_OUTPUTS_TEST_POSIX 1
#endif

namespace cli_outputs_test {
namespace {

namespace fs = std::filesystem;

#if defined(PYCROSCOPE_CLI_PATH) && defined(PYCROSCOPE_OUTPUTS_TEST_POSIX)

const std::string cli = PYCROSCOPE_CLI_PATH;

using pycroscope_test::read_file;
using ChildResult = pycroscope_test::ProcessResult;
using Child = pycroscope_test::ChildProcess;

fs::path temp_root() {
    return fs::temp_directory_path() / ("pycroscope_outputs_test_" + std::to_string(::getpid()));
}

class OutputsTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = temp_root() / ::testing::UnitTest::GetInstance()->current_test_info()->name();
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override {
        std::error_code ignored;
        fs::remove_all(dir_, ignored);
    }

    std::string script(const std::string& name, const std::string& source) {
        std::ofstream(dir_ / name, std::ios::binary) << source;
        return (dir_ / name).string();
    }
    fs::path out() const { return dir_ / "out"; }
    std::vector<std::string> argv(const std::string& path, const std::vector<std::string>& options = {}) const {
        std::vector<std::string> args{cli, "profile", "--output-dir", out().string(), "--no-system"};
        args.insert(args.end(), options.begin(), options.end());
        args.push_back(path);
        return args;
    }
    // Waits until the script created `ready` (it is running its main loop).
    bool wait_for_ready(std::chrono::seconds timeout = std::chrono::seconds(60)) const {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!fs::exists(dir_ / "ready")) {
            if (std::chrono::steady_clock::now() > deadline) {
                return false;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return true;
    }
    std::vector<std::string> temporaries() const {
        std::vector<std::string> found;
        std::error_code error;
        for (const auto& entry : fs::directory_iterator(out(), error)) {
            if (entry.path().filename().string().find(".tmp.") != std::string::npos) {
                found.push_back(entry.path().filename().string());
            }
        }
        return found;
    }
    // Every output on disk is whole: the JSON ones parse.
    void expect_whole_outputs(const std::vector<std::string>& required) const {
        for (const auto& name : required) {
            EXPECT_TRUE(fs::exists(out() / name)) << name;
        }
        for (const char* name : {"session.json", "trace.json"}) {
            if (fs::exists(out() / name)) {
                EXPECT_NO_THROW(json::parse_file((out() / name).string())) << name;
            }
        }
    }

    fs::path dir_;
};

// The terminal report's "wrote" and "NOT written" lists.
std::vector<std::string> listed(const std::string& err, const std::string& heading) {
    std::vector<std::string> files;
    const std::size_t at = err.find("pycroscope: " + heading + "\n");
    if (at == std::string::npos) {
        return files;
    }
    std::istringstream in(err.substr(at + heading.size() + 13));
    for (std::string line; std::getline(in, line) && line.rfind("  ", 0) == 0;) {
        files.push_back(fs::path(line.substr(2)).filename().string());
    }
    return files;
}

const char* const sleeper = R"PY(import os, sys, time
def work(n):
    return sum(i * i for i in range(n))
for _ in range(20):
    work(1000)
open(os.path.join(os.path.dirname(__file__), "ready"), "w").close()
try:
    while True:
        time.sleep(0.05)
finally:
    print("finally ran", flush=True)
)PY";

TEST_F(OutputsTest, AnOutputFolderRemovedMidRunIsNotReportedAsWrittenAndExitsThree) {
    const std::string path = script("remove.py", "import shutil, sys\nshutil.rmtree(sys.argv[1])\n");
    std::vector<std::string> args = argv(path);
    args.push_back(out().string());
    const ChildResult run = Child(args, dir_).wait();
    EXPECT_EQ(run.status, 3) << run.err;
    EXPECT_EQ(listed(run.err, "wrote"), std::vector<std::string>{}) << run.err;
    const std::vector<std::string> failed = listed(run.err, "NOT written");
    EXPECT_EQ(std::set<std::string>(failed.begin(), failed.end()),
              (std::set<std::string>{"session.json", "stacks.folded", "memory.folded", "capture.pycro", "report.html",
                                     "report.md"}))
        << run.err;
    EXPECT_NE(run.err.find("pycroscope: error: "), std::string::npos) << run.err;
}

TEST_F(OutputsTest, TheScriptsOwnFailureStatusWinsOverAnOutputFailure) {
    const std::string path = script("remove.py", "import shutil, sys\nshutil.rmtree(sys.argv[1])\nsys.exit(7)\n");
    std::vector<std::string> args = argv(path);
    args.push_back(out().string());
    const ChildResult run = Child(args, dir_).wait();
    EXPECT_EQ(run.status, 7) << run.err;
    EXPECT_EQ(listed(run.err, "NOT written").size(), 6u) << run.err;
}

TEST_F(OutputsTest, AFullDiskListsOnlyTheFilesWrittenAndExitsThree) {
    // RLIMIT_FSIZE fails writes past 64 KiB with EFBIG, as ENOSPC would:
    // the small folded files fit, session.json and the capture do not.
    const std::string path = script("busy.py", "def f(n):\n    return n\nfor i in range(30000):\n    f(i)\n");
    const ChildResult run = Child(argv(path), dir_, 64 * 1024).wait();
    EXPECT_EQ(run.status, 3) << run.err;
    const std::vector<std::string> written = listed(run.err, "wrote");
    const std::vector<std::string> failed = listed(run.err, "NOT written");
    EXPECT_EQ(written.size() + failed.size(), 6u) << run.err;
    EXPECT_FALSE(failed.empty()) << run.err;
    for (const auto& name : written) {
        EXPECT_TRUE(fs::exists(out() / name)) << name;
    }
    for (const auto& name : failed) {
        // A capture keeps its whole chunks under its name when a write fails (it reads as cut).
        if (name != "capture.pycro") {
            EXPECT_FALSE(fs::exists(out() / name)) << name;
        }
    }
    EXPECT_EQ(temporaries(), std::vector<std::string>{});
    expect_whole_outputs(written);
}


TEST_F(OutputsTest, SigtermStopsTheScriptWritesEveryOutputAndDiesBySigterm) {
    const std::string path = script("sleeper.py", sleeper);
    Child child(argv(path), dir_);
    ASSERT_TRUE(wait_for_ready());
    child.signal(SIGTERM);
    const ChildResult run = child.wait();
    EXPECT_EQ(run.status, 128 + SIGTERM) << run.err;
    EXPECT_NE(run.err.find("SIGTERM received"), std::string::npos) << run.err;
    EXPECT_EQ(read_file(dir_ / ".stdout").find("finally ran"), std::string::npos); // Python's default: no unwinding
    EXPECT_EQ(listed(run.err, "wrote").size(), 6u) << run.err;
    expect_whole_outputs({"session.json", "stacks.folded", "memory.folded", "capture.pycro", "report.html", "report.md"});
    EXPECT_EQ(temporaries(), std::vector<std::string>{});
    EXPECT_NE(read_file(out() / "stacks.folded").find(";work"), std::string::npos);
}

TEST_F(OutputsTest, SighupStopsTheScriptWritesEveryOutputAndDiesBySighup) {
    const std::string path = script("sleeper.py", sleeper);
    Child child(argv(path, {"--sample"}), dir_);
    ASSERT_TRUE(wait_for_ready());
    child.signal(SIGHUP);
    const ChildResult run = child.wait();
    EXPECT_EQ(run.status, 128 + SIGHUP) << run.err;
    EXPECT_EQ(listed(run.err, "wrote").size(), 5u) << run.err;
    expect_whole_outputs({"session.json", "stacks.folded", "capture.pycro", "report.html", "report.md"});
    EXPECT_EQ(temporaries(), std::vector<std::string>{});
}

TEST_F(OutputsTest, ASecondSignalKillsAtOnceAndLeavesNoPartialFileUnderAFinalName) {
    const std::string path = script("sleeper.py", sleeper);
    Child child(argv(path), dir_);
    ASSERT_TRUE(wait_for_ready());
    child.signal(SIGTERM);
    child.signal(SIGTERM);
    const ChildResult run = child.wait(std::chrono::seconds(30));
    EXPECT_EQ(run.status, 128 + SIGTERM) << run.err;
    expect_whole_outputs({});
}

TEST_F(OutputsTest, AScriptsOwnSigtermHandlerKeepsWorking) {
    const std::string path = script("handler.py", R"PY(import os, signal, sys, time
def on_term(signo, frame):
    print("handled", signo, flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
open(os.path.join(os.path.dirname(__file__), "ready"), "w").close()
while True:
    time.sleep(0.05)
)PY");
    Child child(argv(path), dir_);
    ASSERT_TRUE(wait_for_ready());
    child.signal(SIGTERM);
    const ChildResult run = child.wait();
    EXPECT_EQ(run.status, 0) << run.err;
    EXPECT_EQ(read_file(dir_ / ".stdout"), "handled 15\n");
    EXPECT_EQ(listed(run.err, "wrote").size(), 6u) << run.err;
    EXPECT_EQ(temporaries(), std::vector<std::string>{});
}

TEST_F(OutputsTest, TheNextRunRemovesTheTemporariesOfAKilledRun) {
    const std::string path = script("sleeper.py", sleeper);
    Child killed(argv(path), dir_);
    ASSERT_TRUE(wait_for_ready());
    killed.signal(SIGKILL);
    EXPECT_EQ(killed.wait().status, 128 + SIGKILL);
    // The manifest written at the start stays, saying the run never finished.
    const std::string manifest = read_file(out() / "manifest.json");
    EXPECT_NE(manifest.find("\"finished\":false"), std::string::npos) << manifest;
    EXPECT_NE(manifest.find("\"exit_status\":-1"), std::string::npos) << manifest;
    EXPECT_NE(manifest.find("sleeper.py"), std::string::npos) << manifest;
    const std::vector<std::string> left = temporaries();
    ASSERT_FALSE(left.empty());
    // A temporary of a live process (this test) is another run's: kept.
    const std::string live = "session.json.tmp." + std::to_string(::getpid());
    std::ofstream(out() / live) << "{";
    const std::string quick = script("quick.py", "print('ok')\n");
    const ChildResult run = Child(argv(quick), dir_).wait();
    EXPECT_EQ(run.status, 0) << run.err;
    EXPECT_EQ(temporaries(), std::vector<std::string>{live});
    const std::string finished = read_file(out() / "manifest.json");
    EXPECT_NE(finished.find("\"finished\":true"), std::string::npos) << finished;
    EXPECT_NE(finished.find("\"exit_status\":0"), std::string::npos) << finished;
    for (const auto& name : left) {
        EXPECT_NE(run.err.find("removed " + (out() / name).string()), std::string::npos) << run.err;
    }
}

TEST_F(OutputsTest, HostileNamesStayDistinctAndNeverReachTheTerminalRaw) {
    const std::string path = script("names.py", R"PY(import pycroscope
def make(name):
    def f():
        return 1
    f.__code__ = f.__code__.replace(co_name=name, co_qualname=name)
    return f
names = ["bad\udcff", "bad\udcfe", "nl\nname", "cr\rname", "esc\x1b[31mred", "bidi\u202eevil", "nul\x00name"]
for name in names:
    f = make(name)
    for _ in range(3):
        f()
with pycroscope.zone("zone\x00nul"):
    pass
pycroscope.mark("mark\udcff")
pycroscope.counter("counter\x00x", 1.0)
pycroscope.set_thread_name("thread\x1bname")
)PY");
    const ChildResult run = Child(argv(path, {"--top", "1000"}), dir_).wait();
    ASSERT_EQ(run.status, 0) << run.err;
    for (const char raw : {'\x1b', '\r', '\0'}) {
        EXPECT_EQ(run.err.find(raw), std::string::npos) << static_cast<int>(raw) << "\n" << run.err;
    }
    EXPECT_EQ(run.err.find("\xe2\x80\xae"), std::string::npos) << run.err; // U+202E
    EXPECT_NE(run.err.find("esc\\x1b[31mred"), std::string::npos) << run.err;
    EXPECT_NE(run.err.find("bidi\\u{202e}evil"), std::string::npos) << run.err;
    EXPECT_NE(run.err.find("nl\\nname"), std::string::npos) << run.err;

    const json::Value doc = json::parse_file((out() / "session.json").string());
    std::set<std::string> functions;
    const json::Value& list = doc.at("functions");
    for (std::size_t i = 0; i < list.size(); ++i) {
        functions.insert(list[i].at("name").as_string());
    }
    for (const char* name : {"bad\\udcff", "bad\\udcfe", "nl\nname", "cr\rname", "esc\x1b[31mred",
                             "bidi\xe2\x80\xae" "evil", "nul\\0name"}) {
        EXPECT_EQ(functions.count(name), 1u) << name;
    }
    EXPECT_EQ(functions.count("<unknown>"), 0u);
    const std::string session = read_file(out() / "session.json");
    EXPECT_NE(session.find("zone\\\\0nul"), std::string::npos);
    EXPECT_NE(session.find("counter\\\\0x"), std::string::npos);
}

#else

TEST(OutputsTest, SkippedWithoutTheCli) { GTEST_SKIP() << "PYCROSCOPE_CLI_PATH not set or not POSIX"; }

#endif

} // namespace
} // namespace cli_outputs_test
