// The store's commands run as a user runs them: `pycroscope profile` writes a
// manifest, `--runs N` a session of N fresh runs, `compare` finds a stage
// made 10% slower (exit 1, that stage's function first) and stays quiet on
// identical scripts (exit 0), `list`/`show`/`history` read the store,
// `export-session`/`import-session` move a session, and bad input is a
// clear message with exit status 2.
//
// CMake passes the built CLI as PYCROSCOPE_CLI_PATH.

#include "store/store_test_helpers.hpp"
#include "support/child_process.hpp"
#include "support/json.hpp"

#include <pycroscope/store/manifest.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
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
#define PYCROSCOPE_STORE_CLI_POSIX 1
#endif

namespace store_cli_test {
namespace {

namespace fs = std::filesystem;

#if defined(PYCROSCOPE_CLI_PATH) && defined(PYCROSCOPE_STORE_CLI_POSIX)

const std::string cli = PYCROSCOPE_CLI_PATH;
const std::string workload = std::string(PYCROSCOPE_TESTS_DIR) + "/../benchmarks/python/workloads/three_stages.py";

using Result = pycroscope_test::ProcessResult;
using pycroscope_test::read_file;

// Runs the CLI with args in cwd (stdin /dev/null); killed after timeout.
Result run(const std::vector<std::string>& args, const fs::path& cwd,
           std::chrono::seconds timeout = std::chrono::seconds(180)) {
    std::vector<std::string> argv{cli};
    argv.insert(argv.end(), args.begin(), args.end());
    return pycroscope_test::run_process(argv, cwd, timeout);
}

fs::path temp_root() { return fs::temp_directory_path() / ("pycroscope_store_cli_" + std::to_string(::getpid())); }

class RemoveStoreTempRoot : public ::testing::Environment {
public:
    void TearDown() override {
        std::error_code ignored;
        fs::remove_all(temp_root(), ignored);
    }
};
::testing::Environment* const remove_store_temp_root = ::testing::AddGlobalTestEnvironment(new RemoveStoreTempRoot);

class StoreCli : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = temp_root() / ::testing::UnitTest::GetInstance()->current_test_info()->name();
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    // A session of `runs` runs of the workload in dir_/name.
    void profile_runs(const std::string& name, int runs, bool slower) {
        // --full: every allocation recorded, so allocated bytes are exact (the default samples them).
        std::vector<std::string> args{"profile", "--runs", std::to_string(runs), "--output-dir", (dir_ / name).string(),
                                      "--full", "--no-system", "--sinks", "json", workload, "--scale", "0.4"};
        if (slower) {
            args.push_back("--slower");
        }
        const Result r = run(args, dir_);
        ASSERT_EQ(r.status, 0) << r.err;
    }
    fs::path dir_;
};

TEST_F(StoreCli, ProfileWritesAManifestThatListAndShowRead) {
    std::ofstream(dir_ / "tiny.py") << "import sys\ndef work():\n    return sum(range(1000))\nwork()\nsys.exit(3)\n";
    const Result r = run({"profile", "--no-system", "--sinks", "json", "tiny.py", "a b", "--flag"}, dir_);
    ASSERT_EQ(r.status, 3) << r.err;
    const fs::path store = dir_ / "profiling_results";
    std::vector<fs::path> sessions;
    for (const auto& e : fs::directory_iterator(store)) {
        sessions.push_back(e.path());
    }
    ASSERT_EQ(sessions.size(), 1u);
    const json::Value m = json::parse_file((sessions[0] / "manifest.json").string());
    EXPECT_EQ(m.at("format").as_string(), "pycroscope-manifest");
    EXPECT_EQ(fs::path(m.at("script").as_string()), fs::weakly_canonical(dir_ / "tiny.py"));
    ASSERT_EQ(m.at("args").size(), 2u);
    EXPECT_EQ(m.at("args")[0].as_string(), "a b");
    EXPECT_EQ(m.at("args")[1].as_string(), "--flag");
    EXPECT_EQ(fs::path(m.at("cwd").as_string()), fs::weakly_canonical(dir_));
    EXPECT_EQ(m.at("exit_status").as_int(), 3);
    EXPECT_EQ(m.at("runs").as_int(), 1);
    EXPECT_GT(m.at("duration_ns").as_int(), 0);
    EXPECT_EQ(m.at("python_version").as_string().substr(0, 2), "3.");
    ASSERT_EQ(m.at("options").size(), 3u);
    EXPECT_EQ(m.at("options")[0].as_string(), "--no-system");

    const Result list = run({"list"}, dir_);
    ASSERT_EQ(list.status, 0) << list.err;
    EXPECT_NE(list.out.find(sessions[0].filename().string()), std::string::npos) << list.out;
    EXPECT_NE(list.out.find("tiny.py a b --flag"), std::string::npos) << list.out;
    const Result filtered = run({"list", "--script", "other.py"}, dir_);
    EXPECT_EQ(filtered.status, 0);
    EXPECT_EQ(filtered.out, "");

    const Result show = run({"show", "--top", "1000", sessions[0].filename().string()}, dir_);
    ASSERT_EQ(show.status, 0) << show.err;
    EXPECT_NE(show.out.find("exit status 3"), std::string::npos) << show.out;
    EXPECT_NE(show.out.find("work"), std::string::npos) << show.out;
}

TEST_F(StoreCli, RepeatedRunsFindATenPercentSlowerStageAndStayQuietOnIdenticalScripts) {
    constexpr int runs = 5;
    profile_runs("base", runs, false);
    profile_runs("same", runs, false);
    profile_runs("slow", runs, true);

    // The session: run-1..run-5 and runs.json with every run's functions.
    for (int k = 1; k <= runs; ++k) {
        EXPECT_TRUE(fs::exists(dir_ / "slow" / ("run-" + std::to_string(k)) / "session.json"));
    }
    const json::Value runs_doc = json::parse_file((dir_ / "slow" / "runs.json").string());
    ASSERT_EQ(runs_doc.at("runs").size(), static_cast<std::size_t>(runs));
    const json::Value manifest = json::parse_file((dir_ / "slow" / "manifest.json").string());
    EXPECT_EQ(manifest.at("runs").as_int(), runs);

    const Result slow = run({"compare", "--json", "base", "slow"}, dir_);
    EXPECT_EQ(slow.status, 1) << slow.out << slow.err;
    const json::Value doc = json::parse(slow.out);
    ASSERT_GE(doc.at("regressions").size(), 1u) << slow.out;
    // Times move with the machine's load between sessions (these run beside other
    // tests); the stage's allocated bytes do not, so they carry the assertion.
    const json::Value* stage = nullptr;
    for (const json::Value& r : doc.at("regressions").items()) {
        const std::string& metric = r.at("metric").as_string();
        if ((metric == "allocated_bytes" || metric == "calls") && r.at("significant").as_bool()) {
            stage = &r;
            break;
        }
    }
    ASSERT_NE(stage, nullptr) << slow.out;
    EXPECT_EQ(stage->at("function").as_string(), "stage_transform") << slow.out;
    EXPECT_GT(stage->at("change").as_number(), 0.05) << slow.out;
    EXPECT_LT(stage->at("p_value").as_number(), 0.01) << slow.out;
    EXPECT_EQ(doc.at("summary").at("base_runs").as_int(), runs);

    const Result text = run({"compare", "base", "slow"}, dir_);
    EXPECT_EQ(text.status, 1);
    EXPECT_NE(text.out.find("stage_transform"), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("result: REGRESSION"), std::string::npos) << text.out;

    // Identical scripts: nothing that does not depend on the machine regresses. (A
    // time alarm here is the load shifting between the two sessions; the false-alarm
    // rate is measured by benchmarks/python/compare_detection.sh, not asserted.)
    const Result same = run({"compare", "--json", "base", "same"}, dir_);
    const json::Value null_case = json::parse(same.out);
    bool any_significant = false;
    for (const json::Value& r : null_case.at("regressions").items()) {
        if (!r.at("significant").as_bool()) {
            continue; // listed beyond the threshold, not significant
        }
        any_significant = true;
        EXPECT_NE(r.at("metric").as_string(), "allocated_bytes") << same.out;
        EXPECT_NE(r.at("metric").as_string(), "calls") << same.out;
    }
    EXPECT_EQ(same.status, any_significant ? 1 : 0) << same.out << same.err;
}

// compare --versus profiles both sides itself, their runs interleaved (base,
// candidate, candidate, base, ...), and compares them.
TEST_F(StoreCli, VersusInterleavesTheRunsOfBothSidesAndComparesThem) {
    constexpr int runs = 5;
    const Result r = run({"compare", "--runs", std::to_string(runs), "--json", "--output-dir", (dir_ / "pair").string(),
                          "--full", "--no-system", "--sinks", "json", workload, "--scale", "0.4", "--versus", workload, "--scale",
                          "0.4", "--slower"},
                         dir_);
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    const json::Value doc = json::parse(r.out);
    bool stage_found = false;
    for (const json::Value& c : doc.at("regressions").items()) {
        const std::string& metric = c.at("metric").as_string();
        if ((metric == "allocated_bytes" || metric == "calls") && c.at("significant").as_bool()) {
            EXPECT_EQ(c.at("function").as_string(), "stage_transform") << r.out;
            stage_found = true;
            break;
        }
    }
    EXPECT_TRUE(stage_found) << r.out;
    EXPECT_EQ(doc.at("summary").at("base_runs").as_int(), runs);
    EXPECT_EQ(doc.at("summary").at("candidate_runs").as_int(), runs);

    // Each side is a session of its own, with its script's arguments.
    const json::Value base = json::parse_file((dir_ / "pair" / "base" / "manifest.json").string());
    const json::Value candidate = json::parse_file((dir_ / "pair" / "candidate" / "manifest.json").string());
    EXPECT_EQ(base.at("runs").as_int(), runs);
    EXPECT_EQ(candidate.at("runs").as_int(), runs);
    EXPECT_EQ(base.at("args").size(), 2u);
    ASSERT_EQ(candidate.at("args").size(), 3u);
    EXPECT_EQ(candidate.at("args")[2].as_string(), "--slower");

    // The order the runs started in: base first in odd pairs, candidate first in even ones.
    auto started = [&](const char* side, int k) {
        const fs::path run_dir = dir_ / "pair" / side / ("run-" + std::to_string(k));
        return json::parse_file((run_dir / "manifest.json").string()).at("start_unix_ns").as_int();
    };
    for (int k = 1; k <= runs; ++k) {
        if (k % 2 == 1) {
            EXPECT_LT(started("base", k), started("candidate", k)) << "pair " << k;
        } else {
            EXPECT_LT(started("candidate", k), started("base", k)) << "pair " << k;
        }
        if (k > 1) {
            EXPECT_LT(std::max(started("base", k - 1), started("candidate", k - 1)),
                      std::min(started("base", k), started("candidate", k)))
                << "pair " << k;
        }
    }
}

TEST_F(StoreCli, OneRunAgainstOneRunSaysItHasNoStatistics) {
    profile_runs("a", 1, false);
    profile_runs("b", 1, true);
    const Result r = run({"compare", "a", "b", "--json"}, dir_);
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    const json::Value doc = json::parse(r.out);
    EXPECT_FALSE(doc.at("summary").at("statistics").as_bool());
    for (const auto& change : doc.at("regressions").items()) {
        EXPECT_TRUE(change.at("p_value").is_null());
    }
    const Result text = run({"compare", "a", "b"}, dir_);
    EXPECT_NE(text.out.find("no statistics"), std::string::npos) << text.out;
}

TEST_F(StoreCli, ExportAndImportMoveASessionAndHistoryReadsTheStore) {
    profile_runs("profiling_results/s1", 1, false);
    const Result exported = run({"export-session", "s1", "s1.pycsession"}, dir_);
    ASSERT_EQ(exported.status, 0) << exported.err;
    const Result imported = run({"import-session", "s1.pycsession", "copy"}, dir_);
    ASSERT_EQ(imported.status, 0) << imported.err;
    EXPECT_EQ(read_file(dir_ / "copy" / "s1" / "runs.json"), read_file(dir_ / "profiling_results" / "s1" / "runs.json"));
    EXPECT_EQ(read_file(dir_ / "copy" / "s1" / "run-1" / "session.json"),
              read_file(dir_ / "profiling_results" / "s1" / "run-1" / "session.json"));
    const Result again = run({"import-session", "s1.pycsession", "copy"}, dir_);
    EXPECT_EQ(again.status, 2);
    std::string bytes = read_file(dir_ / "s1.pycsession");
    bytes[bytes.size() / 3] = static_cast<char>(bytes[bytes.size() / 3] ^ 0x55);
    std::ofstream(dir_ / "bad.pycsession", std::ios::binary) << bytes;
    const Result bad = run({"import-session", "bad.pycsession", "elsewhere"}, dir_);
    EXPECT_EQ(bad.status, 2);
    EXPECT_NE(bad.err.find("damaged"), std::string::npos) << bad.err;
    EXPECT_FALSE(fs::exists(dir_ / "elsewhere" / "s1"));

    const Result history = run({"history", workload}, dir_);
    ASSERT_EQ(history.status, 0) << history.err;
    EXPECT_NE(history.out.find("s1"), std::string::npos) << history.out;
    EXPECT_NE(history.out.find("too few sessions"), std::string::npos) << history.out;
}

TEST_F(StoreCli, BadInputIsAClearMessageAndExitStatusTwo) {
    fs::create_directories(dir_ / "empty");
    fs::create_directories(dir_ / "corrupt");
    std::ofstream(dir_ / "corrupt" / "session.json") << "{\"format\": \"pycroscope-session\", \"profile\": {";
    profile_runs("good", 1, false);

    const Result missing = run({"compare", "nowhere", "good"}, dir_);
    EXPECT_EQ(missing.status, 2);
    EXPECT_NE(missing.err.find("no session 'nowhere'"), std::string::npos) << missing.err;

    const Result empty = run({"compare", "empty", "good"}, dir_);
    EXPECT_EQ(empty.status, 2);
    EXPECT_NE(empty.err.find("no session in"), std::string::npos) << empty.err;

    const Result corrupt = run({"compare", "good", "corrupt"}, dir_);
    EXPECT_EQ(corrupt.status, 2);
    EXPECT_NE(corrupt.err.find("session.json"), std::string::npos) << corrupt.err;

    const Result usage = run({"compare", "good"}, dir_);
    EXPECT_EQ(usage.status, 2);
    const Result no_runs = run({"compare", "other.py", "--versus", "other.py"}, dir_);
    EXPECT_EQ(no_runs.status, 2);
    EXPECT_NE(no_runs.err.find("--versus needs --runs"), std::string::npos) << no_runs.err;
    const Result no_candidate = run({"compare", "--runs", "2", workload, "--versus"}, dir_);
    EXPECT_EQ(no_candidate.status, 2);
    EXPECT_NE(no_candidate.err.find("missing CANDIDATE_SCRIPT"), std::string::npos) << no_candidate.err;
    const Result runs_alone = run({"compare", "--runs", "2", "good", "good"}, dir_);
    EXPECT_EQ(runs_alone.status, 2);
    const Result alpha = run({"compare", "--alpha", "2", "good", "good"}, dir_);
    EXPECT_EQ(alpha.status, 2);
    const Result show = run({"show", "nowhere"}, dir_);
    EXPECT_EQ(show.status, 2);
    const Result list = run({"list", "--sessions-dir", "nowhere"}, dir_);
    EXPECT_EQ(list.status, 2);
    EXPECT_NE(list.err.find("no sessions folder"), std::string::npos) << list.err;

    // Two sessions of different scripts: compared, with a warning.
    std::ofstream(dir_ / "other.py") << "def stage_load():\n    return sum(range(100000))\nstage_load()\n";
    const Result other = run({"profile", "--runs", "1", "--output-dir", (dir_ / "other").string(), "--no-system",
                              "--sinks", "json", "other.py"},
                             dir_);
    ASSERT_EQ(other.status, 0) << other.err;
    const Result mixed = run({"compare", "good", "other"}, dir_);
    EXPECT_TRUE(mixed.status == 0 || mixed.status == 1) << mixed.err;
    EXPECT_NE(mixed.out.find("warning: the sessions ran different scripts"), std::string::npos) << mixed.out;
}

TEST_F(StoreCli, AScriptPathMeansItsLatestSessionsInTheStore) {
    profile_runs("profiling_results/older", 1, false);
    profile_runs("profiling_results/newer", 1, false);
    const Result r = run({"compare", "--json", workload, workload}, dir_);
    ASSERT_NE(r.status, 2) << r.err;
    const json::Value doc = json::parse(r.out);
    EXPECT_EQ(doc.at("summary").at("base").as_string(), "older");
    EXPECT_EQ(doc.at("summary").at("candidate").as_string(), "newer");
    const Result one = run({"compare", "--json", workload, "profiling_results/older"}, dir_);
    ASSERT_NE(one.status, 2) << one.err;
    EXPECT_EQ(json::parse(one.out).at("summary").at("base").as_string(), "newer");
    std::ofstream(dir_ / "unknown.py") << "pass\n";
    const Result none = run({"compare", "unknown.py", workload}, dir_);
    EXPECT_EQ(none.status, 2);
    EXPECT_NE(none.err.find("0 sessions of"), std::string::npos) << none.err;
}

TEST_F(StoreCli, HistoryNamesTheSessionWhereARegressionBegan) {
    // Six stored sessions of one script (written directly: no Python needed):
    // the stage's self time steps from 60 to 70 ms at the fourth.
    const double stage_ms[] = {60, 61, 59, 70, 71, 70};
    for (int k = 0; k < 6; ++k) {
        const fs::path session = dir_ / "profiling_results" / ("s" + std::to_string(k + 1));
        fs::create_directories(session);
        store_test::write_text(session / "session.json",
                               store_test::session_json(100000000 + static_cast<std::uint64_t>(k) * 100000,
                                                        static_cast<std::uint64_t>(stage_ms[k] * 1e6)));
        pycroscope::store::Manifest m;
        m.script = "/w/app.py";
        m.start_unix_ns = 1700000000000000000 + k * 1000000000LL;
        m.python_version = "3.11";
        pycroscope::store::write_manifest(session.string(), m);
    }
    const Result r = run({"history", "/w/app.py"}, dir_);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("self time of stage"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("regression began at s4"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("wall time                                no step"), std::string::npos) << r.out;
    const Result page = run({"history", "--html", "history.html", "/w/app.py"}, dir_);
    ASSERT_EQ(page.status, 0) << page.err;
    const std::string html = read_file(dir_ / "history.html");
    EXPECT_NE(html.find("data-step=\"s4\""), std::string::npos) << html;
    EXPECT_NE(html.find("regression began at s4"), std::string::npos);
    const Result newest = run({"list", "--script", "/w/app.py"}, dir_);
    EXPECT_EQ(newest.out.substr(0, 2), "s6") << newest.out;
    const Result none = run({"history", "/w/other.py"}, dir_);
    EXPECT_EQ(none.status, 2);
}

#endif

} // namespace
} // namespace store_cli_test
