// `pycroscope profile` with the memory collector (hooks installed between
// Py_PreInitialize and Py_Initialize) against tracemalloc started at
// interpreter start (PYTHONTRACEMALLOC=1) running the same script under the
// interpreter the build links: the peak within 5%, the same top lines with
// live sizes within 2%; a planted leak reported at its line and a workload
// without leaks reporting none.

#include "support/json.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace memory_cli_test {
namespace {

namespace fs = std::filesystem;

#if defined(PYCROSCOPE_CLI_PATH) && defined(PYCROSCOPE_PYTHON_EXECUTABLE)

std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

class MemoryCli : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               std::string("pycroscope_memory_cli_").append(std::to_string(::testing::UnitTest::GetInstance()->random_seed()))
                   .append("_")
                   .append(::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override {
        if (!HasFailure()) {
            fs::remove_all(dir_);
        }
    }

    fs::path write_script(const std::string& name, const std::string& text) {
        const fs::path path = dir_ / name;
        std::ofstream(path) << text;
        return path;
    }

    // Runs command in dir_ with env prefix; returns the exit status, stdout in out.
    int run(const std::string& env, const std::string& command, std::string& out) {
        const fs::path out_path = dir_ / ".out";
        // LeakSanitizer would report libpython's never-freed allocations.
        const std::string line = std::string("cd '").append(dir_.string()).append("' && ASAN_OPTIONS=detect_leaks=0 ")
                                     .append(env)
                                     .append(" ")
                                     .append(command)
                                     .append(" > '")
                                     .append(out_path.string())
                                     .append("' 2> '")
                                     .append((dir_ / ".err").string())
                                     .append("'");
        const int status = std::system(line.c_str());
        out = read_text(out_path);
        return status;
    }

    json::Value profile(const fs::path& script, const std::string& options = "") {
        std::string out;
        const int status = run("", std::string(PYCROSCOPE_CLI_PATH)
                                       .append(" profile --top 0 --output-dir out ")
                                       .append(options)
                                       .append(" ")
                                       .append(script.string()),
                               out);
        EXPECT_EQ(status, 0) << read_text(dir_ / ".err");
        return json::parse_file((dir_ / "out" / "session.json").string());
    }

    fs::path dir_;
};

// Lines 6 and 18 keep their blocks alive to the end; line 16 makes the peak.
const char* const workload = "import tracemalloc\n"
                             "keep = []\n"
                             "def build(n):\n"
                             "    out = []\n"
                             "    for i in range(n):\n"
                             "        out.append(str(i) * 10)\n"
                             "    return out\n"
                             "def churn(n):\n"
                             "    total = 0\n"
                             "    for i in range(n):\n"
                             "        tmp = [i] * 50\n"
                             "        total += len(tmp)\n"
                             "    return total\n"
                             "keep.append(build(300000))\n"
                             "churn(100000)\n"
                             "blob = bytearray(20_000_000)\n"
                             "del blob\n"
                             "keep.append([bytes(100) for _ in range(100000)])\n"
                             "if tracemalloc.is_tracing():\n"
                             "    print('PEAK', tracemalloc.get_traced_memory()[1])\n"
                             "    for stat in tracemalloc.take_snapshot().statistics('lineno')[:2]:\n"
                             "        frame = stat.traceback[0]\n"
                             "        print('TOP', frame.lineno, stat.size, stat.count)\n";

TEST_F(MemoryCli, PeakAndTopLinesMatchTracemalloc) {
    const fs::path script = write_script("workload.py", workload);
    std::string out;
    ASSERT_EQ(run("PYTHONTRACEMALLOC=1", std::string(PYCROSCOPE_PYTHON_EXECUTABLE).append(" ").append(script.string()),
                  out),
              0);
    std::istringstream lines(out);
    std::string word;
    double tracemalloc_peak = 0;
    std::vector<std::pair<std::uint32_t, double>> tracemalloc_top; // line, bytes
    while (lines >> word) {
        if (word == "PEAK") {
            lines >> tracemalloc_peak;
        } else if (word == "TOP") {
            std::uint32_t line = 0;
            double size = 0, count = 0;
            lines >> line >> size >> count;
            tracemalloc_top.emplace_back(line, size);
        }
    }
    ASSERT_GT(tracemalloc_peak, 20e6) << out;
    ASSERT_EQ(tracemalloc_top.size(), 2u) << out;

    const json::Value session = profile(script, "--memory-sample 0"); // every allocation: exact
    const json::Value& memory = session.at("memory");
    EXPECT_EQ(memory.at("mode").as_string(), "full");
    const double peak = memory.at("peak_bytes").as_number();
    EXPECT_NEAR(peak / tracemalloc_peak, 1.0, 0.05) << "pycroscope " << peak << " tracemalloc " << tracemalloc_peak;
    // The peak is reached at the 20 MB bytearray of line 16.
    const json::Value& stack = memory.at("peak_stack");
    ASSERT_GT(stack.size(), 0u);
    EXPECT_EQ(stack.items().back().at("line").as_number(), 16);

    // Same top lines, in the same order, with the same live sizes (2%).
    std::vector<std::pair<std::uint32_t, double>> ours;
    for (const auto& site : memory.at("live_at_stop").items()) {
        if (site.at("file").as_string() == script.string()) {
            ours.emplace_back(static_cast<std::uint32_t>(site.at("line").as_number()),
                              site.at("bytes").as_number());
        }
    }
    ASSERT_GE(ours.size(), 2u);
    for (std::size_t i = 0; i < 2; ++i) {
        EXPECT_EQ(ours[i].first, tracemalloc_top[i].first) << "rank " << i;
        EXPECT_NEAR(ours[i].second / tracemalloc_top[i].second, 1.0, 0.02) << "line " << ours[i].first;
    }
    // Allocation totals: line 6 allocated at least what it keeps.
    bool found = false;
    for (const auto& site : memory.at("sites").items()) {
        if (site.at("file").as_string() == script.string() && site.at("line").as_number() == 6) {
            found = true;
            EXPECT_GE(site.at("bytes").as_number(), site.at("live_bytes").as_number());
            EXPECT_EQ(site.at("function").as_string(), "build");
        }
    }
    EXPECT_TRUE(found);
    // memory.folded weighs line 6 under build.
    const std::string folded = read_text(dir_ / "out" / "memory.folded");
    EXPECT_NE(folded.find(";build;workload.py:6 "), std::string::npos);
}

// LEAK marks the leaking line (line 11).
const char* const leaking = "import time\n"
                            "leak = []\n"
                            "def work(i):\n"
                            "    tmp = [i] * 100\n"
                            "    return sum(tmp)\n"
                            "end = time.perf_counter() + 1.5\n"
                            "n = 0\n"
                            "while time.perf_counter() < end:\n"
                            "    for j in range(200):\n"
                            "        work(j)\n"
                            "    leak.append(bytearray(200))  # LEAK\n"
                            "    n += 1\n";

const char* const not_leaking = "import time\n"
                                "keep = None\n"
                                "def work(i):\n"
                                "    tmp = [i] * 100\n"
                                "    return sum(tmp)\n"
                                "end = time.perf_counter() + 1.5\n"
                                "n = 0\n"
                                "while time.perf_counter() < end:\n"
                                "    for j in range(200):\n"
                                "        work(j)\n"
                                "    keep = bytearray(200)\n"
                                "    n += 1\n";

// The memory_growth recommendations of a session: "file:line".
std::vector<std::string> growth_recommendations(const json::Value& session) {
    std::vector<std::string> out;
    for (const auto& r : session.at("recommendations").items()) {
        if (r.at("kind").as_string() == "memory_growth") {
            out.push_back(r.at("file").as_string() + ":" + std::to_string(r.at("line").as_uint()));
        }
    }
    return out;
}

TEST_F(MemoryCli, PlantedLeakIsReportedAtItsLine) {
    const fs::path script = write_script("leaky.py", leaking);
    const json::Value session = profile(script, "--memory-sample 0");
    const json::Value memory = session.at("memory");
    const json::Value& leaks = memory.at("leaks");
    ASSERT_GE(leaks.size(), 1u) << "growth: " << memory.at("growth").size();
    bool at_line = false;
    for (const auto& leak : leaks.items()) {
        const bool ours = leak.at("file").as_string() == script.string() && leak.at("line").as_number() == 11;
        at_line = at_line || ours;
        EXPECT_TRUE(ours) << "unexpected leak at " << leak.at("file").as_string() << ":"
                          << leak.at("line").as_number();
        if (ours) {
            EXPECT_GT(leak.at("bytes").as_number(), 16 * 1024);
            EXPECT_GT(leak.at("count").as_number(), 50);
        }
    }
    EXPECT_TRUE(at_line);

    // The leak is a recommendation, and the capture replayed offline gives it again.
    const std::vector<std::string> live = growth_recommendations(session);
    EXPECT_EQ(live, std::vector<std::string>{script.string() + ":11"});
    std::string out;
    EXPECT_EQ(run("", std::string(PYCROSCOPE_CLI_PATH) + " report --sinks json --output-dir replayed out", out), 0)
        << read_text(dir_ / ".err");
    const json::Value replayed = json::parse_file((dir_ / "replayed" / "session.json").string());
    EXPECT_EQ(growth_recommendations(replayed), live);
    EXPECT_EQ(replayed.at("health").at("penalties").at("memory").number_text(),
              session.at("health").at("penalties").at("memory").number_text());
}

TEST_F(MemoryCli, WorkloadWithoutLeaksReportsNone) {
    const fs::path script = write_script("clean.py", not_leaking);
    const json::Value memory = profile(script).at("memory");
    const json::Value& leaks = memory.at("leaks");
    for (const auto& leak : leaks.items()) {
        ADD_FAILURE() << "leak reported at " << leak.at("file").as_string() << ":" << leak.at("line").as_number();
    }
    // The raw list of what is live at stop is there, leak or not.
    EXPECT_GT(memory.at("live_at_stop").size(), 0u);
}

TEST_F(MemoryCli, NoMemoryTurnsTheCollectorOff) {
    const fs::path script = write_script("small.py", "x = [1] * 1000\n");
    const json::Value session = profile(script, "--no-memory");
    EXPECT_EQ(session.find("memory"), nullptr);
    EXPECT_FALSE(fs::exists(dir_ / "out" / "memory.folded"));
}

TEST_F(MemoryCli, SamplingModeEstimatesThePeak) {
    const fs::path script = write_script("workload.py", workload);
    const json::Value full = profile(script, "--memory-sample 0").at("memory");
    EXPECT_EQ(full.at("sampling").at("mode").as_string(), "full");
    fs::remove_all(dir_ / "out");
    const json::Value sampled = profile(script).at("memory"); // the default mode samples every 64 KiB
    EXPECT_EQ(sampled.at("sampling").at("mode").as_string(), "sampled");
    EXPECT_EQ(sampled.at("sampling").at("sample_bytes").as_number(), 65536);
    EXPECT_EQ(sampled.at("sampling").at("samples_not_taken").as_number(), 0);
    EXPECT_EQ(sampled.at("unknown_frees").as_number(), 0); // every recorded free is a sampled block's
    // ~500 samples over the peak's 50 MB: a 15% band is > 4 sigma.
    EXPECT_NEAR(sampled.at("peak_bytes").as_number() / full.at("peak_bytes").as_number(), 1.0, 0.15);
}

#endif

} // namespace
} // namespace memory_cli_test
