// Findings end to end: `pycroscope profile` on the planted corpus
// (tests/python/analysis/corpus/) finds every site marked `# expect: KIND`
// with its kind and line, and nothing on the clean twins; the same pattern
// on a hot and a cold path gets different severities; `pycroscope report`
// on the saved capture gives the same findings.
//
// CMake passes the built CLI as PYCROSCOPE_CLI_PATH.

#include "support/child_process.hpp"
#include "support/json.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#define PYCROSCOPE_FINDINGS_TEST_POSIX 1
#endif

namespace findings_cli_test {
namespace {

namespace fs = std::filesystem;

#if defined(PYCROSCOPE_CLI_PATH) && defined(PYCROSCOPE_FINDINGS_TEST_POSIX)

const std::string cli = PYCROSCOPE_CLI_PATH;

using pycroscope_test::read_file;
using Outcome = pycroscope_test::ProcessResult;

Outcome run_command(const std::vector<std::string>& argv, const fs::path& cwd) {
    return pycroscope_test::run_process(argv, cwd, std::chrono::seconds(180));
}

using Site = std::tuple<std::string, std::uint32_t, std::string>; // file name, line, kind

// Every `# expect: KIND` comment of the corpus files in dir.
std::set<Site> planted(const fs::path& dir) {
    std::set<Site> sites;
    for (const auto& entry : fs::directory_iterator(dir)) {
        if (entry.path().extension() != ".py") {
            continue;
        }
        std::istringstream in(read_file(entry.path()));
        std::string line;
        for (std::uint32_t n = 1; std::getline(in, line); ++n) {
            const std::size_t at = line.find("# expect: ");
            if (at != std::string::npos) {
                sites.emplace(entry.path().filename().string(), n, line.substr(at + 10));
            }
        }
    }
    return sites;
}

// The findings of session.json on files in dir, by (file name, line, kind).
std::map<Site, const json::Value*> findings_in(const json::Value& session, const fs::path& dir) {
    std::map<Site, const json::Value*> out;
    for (const json::Value& f : session.at("findings").items()) {
        const fs::path file(f.at("file").as_string());
        if (file.parent_path() != dir) {
            continue;
        }
        const Site site{file.filename().string(), static_cast<std::uint32_t>(f.at("line").as_uint()),
                        f.at("kind").as_string()};
        EXPECT_EQ(out.count(site), 0u) << "twice: " << std::get<0>(site) << ":" << std::get<1>(site);
        out[site] = &f;
    }
    return out;
}

const char* const severities[] = {"low", "medium", "high", "critical"};
int severity_rank(const std::string& name) {
    for (int i = 0; i < 4; ++i) {
        if (name == severities[i]) {
            return i;
        }
    }
    ADD_FAILURE() << "unknown severity " << name;
    return -1;
}

// One profiled run of the corpus shared by the tests (a few seconds).
class FindingsCli : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        root_ = fs::canonical(fs::temp_directory_path()) / ("pycroscope_findings_test_" + std::to_string(::getpid()));
        fs::remove_all(root_);
        corpus_ = root_ / "corpus";
        fs::create_directories(corpus_);
        for (const auto& entry : fs::directory_iterator(fs::path(PYCROSCOPE_TESTS_DIR) / "python/analysis/corpus")) {
            if (entry.path().extension() == ".py") {
                fs::copy_file(entry.path(), corpus_ / entry.path().filename());
            }
        }
        // Compensated live and replayed alike: the findings are compared exactly.
        live_ = run_command({cli, "profile", "--output-dir", (root_ / "live").string(), "--sinks", "json,capture",
                     "--no-system", (corpus_ / "run_corpus.py").string()},
                    root_);
        lines_ = run_command({cli, "profile", "--line", "--output-dir", (root_ / "lines").string(), "--sinks", "json",
                      "--no-system", (corpus_ / "run_corpus.py").string()},
                     root_);
    }
    static void TearDownTestSuite() {
        std::error_code ec;
        fs::remove_all(root_, ec);
    }
    static json::Value session(const std::string& folder) { return json::parse_file((root_ / folder / "session.json").string()); }

    static fs::path root_, corpus_;
    static Outcome live_, lines_;
};
fs::path FindingsCli::root_, FindingsCli::corpus_;
Outcome FindingsCli::live_, FindingsCli::lines_;

