// `pycroscope report` and `pycroscope export` replay the capture of a real
// `pycroscope profile` run: the same folded stacks and function totals as
// the live run wrote, with no Python and no re-run; a cut capture is
// replayed up to its last whole chunk; a foreign file or a missing folder is
// one error line and exit status 2.
//
// CMake passes the built CLI as PYCROSCOPE_CLI_PATH.

#include "support/child_process.hpp"
#include "support/json.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
extern char** environ;
#define PYCROSCOPE_REPLAY_CLI_TEST_POSIX 1
#endif

namespace replay_cli_test {
namespace {

namespace fs = std::filesystem;

#if defined(PYCROSCOPE_CLI_PATH) && defined(PYCROSCOPE_REPLAY_CLI_TEST_POSIX)

const std::string cli = PYCROSCOPE_CLI_PATH;

using pycroscope_test::ProcessResult;
using pycroscope_test::read_file;
using pycroscope_test::run_process;

fs::path temp_root() { return fs::temp_directory_path() / ("pycroscope_replay_cli_test_" + std::to_string(::getpid())); }

class RemoveTempRoot : public ::testing::Environment {
public:
    void TearDown() override {
        std::error_code ignored;
        fs::remove_all(temp_root(), ignored);
    }
};
::testing::Environment* const remove_temp_root = ::testing::AddGlobalTestEnvironment(new RemoveTempRoot);

class ReplayCliTest : public ::testing::Test {
protected:
    void SetUp() override {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        dir_ = temp_root() / info->name();
        fs::remove_all(dir_);
        fs::create_directories(dir_ / "scripts");
    }

    // Profiles a script of many calls into out/ with a capture.
    void profile_with_capture() {
        std::ofstream(dir_ / "scripts" / "work.py", std::ios::binary) << R"PY(
def leaf(n):
    return n % 7

def middle(n):
    return sum(leaf(i) for i in range(n))

def main():
    total = 0
    for n in range(400):
        total += middle(n % 50)
    return total

print(main())
)PY";
        // Overhead-compensated (the default): the calibration travels in the capture.
        const ProcessResult run = pycroscope({"profile", "--output-dir", (dir_ / "out").string(), "--sinks",
                                              "json,folded,capture", "scripts/work.py"});
        ASSERT_EQ(run.status, 0) << run.err;
        ASSERT_TRUE(fs::exists(dir_ / "out" / "capture.pycro")) << run.err;
    }

    ProcessResult pycroscope(const std::vector<std::string>& args) {
        std::vector<std::string> argv{cli};
        argv.insert(argv.end(), args.begin(), args.end());
        return run_process(argv, dir_);
    }

