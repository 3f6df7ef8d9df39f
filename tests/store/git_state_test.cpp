// GitProbe / git_state(): the commit read from the repository's files equals
// what git itself says, in every layout the reader follows (a branch, a
// detached HEAD, packed refs, a linked worktree), and the dirty check
// follows the work tree. Skipped where git is not installed.

#include "store/store_test_helpers.hpp"

#include <pycroscope/store/git_state.hpp>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <sys/wait.h>

namespace git_state_test {
namespace {

namespace fs = std::filesystem;
namespace st = pycroscope::store;
using store_test::TempDir;
using store_test::write_text;

// Runs a shell command in dir; returns its first output line ("" on failure).
std::string run(const fs::path& dir, const std::string& command) {
    const std::string full = "cd '" + dir.string() + "' && " + command + " 2>/dev/null";
    std::FILE* pipe = ::popen(full.c_str(), "r");
    if (pipe == nullptr) {
        return {};
    }
    char buffer[256] = {};
    std::string out;
    if (std::fgets(buffer, sizeof buffer, pipe) != nullptr) {
        out = buffer;
    }
    ::pclose(pipe);
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) {
        out.pop_back();
    }
    return out;
}

bool have_git() { return std::system("git --version >/dev/null 2>&1") == 0; }

const char* const git = "git -c user.name=t -c user.email=t@example.com -c init.defaultBranch=main "
                        "-c commit.gpgsign=false ";

TEST(GitState, CommitAndDirtyMatchGitInEveryLayout) {
    if (!have_git()) {
        GTEST_SKIP() << "git is not installed";
    }
    TempDir tmp("git_layouts");
    const fs::path repo = tmp.path() / "repo";
    fs::create_directories(repo / "src");
    write_text(repo / "src" / "app.py", "print(1)\n");
    ASSERT_EQ(run(repo, std::string(git) + "init -q . && " + git + "add -A && " + git + "commit -qm one && echo ok"),
              "ok");
    const std::string script = (repo / "src" / "app.py").string();

    // A branch (loose ref), clean.
    st::GitState state = st::git_state(script);
    EXPECT_TRUE(state.known);
    EXPECT_EQ(state.commit, run(repo, "git rev-parse HEAD"));
    EXPECT_EQ(state.commit.size(), 40u);
    EXPECT_FALSE(state.dirty);

    // Modified, then staged: dirty both times.
    write_text(repo / "src" / "app.py", "print(2)\n");
    EXPECT_TRUE(st::git_state(script).dirty);
    run(repo, "git add -A");
    EXPECT_TRUE(st::git_state(script).dirty);
    ASSERT_EQ(run(repo, std::string(git) + "commit -qm two && echo ok"), "ok");
    state = st::git_state(script);
    EXPECT_EQ(state.commit, run(repo, "git rev-parse HEAD"));
    EXPECT_FALSE(state.dirty);

    // Packed refs (the loose ref file gone).
    run(repo, "git pack-refs --all");
    ASSERT_FALSE(fs::exists(repo / ".git" / "refs" / "heads" / "main"));
    EXPECT_EQ(st::git_state(script).commit, run(repo, "git rev-parse HEAD"));

    // A detached HEAD at the first commit.
    const std::string first = run(repo, "git rev-parse HEAD~1");
    run(repo, "git checkout -q --detach HEAD~1");
    EXPECT_EQ(st::git_state(script).commit, first);

    // A linked worktree: .git is a file naming the worktree's git directory,
    // refs live in the common directory.
    run(repo, "git checkout -q main");
    ASSERT_EQ(run(repo, "git worktree add -q ../linked HEAD~1 && echo ok"), "ok");
    const fs::path linked = tmp.path() / "linked";
    ASSERT_TRUE(fs::is_regular_file(linked / ".git"));
    state = st::git_state((linked / "src" / "app.py").string());
    EXPECT_TRUE(state.known);
    EXPECT_EQ(state.commit, first);
    EXPECT_EQ(state.commit, run(linked, "git rev-parse HEAD"));
    EXPECT_FALSE(state.dirty);
}

TEST(GitState, TheDirtyCheckRunsBesideTheCaller) {
    if (!have_git()) {
        GTEST_SKIP() << "git is not installed";
    }
    TempDir tmp("git_probe");
    write_text(tmp.path() / "app.py", "x = 1\n");
    ASSERT_EQ(run(tmp.path(), std::string(git) + "init -q . && " + git + "add -A && " + git +
                                  "commit -qm one && echo ok"),
              "ok");
    write_text(tmp.path() / "app.py", "x = 2\n");
    st::GitProbe probe = st::GitProbe::start((tmp.path() / "app.py").string());
    // While git runs, this process has no child: the profiled program's
    // os.wait() or SIGCHLD handler never meets one of ours.
    errno = 0;
    EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
    EXPECT_EQ(errno, ECHILD);
    EXPECT_TRUE(probe.state().known);
    const st::GitState& state = probe.finish();
    EXPECT_TRUE(state.known);
    EXPECT_TRUE(state.dirty);
    EXPECT_TRUE(probe.finish().dirty); // waited for once
}

} // namespace
} // namespace git_state_test
