// Manifests, the store's listing, and the runs of a session folder.

#include "store/store_test_helpers.hpp"

#include <pycroscope/store/manifest.hpp>
#include <pycroscope/store/session_runs.hpp>
#include <pycroscope/store/session_store.hpp>

#include <gtest/gtest.h>

#include <string>

namespace session_store_test {
namespace {

namespace st = pycroscope::store;
namespace an = pycroscope::analysis;
using namespace store_test;

st::Manifest manifest(const std::string& script, std::int64_t start) {
    st::Manifest m;
    m.script = script;
    m.args = {"--n", "3", "with \"quotes\""};
    m.cwd = "/w";
    m.start_unix_ns = start;
    m.duration_ns = 123456789;
    m.exit_status = 4;
    m.python_version = "3.11.2";
    m.pycroscope_version = "0.1.0";
    m.options = {"--no-gc"};
    m.host = "box";
    m.runs = 5;
    m.git = st::GitState{true, "0123456789abcdef0123456789abcdef01234567", true};
    return m;
}

TEST(Manifest, WrittenAndReadBackWithEveryField) {
    TempDir tmp("manifest_round_trip");
    const st::Manifest m = manifest("/w/app.py", 1700000000000000000);
    st::write_manifest(tmp.path().string(), m);
    const st::Manifest r = st::read_manifest(tmp.path().string());
    EXPECT_EQ(r.script, m.script);
    EXPECT_EQ(r.args, m.args);
    EXPECT_EQ(r.cwd, m.cwd);
    EXPECT_EQ(r.start_unix_ns, m.start_unix_ns);
    EXPECT_EQ(r.duration_ns, m.duration_ns);
    EXPECT_EQ(r.exit_status, 4);
    EXPECT_EQ(r.python_version, "3.11.2");
    EXPECT_EQ(r.options, m.options);
    EXPECT_EQ(r.host, "box");
    EXPECT_EQ(r.runs, 5u);
    EXPECT_TRUE(r.git.known);
    EXPECT_EQ(r.git.commit, m.git.commit);
    EXPECT_TRUE(r.git.dirty);
}

TEST(Manifest, ADamagedManifestNamesTheFile) {
    TempDir tmp("manifest_damaged");
    write_text(tmp.path() / "manifest.json", "{\"format\": \"pycroscope-manifest\", \"script\": 3}");
    try {
        st::read_manifest(tmp.path().string());
        FAIL() << "a damaged manifest was read";
    } catch (const st::StoreError& e) {
        EXPECT_NE(std::string(e.what()).find("manifest.json"), std::string::npos) << e.what();
    }
}

TEST(Manifest, ScriptPathsAreNormalisedToAbsolute) {
    const std::string p = st::normalise_script_path("a/../b/./app.py");
    EXPECT_TRUE(fs::path(p).is_absolute()) << p;
    EXPECT_EQ(fs::path(p), fs::current_path() / "b" / "app.py");
}

TEST(Manifest, GitStateOfAScriptOutsideARepositoryIsUnknown) {
    TempDir tmp("git_state");
    write_text(tmp.path() / "app.py", "pass\n");
    // The temporary directory is not in a work tree (unless the machine's /tmp is).
    const st::GitState state = st::git_state((tmp.path() / "app.py").string());
    if (state.known) {
        GTEST_SKIP() << "the temporary directory is inside a git work tree";
    }
    EXPECT_TRUE(state.commit.empty());
}

TEST(SessionStore, ListsSessionsNewestFirstAndFiltersByScript) {
    TempDir tmp("listing");
    for (const char* id : {"old", "new", "other"}) {
        fs::create_directories(tmp.path() / id);
    }
    st::write_manifest((tmp.path() / "old").string(), manifest("/w/app.py", 1000));
    st::write_manifest((tmp.path() / "new").string(), manifest("/w/app.py", 3000));
    st::write_manifest((tmp.path() / "other").string(), manifest("/w/other.py", 2000));
    fs::create_directories(tmp.path() / "no_manifest");
    write_text(tmp.path() / "broken" / "manifest.json", "{");
    st::SessionStore store(tmp.path().string());
    const auto all = store.sessions();
    ASSERT_EQ(all.size(), 3u);
    EXPECT_EQ(all[0].id, "new");
    EXPECT_EQ(all[1].id, "other");
    EXPECT_EQ(all[2].id, "old");
    ASSERT_EQ(store.problems().size(), 1u);
    EXPECT_NE(store.problems()[0].find("broken"), std::string::npos);
    const auto app = store.sessions_of("/w/./app.py");
    ASSERT_EQ(app.size(), 2u);
    EXPECT_EQ(app[0].id, "new");
    EXPECT_EQ(app[1].id, "old");
    EXPECT_EQ(store.find("other").manifest.script, "/w/other.py");
    EXPECT_THROW(store.find("nothing"), st::StoreError);
    EXPECT_THROW(st::SessionStore((tmp.path() / "missing").string()).sessions(), st::StoreError);
}

TEST(SessionRuns, ASingleSessionIsOneRunWithFunctionsPeakAndAllocatedBytes) {
    TempDir tmp("single_run");
    write_text(tmp.path() / "session.json", session_json(100000000, 60000000, 777));
    const auto runs = st::load_session_runs(tmp.path().string());
    ASSERT_EQ(runs.size(), 1u);
    const an::RunMeasures& m = runs[0].measures;
    EXPECT_DOUBLE_EQ(m.wall_ns, 100000000.0);
    EXPECT_DOUBLE_EQ(m.peak_bytes, 777.0);
    const auto stage = m.functions.find(an::FunctionId{"stage", "/w/app.py", 5});
    ASSERT_NE(stage, m.functions.end());
    EXPECT_DOUBLE_EQ(stage->second.self_ns, 60000000.0);
    EXPECT_DOUBLE_EQ(stage->second.calls, 3.0);
    EXPECT_DOUBLE_EQ(stage->second.allocated_bytes, 5000.0);
}

TEST(SessionRuns, RunsFileRoundTrip) {
    TempDir tmp("runs_round_trip");
    std::vector<st::StoredRun> runs;
    for (int k = 0; k < 3; ++k) {
        write_text(tmp.path() / "x" / "session.json", session_json(100000000 + k, 60000000 + 1000 * k));
        st::StoredRun r;
        r.dir = "run-" + std::to_string(k + 1);
        r.exit_status = k;
        r.measures = st::read_run_measures((tmp.path() / "x" / "session.json").string());
        runs.push_back(r);
    }
    st::write_runs(tmp.path().string(), runs);
    const auto back = st::load_session_runs(tmp.path().string());
    ASSERT_EQ(back.size(), 3u);
    for (int k = 0; k < 3; ++k) {
        EXPECT_EQ(back[k].dir, runs[k].dir);
        EXPECT_EQ(back[k].exit_status, k);
        EXPECT_DOUBLE_EQ(back[k].measures.wall_ns, runs[k].measures.wall_ns);
        EXPECT_DOUBLE_EQ(back[k].measures.peak_bytes, runs[k].measures.peak_bytes);
        ASSERT_EQ(back[k].measures.functions.size(), runs[k].measures.functions.size());
        for (const auto& f : runs[k].measures.functions) {
            const auto& g = back[k].measures.functions.at(f.first);
            EXPECT_DOUBLE_EQ(g.self_ns, f.second.self_ns);
            EXPECT_DOUBLE_EQ(g.total_ns, f.second.total_ns);
            EXPECT_DOUBLE_EQ(g.calls, f.second.calls);
            EXPECT_DOUBLE_EQ(g.allocated_bytes, f.second.allocated_bytes);
        }
    }
}

TEST(SessionRuns, MissingFolderEmptyFolderAndCorruptSessionAreStoreErrors) {
    TempDir tmp("bad_input");
    EXPECT_THROW(st::load_session_runs((tmp.path() / "missing").string()), st::StoreError);
    try {
        st::load_session_runs(tmp.path().string());
        FAIL();
    } catch (const st::StoreError& e) {
        EXPECT_NE(std::string(e.what()).find("no session"), std::string::npos) << e.what();
    }
    write_text(tmp.path() / "session.json", session_json(1, 1).substr(0, 200));
    try {
        st::load_session_runs(tmp.path().string());
        FAIL();
    } catch (const st::StoreError& e) {
        EXPECT_NE(std::string(e.what()).find("session.json"), std::string::npos) << e.what();
    }
    write_text(tmp.path() / "runs.json", "{\"format\": \"pycroscope-runs\", \"version\": 1, \"runs\": []}");
    EXPECT_THROW(st::load_session_runs(tmp.path().string()), st::StoreError);
}

} // namespace
} // namespace session_store_test