    fs::path dir_;
};

using FunctionTotals = std::map<std::string, std::tuple<std::int64_t, std::int64_t, std::int64_t>>;

// name -> (calls, self_ns, inclusive_ns) of session.json's "functions".
FunctionTotals function_totals(const fs::path& session) {
    const json::Value doc = json::parse_file(session.string());
    const json::Value& functions = doc.at("functions");
    FunctionTotals totals;
    for (std::size_t i = 0; i < functions.size(); ++i) {
        const json::Value& f = functions[i];
        totals[f.at("name").as_string() + " " + f.at("file").as_string() + ":" +
               std::to_string(f.at("line").as_int())] =
            std::make_tuple(f.at("calls").as_int(), f.at("self_ns").as_int(), f.at("inclusive_ns").as_int());
    }
    return totals;
}

std::size_t lines_of(const std::string& text) { return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')); }

TEST_F(ReplayCliTest, ReportReplaysTheCaptureIntoTheSameStacksAndFunctions) {
    profile_with_capture();
    const ProcessResult report = pycroscope({"report", "--output-dir", (dir_ / "out2").string(), "out"});
    ASSERT_EQ(report.status, 0) << report.err;
    EXPECT_EQ(report.out.find("cut"), std::string::npos) << report.out;
    const std::string live_folded = read_file(dir_ / "out" / "stacks.folded");
    ASSERT_FALSE(live_folded.empty());
    EXPECT_EQ(read_file(dir_ / "out2" / "stacks.folded"), live_folded);

    const FunctionTotals live = function_totals(dir_ / "out" / "session.json");
    const FunctionTotals replayed = function_totals(dir_ / "out2" / "session.json");
    ASSERT_GE(live.size(), 3u);
    EXPECT_EQ(replayed, live);
    bool found_leaf = false;
    for (const auto& entry : replayed) {
        if (entry.first.rfind("leaf ", 0) == 0) {
            found_leaf = true;
            EXPECT_EQ(std::get<0>(entry.second), 9800); // sum of n % 50 over 400 runs
        }
    }
    EXPECT_TRUE(found_leaf);
    const json::Value doc = json::parse_file((dir_ / "out2" / "session.json").string());
    const json::Value live_doc = json::parse_file((dir_ / "out" / "session.json").string());
    const json::Value& compensation = doc.at("overhead_compensation");
    const json::Value& live_compensation = live_doc.at("overhead_compensation");
    if (live_compensation.at("enabled").as_bool()) { // a bias above zero was measured
        EXPECT_TRUE(compensation.at("enabled").as_bool());
        for (const char* field : {"ns_per_event", "untraced_ns_per_call", "traced_ns_per_call"}) {
            EXPECT_EQ(compensation.at(field).as_number(), live_compensation.at(field).as_number()) << field;
        }
        EXPECT_EQ(compensation.at("backend").as_string(), live_compensation.at("backend").as_string());
        EXPECT_EQ(compensation.at("events").as_int(), live_compensation.at("events").as_int());
        EXPECT_GT(compensation.at("events").as_int(), 9800);
    }
    EXPECT_GT(doc.at("profile").at("functions").size(), 0u);
    EXPECT_GT(doc.at("functions")[0].at("callers").size() + doc.at("functions")[0].at("callees").size(), 0u);
    for (const char* file : {"report.html", "report.md"}) {
        EXPECT_GT(fs::file_size(dir_ / "out2" / file), 0u) << file;
        EXPECT_NE(report.out.find(file), std::string::npos) << report.out;
    }
    EXPECT_FALSE(fs::exists(dir_ / "out2" / "trace.json")); // only with --sinks chrome
}

TEST_F(ReplayCliTest, ReportWritesTheTraceWhenChromeIsAsked) {
    profile_with_capture();
    const ProcessResult report =
        pycroscope({"report", "--output-dir", (dir_ / "out2").string(), "--sinks", "json,chrome", "out/capture.pycro"});
    ASSERT_EQ(report.status, 0) << report.err;
    const json::Value trace = json::parse_file((dir_ / "out2" / "trace.json").string());
    EXPECT_GT(trace.at("traceEvents").size(), 100u);
    EXPECT_FALSE(fs::exists(dir_ / "out2" / "stacks.folded"));
}

TEST_F(ReplayCliTest, ExportWritesEachFormatNextToTheCapture) {
    profile_with_capture();
    const ProcessResult callgrind = pycroscope({"export", "--format", "callgrind", "out"});
    ASSERT_EQ(callgrind.status, 0) << callgrind.err;
    const std::string text = read_file(dir_ / "out" / "callgrind.out");
    EXPECT_NE(text.find("fn="), std::string::npos);
    EXPECT_NE(text.find("leaf"), std::string::npos);

    const ProcessResult speedscope =
        pycroscope({"export", "--format", "speedscope", "-o", (dir_ / "elsewhere.json").string(), "out"});
    ASSERT_EQ(speedscope.status, 0) << speedscope.err;
    const json::Value doc = json::parse_file((dir_ / "elsewhere.json").string());
    EXPECT_GT(doc.at("profiles").size(), 0u);
    EXPECT_FALSE(fs::exists(dir_ / "out" / "profile.speedscope.json"));
}

TEST_F(ReplayCliTest, CutCaptureIsReportedAsCutAndStillWritten) {
    profile_with_capture();
    fs::create_directories(dir_ / "cut");
    const std::string bytes = read_file(dir_ / "out" / "capture.pycro");
    // A short run is one chunk and the trailer: cutting into the trailer keeps that chunk whole.
    const std::size_t cut = bytes.size() - 8;
    std::ofstream(dir_ / "cut" / "capture.pycro", std::ios::binary) << bytes.substr(0, cut);
    const ProcessResult report = pycroscope({"report", "cut"});
    ASSERT_EQ(report.status, 0) << report.err;
    EXPECT_NE(report.out.find("cut at byte"), std::string::npos) << report.out;
    const json::Value doc = json::parse_file((dir_ / "cut" / "session.json").string());
    EXPECT_GT(doc.at("functions").size(), 0u);
    EXPECT_TRUE(fs::exists(dir_ / "cut" / "stacks.folded"));
    EXPECT_EQ(read_file(dir_ / "cut" / "capture.pycro").size(), cut); // never rewritten
}

TEST_F(ReplayCliTest, ForeignFileAndMissingFolderExit2WithOneErrorLine) {
    fs::create_directories(dir_ / "foreign");
    std::ofstream(dir_ / "foreign" / "capture.pycro", std::ios::binary) << "not a capture at all\n";
    fs::create_directories(dir_ / "empty");
    const std::vector<std::vector<std::string>> commands = {
        {"report", "foreign"},
        {"report", "--output-dir", (dir_ / "new").string(), "foreign/capture.pycro"},
        {"export", "--format", "pprof", "foreign"},
        {"report", "missing"},
        {"export", "--format", "callgrind", "missing/capture.pycro"},
        {"report", "empty"},
        {"export", "--format", "nonsense", "foreign"},
    };
    for (const auto& args : commands) {
        const ProcessResult run = pycroscope(args);
        EXPECT_EQ(run.status, 2) << args[1] << " " << args.back() << ": " << run.out;
        EXPECT_EQ(lines_of(run.err), 1u) << run.err;
        EXPECT_EQ(run.err.rfind("pycroscope: ", 0), 0u) << run.err;
    }
    EXPECT_EQ(std::distance(fs::directory_iterator(dir_ / "foreign"), fs::directory_iterator()), 1);
    EXPECT_TRUE(fs::is_empty(dir_ / "empty"));
    EXPECT_FALSE(fs::exists(dir_ / "new"));
    EXPECT_FALSE(fs::exists(dir_ / "missing"));
}

TEST_F(ReplayCliTest, HelpListsTheCommands) {
    const ProcessResult help = pycroscope({"--help"});
    EXPECT_EQ(help.status, 0);
    for (const char* command : {"pycroscope profile", "pycroscope report", "pycroscope export"}) {
        EXPECT_NE(help.out.find(command), std::string::npos) << command;
    }
    const ProcessResult report = pycroscope({"report", "--help"});
    EXPECT_EQ(report.status, 0);
    EXPECT_NE(report.out.find("--output-dir"), std::string::npos) << report.out;
    const ProcessResult exporter = pycroscope({"export", "--help"});
    EXPECT_EQ(exporter.status, 0);
    EXPECT_NE(exporter.out.find("callgrind"), std::string::npos) << exporter.out;
}

#else

TEST(ReplayCliTest, SkippedWithoutTheCli) { GTEST_SKIP() << "the pycroscope CLI is not built"; }

#endif

} // namespace
} // namespace replay_cli_test
