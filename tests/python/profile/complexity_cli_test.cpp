// `pycroscope profile --complexity FUNC`: every call of FUNC is timed against
// the size of its first sized argument; session.json gets a "complexity"
// section naming the model and the terminal summary a line. The scripts keep
// their sizes small (the runs take well under a second each); a misnamed
// run on a noisy machine is profiled once more before the test fails.

#include "support/sanitizers.hpp"
#include "sinks/export_tools.hpp"
#include "support/json.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#if defined(PYCROSCOPE_CLI_PATH) && (defined(__unix__) || defined(__APPLE__))

namespace complexity_cli_test {
namespace {

namespace fs = std::filesystem;
using export_test::quote;
using export_test::run;

// Counter.pairs() is quadratic in len(items); it is called at sizes 16 .. 256, three per octave.
const char* const quadratic_script = R"PY(
class Counter:
    def pairs(self, items):
        count = 0
        for a in items:
            for b in items:
                if a < b:
                    count += 1
        return count

def pairs(items):
    return Counter().pairs(items)

# Every size once per round: a slow spell of the machine hits different sizes
# in each round, and the fit keeps each size's fastest call.
total = 0
for repeat in range(5):
    for k in range(13):
        total += pairs(list(range(round(16 * 2 ** (k / 3)))))
print(total)
)PY";

class ComplexityCli : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("pycroscope_complexity_cli_" + std::to_string(sink_test::current_pid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
        std::ofstream(dir_ / "work.py") << quadratic_script;
    }
    void TearDown() override {
        std::error_code ignored;
        fs::remove_all(dir_, ignored);
    }
    export_test::CommandResult profile(const std::string& options) {
        return run("cd " + quote(dir_.string()) + " && " + quote(PYCROSCOPE_CLI_PATH) +
                   " profile --output-dir out --top 0 " + options + " work.py 2>&1");
    }
    json::Value complexity() const { return json::parse_file((dir_ / "out" / "session.json").string()).at("complexity"); }

    fs::path dir_;
};

TEST_F(ComplexityCli, AQuadraticFunctionIsNamedQuadraticInSessionJsonAndTheSummary) {
    if (pycroscope_test::under_thread_sanitizer) {
        GTEST_SKIP() << "timing-dependent: see tests/support/sanitizers.hpp";
    }
    // Without the trace function (exceptions) the calls stay short: a call of a
    // few milliseconds is rarely preempted on a loaded machine.
    for (const char* options : {"--no-exceptions --complexity Counter.pairs",
                                "--minimal --complexity __main__:Counter.pairs"}) {
        auto result = profile(options);
        ASSERT_EQ(result.status, 0) << result.output;
        if (complexity().at("best").is_null() || complexity().at("best").as_string() != "O(n^2)") {
            result = profile(options); // one more chance on a noisy machine
            ASSERT_EQ(result.status, 0) << result.output;
        }
        const json::Value section = complexity();
        EXPECT_EQ(section.at("function").as_string(), std::string(options).substr(std::string(options).rfind(' ') + 1));
        ASSERT_TRUE(section.at("best").is_string()) << result.output;
        EXPECT_EQ(section.at("best").as_string(), "O(n^2)") << options;
        EXPECT_EQ(section.at("calls").as_uint(), 65u) << options;
        EXPECT_EQ(section.at("unsized_calls").as_uint(), 0u);
        const json::Value& points = section.at("points");
        ASSERT_EQ(points.size(), 13u);
        EXPECT_EQ(points[0][0].as_number(), 16.0);
        EXPECT_EQ(points[12][0].as_number(), 256.0);
        for (const json::Value& point : points.items()) {
            EXPECT_GT(point[1].as_number(), 0.0);
        }
        ASSERT_EQ(section.at("models").size(), 7u);
        EXPECT_EQ(section.at("models")[4].at("name").as_string(), "O(n^2)");
        EXPECT_GT(section.at("r2").as_number(), 0.5);
        EXPECT_NE(result.output.find("complexity of " + section.at("function").as_string() + ": O(n^2)"),
                  std::string::npos)
            << result.output;
    }
}

TEST_F(ComplexityCli, ALenBeatsAnEarlierIntAndAnIntSizesWhenNothingHasALen) {
    std::ofstream(dir_ / "sized.py") << R"PY(
def scan(k, items):
    return sum(1 for x in items if x % k == 0)

def count(n, flag):
    return n

for size in (10, 20, 40, 80, 160):
    scan(7, list(range(size)))
    count(size * 3, True)
)PY";
    for (const char* function : {"scan", "count"}) {
        const auto result = run("cd " + quote(dir_.string()) + " && " + quote(PYCROSCOPE_CLI_PATH) +
                                " profile --output-dir out --top 0 --minimal --complexity " + function +
                                " sized.py 2>&1");
        ASSERT_EQ(result.status, 0) << result.output;
        const json::Value section = complexity();
        EXPECT_EQ(section.at("calls").as_uint(), 5u);
        const json::Value& points = section.at("points");
        ASSERT_EQ(points.size(), 5u) << function;
        const double scale = std::string(function) == "scan" ? 1 : 3;
        for (std::size_t i = 0; i < 5; ++i) {
            EXPECT_EQ(points[i][0].as_number(), scale * 10 * static_cast<double>(1 << i)) << function;
        }
        // The capture replayed offline gives the same section: the same sizes and times.
        const auto replay = run("cd " + quote(dir_.string()) + " && " + quote(PYCROSCOPE_CLI_PATH) +
                                " report --sinks json --output-dir replayed out 2>&1");
        ASSERT_EQ(replay.status, 0) << replay.output;
        const json::Value offline =
            json::parse_file((dir_ / "replayed" / "session.json").string()).at("complexity");
        EXPECT_EQ(offline.at("function").as_string(), function);
        EXPECT_EQ(offline.at("calls").as_uint(), 5u);
        ASSERT_EQ(offline.at("points").size(), 5u);
        for (std::size_t i = 0; i < 5; ++i) {
            EXPECT_EQ(offline.at("points")[i][0].number_text(), points[i][0].number_text()) << function;
            EXPECT_EQ(offline.at("points")[i][1].number_text(), points[i][1].number_text()) << function;
        }
    }
}

TEST_F(ComplexityCli, AFunctionNeverCalledGivesAnInsufficientDataSection) {
    const auto result = profile("--complexity missing");
    ASSERT_EQ(result.status, 0) << result.output;
    const json::Value section = complexity();
    EXPECT_TRUE(section.at("best").is_null());
    EXPECT_EQ(section.at("calls").as_uint(), 0u);
    EXPECT_EQ(section.at("error").as_string().rfind("insufficient data", 0), 0u);
    EXPECT_NE(result.output.find("complexity of missing: not fitted, the function was never called"),
              std::string::npos)
        << result.output;
}

TEST_F(ComplexityCli, ComplexityWithSamplingIsAUsageError) {
    const auto result = profile("--sample --complexity pairs");
    EXPECT_EQ(result.status, 2) << result.output;
    EXPECT_NE(result.output.find("--complexity times every call"), std::string::npos) << result.output;
}

} // namespace
} // namespace complexity_cli_test

#endif