TEST_F(FindingsCli, EveryPlantedSiteIsFoundWithItsKindAndLineAndNothingOnTheCleanTwins) {
    ASSERT_EQ(live_.status, 0) << live_.err;
    const std::set<Site> expected = planted(corpus_);
    ASSERT_GE(expected.size(), 13u); // every kind at least once, two on hot_cold.py
    const json::Value doc = session("live");
    const auto found = findings_in(doc, corpus_);
    for (const Site& site : expected) {
        EXPECT_EQ(found.count(site), 1u) << "missed " << std::get<2>(site) << " at " << std::get<0>(site) << ":"
                                         << std::get<1>(site);
    }
    for (const auto& f : found) {
        EXPECT_EQ(expected.count(f.first), 1u) << "unexpected " << std::get<2>(f.first) << " at "
                                               << std::get<0>(f.first) << ":" << std::get<1>(f.first);
        EXPECT_NE(std::get<0>(f.first), "clean_patterns.py");
        EXPECT_NE(std::get<0>(f.first), "run_corpus.py");
    }
    std::set<std::string> kinds;
    for (const Site& site : expected) {
        kinds.insert(std::get<2>(site));
    }
    EXPECT_EQ(kinds.size(), 11u) << "the corpus plants every kind";
    // Every finding carries the whole schema; default mode has no line data.
    for (const auto& f : found) {
        const json::Value& v = *f.second;
        EXPECT_GE(v.at("end_line").as_uint(), v.at("line").as_uint());
        EXPECT_FALSE(v.at("function").as_string().empty());
        EXPECT_FALSE(v.at("message").as_string().empty());
        EXPECT_FALSE(v.at("suggestion").as_string().empty());
        EXPECT_GE(v.at("time_share").as_number(), 0.0);
        EXPECT_LE(v.at("estimated_saving").as_number(), v.at("time_share").as_number());
        EXPECT_NEAR(v.at("estimated_speedup").as_number(), 1.0 / (1.0 - v.at("estimated_saving").as_number()), 1e-6);
        EXPECT_NE(v.at("time_basis").as_string(), "lines");
    }
    EXPECT_FALSE(doc.at("pattern_analysis").at("line_data").as_bool());
    EXPECT_EQ(doc.at("pattern_analysis").at("files_analysed").as_uint(), 4u);
}

TEST_F(FindingsCli, TheSamePatternIsMoreSevereOnTheHotPathThanOnTheColdOne) {
    for (const char* folder : {"live", "lines"}) {
        ASSERT_EQ((folder == std::string("live") ? live_ : lines_).status, 0) << folder;
        const json::Value doc = session(folder);
        const json::Value *hot = nullptr, *cold = nullptr;
        for (const json::Value& f : doc.at("findings").items()) {
            if (fs::path(f.at("file").as_string()).filename() == "hot_cold.py") {
                (f.at("function").as_string() == "hot" ? hot : cold) = &f;
            }
        }
        ASSERT_NE(hot, nullptr) << folder;
        ASSERT_NE(cold, nullptr) << folder;
        EXPECT_GT(hot->at("time_share").as_number(), 10 * cold->at("time_share").as_number()) << folder;
        EXPECT_GT(severity_rank(hot->at("severity").as_string()), severity_rank(cold->at("severity").as_string()))
            << folder;
        EXPECT_EQ(cold->at("severity").as_string(), "low") << folder;
        EXPECT_GE(severity_rank(hot->at("severity").as_string()), 2) << folder;
        EXPECT_EQ(hot->at("time_basis").as_string(), folder == std::string("lines") ? "lines" : "function");
        // Hotter first, and the hot site leads the recommendations it joins.
        EXPECT_LT(hot, cold) << folder;
    }
}

TEST_F(FindingsCli, RecommendationsAndHealthJoinTheFindings) {
    ASSERT_EQ(live_.status, 0) << live_.err;
    const json::Value doc = session("live");
    const auto& recs = doc.at("recommendations").items();
    ASSERT_FALSE(recs.empty());
    for (std::size_t i = 1; i < recs.size(); ++i) {
        EXPECT_GE(recs[i - 1].at("estimated_saving").as_number(), recs[i].at("estimated_saving").as_number());
    }
    const auto& first = recs.front();
    EXPECT_EQ(fs::path(first.at("file").as_string()).filename(), "hot_cold.py");
    EXPECT_EQ(first.at("kind").as_string(), "membership_in_list");
    const json::Value& health = doc.at("health");
    const double penalties = health.at("penalties").at("time").as_number() +
                             health.at("penalties").at("patterns").as_number() +
                             health.at("penalties").at("memory").as_number() +
                             health.at("penalties").at("io").as_number();
    EXPECT_EQ(health.at("score").as_int(), static_cast<std::int64_t>(std::max(0.0, 100.0 - penalties) + 0.5));
    EXPECT_LT(health.at("score").as_int(), 100);
    ASSERT_FALSE(health.at("costs").items().empty());
    EXPECT_NE(health.at("costs")[0].at("item").as_string().find("membership_in_list in hot"), std::string::npos);
    // The terminal summary shows them after the top functions.
    const std::size_t table = live_.err.find("top ");
    const std::size_t score = live_.err.find("pycroscope: health ");
    const std::size_t recommendations = live_.err.find("pycroscope: recommendations");
    ASSERT_NE(table, std::string::npos) << live_.err;
    ASSERT_NE(score, std::string::npos) << live_.err;
    ASSERT_NE(recommendations, std::string::npos) << live_.err;
    EXPECT_LT(table, score);
    EXPECT_LT(score, recommendations);
    EXPECT_NE(live_.err.find("membership_in_list"), std::string::npos);
}

