// `pycroscope calibrate` runs and prints each of its sections; bad flags are
// usage errors (exit 2). `pycroscope profile --no-compensation` is accepted
// and its session.json says nothing was subtracted.

#include "python/python_environment.hpp"
#include "support/child_process.hpp"
#include "support/json.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#define PYCROSCOPE_CALIBRATE_CLI_POSIX 1
#endif

namespace calibrate_cli_test {
namespace {

#if defined(PYCROSCOPE_CLI_PATH) && defined(PYCROSCOPE_CALIBRATE_CLI_POSIX)

namespace fs = std::filesystem;
using pycroscope_test::ProcessResult;
using pycroscope_test::run_process;

const std::string cli = PYCROSCOPE_CLI_PATH;

class CalibrateCliTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("pycroscope_calibrate_cli_" + std::to_string(::getpid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    fs::path dir_;
};

TEST_F(CalibrateCliTest, PrintsClockBackendsAndAccuracy) {
    const ProcessResult run = run_process({cli, "calibrate", "--attempts", "1"}, dir_);
    ASSERT_EQ(run.status, 0) << run.err;
    for (const char* text : {"clock\n", "  source ", "  resolution ", "  cost per read ", "per-event overhead",
                             "ns/event", "accuracy check", "fixed_10us", "fixed_10ms", "fan_1ms", "compensated",
                             "largest error"}) {
        EXPECT_NE(run.out.find(text), std::string::npos) << text << " missing from:\n" << run.out;
    }
    for (const char* backend : {"eval_frame", "profile", "monitoring"}) {
#if PY_VERSION_HEX >= 0x030C0000
        const bool available = std::string(backend) != "eval_frame";
#else
        const bool available = std::string(backend) != "monitoring";
#endif
        const bool listed = run.out.find(std::string("\n  ") + backend + " ") != std::string::npos;
        EXPECT_EQ(listed, available) << backend << "\n" << run.out;
    }
    EXPECT_EQ(run.out.find("not measured"), std::string::npos) << run.out;
}

TEST_F(CalibrateCliTest, BackendOptionPicksTheCheckedBackend) {
    const ProcessResult run = run_process({cli, "calibrate", "--attempts=1", "--backend", "profile"}, dir_);
    ASSERT_EQ(run.status, 0) << run.err;
    EXPECT_NE(run.out.find("accuracy check (backend profile,"), std::string::npos) << run.out;
}

TEST_F(CalibrateCliTest, BadFlagsAreUsageErrors) {
    for (const std::vector<std::string>& argv : std::vector<std::vector<std::string>>{
             {cli, "calibrate", "--no-such-flag"},
             {cli, "calibrate", "--attempts"},
             {cli, "calibrate", "--attempts", "0"},
             {cli, "calibrate", "--attempts", "many"},
             {cli, "calibrate", "--backend", "turbo"},
             {cli, "calibrate", "extra"},
         }) {
        const ProcessResult run = run_process(argv, dir_);
        EXPECT_EQ(run.status, 2) << argv.back() << ": " << run.err;
        EXPECT_NE(run.err.find("usage: pycroscope calibrate"), std::string::npos) << run.err;
    }
    const ProcessResult help = run_process({cli, "calibrate", "--help"}, dir_);
    EXPECT_EQ(help.status, 0);
    EXPECT_NE(help.out.find("usage: pycroscope calibrate"), std::string::npos);
    const ProcessResult overview = run_process({cli, "--help"}, dir_);
    EXPECT_NE(overview.out.find("pycroscope calibrate"), std::string::npos);
    EXPECT_NE(overview.out.find("--no-compensation"), std::string::npos);
}

TEST_F(CalibrateCliTest, ProfileRecordsWhatWasSubtracted) {
    std::ofstream(dir_ / "work.py") << "def f(n):\n    return n\nfor i in range(50):\n    f(i)\n";
    for (const bool off : {false, true}) {
        const fs::path out = dir_ / (off ? "off" : "on");
        std::vector<std::string> argv{cli, "profile", "--minimal", "--top", "0", "--output-dir", out.string()};
        if (off) {
            argv.push_back("--no-compensation");
        }
        argv.push_back("work.py");
        const ProcessResult run = run_process(argv, dir_);
        ASSERT_EQ(run.status, 0) << run.err;
        const json::Value doc = json::parse_file((out / "session.json").string());
        const json::Value& section = doc.at("overhead_compensation");
        if (off) {
            EXPECT_FALSE(section.at("enabled").as_bool());
            EXPECT_EQ(section.at("reason").as_string(), "turned off");
        } else {
            EXPECT_TRUE(section.contains("backend"));
            EXPECT_GE(section.at("ns_per_event").as_number(), 0.0);
            if (section.at("enabled").as_bool()) {
                EXPECT_GE(section.at("events").as_uint(), 100u); // f's 50 calls and returns at least
            }
        }
    }
}

#endif

} // namespace
} // namespace calibrate_cli_test