TEST_F(FindingsCli, TheSavedCaptureReanalysedOfflineGivesTheSameFindings) {
    ASSERT_EQ(live_.status, 0) << live_.err;
    const Outcome replay = run_command({cli, "report", "--output-dir", (root_ / "replayed").string(), (root_ / "live").string()},
                           root_);
    ASSERT_EQ(replay.status, 0) << replay.out << replay.err;
    const json::Value live = session("live"), offline = session("replayed");
    const auto& a = live.at("findings").items();
    const auto& b = offline.at("findings").items();
    ASSERT_EQ(a.size(), b.size());
    ASSERT_FALSE(a.empty());
    for (std::size_t i = 0; i < a.size(); ++i) {
        for (const char* key : {"kind", "file", "function", "severity", "message", "suggestion", "time_basis"}) {
            EXPECT_EQ(a[i].at(key).as_string(), b[i].at(key).as_string()) << i << " " << key;
        }
        for (const char* key : {"line", "end_line"}) {
            EXPECT_EQ(a[i].at(key).as_uint(), b[i].at(key).as_uint()) << i << " " << key;
        }
        for (const char* key : {"time_share", "estimated_saving", "estimated_speedup"}) {
            EXPECT_EQ(a[i].at(key).number_text(), b[i].at(key).number_text()) << i << " " << key;
        }
    }
    EXPECT_EQ(live.at("health").at("penalties").at("patterns").number_text(),
              offline.at("health").at("penalties").at("patterns").number_text());
    EXPECT_NE(replay.out.find("pycroscope: health "), std::string::npos) << replay.out;
}

TEST_F(FindingsCli, ThePatternOptionsSelectDetectorsAndSeverities) {
    // Offline, from the same capture: fast, and the replay takes the same options.
    ASSERT_EQ(live_.status, 0) << live_.err;
    const auto kinds_of = [&](const std::vector<std::string>& flags, const std::string& folder) {
        std::vector<std::string> argv{cli, "report", "--sinks", "json", "--output-dir", (root_ / folder).string()};
        argv.insert(argv.end(), flags.begin(), flags.end());
        argv.push_back((root_ / "live").string());
        const Outcome r = run_command(argv, root_);
        EXPECT_EQ(r.status, 0) << r.out << r.err;
        std::multiset<std::string> kinds;
        const json::Value doc = session(folder);
        for (const json::Value& f : doc.at("findings").items()) {
            kinds.insert(f.at("kind").as_string() + "/" + f.at("severity").as_string());
        }
        return std::make_pair(kinds, doc.at("pattern_analysis").at("enabled").as_bool());
    };
    const auto maintainability = kinds_of({"--patterns", "maintainability"}, "maintainability");
    ASSERT_FALSE(maintainability.first.empty());
    for (const std::string& k : maintainability.first) {
        const std::string kind = k.substr(0, k.find('/'));
        EXPECT_TRUE(kind == "high_complexity" || kind == "dead_code" || kind == "unused_import") << k;
    }
    const auto no_globals = kinds_of({"--patterns=performance,-global_in_loop"}, "performance");
    for (const std::string& k : no_globals.first) {
        EXPECT_EQ(k.find("global_in_loop"), std::string::npos);
        EXPECT_EQ(k.find("dead_code"), std::string::npos);
    }
    EXPECT_FALSE(no_globals.first.empty());
    const auto high = kinds_of({"--pattern-severity", "high"}, "high");
    ASSERT_FALSE(high.first.empty());
    for (const std::string& k : high.first) {
        EXPECT_TRUE(k.find("/high") != std::string::npos || k.find("/critical") != std::string::npos) << k;
    }
    const auto off = kinds_of({"--no-patterns"}, "off");
    EXPECT_TRUE(off.first.empty());
    EXPECT_FALSE(off.second);
    const Outcome bad = run_command({cli, "report", "--patterns", "nested_loops", (root_ / "live").string()}, root_);
    EXPECT_EQ(bad.status, 2);
    EXPECT_NE(bad.err.find("unknown pattern 'nested_loops'"), std::string::npos) << bad.err;
}

#endif

} // namespace
} // namespace findings_cli_test
