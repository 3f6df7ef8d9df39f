// What an AtomicFile leaves on disk: committed() says whether the final file
// is there and whole, and remove_stale_temporaries() clears the temporaries
// of processes that are gone, never those of a live one.

#include "sinks/sink_test_helpers.hpp"

#include <pycroscope/core/error.hpp>
#include <pycroscope/sinks/atomic_file.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace stale_temporaries_test {
namespace {

using pycroscope::sinks::AtomicFile;
using pycroscope::sinks::remove_stale_temporaries;
using sink_test::TempDir;
namespace fs = std::filesystem;

// The pid of a process that has exited and been reaped.
pid_t dead_pid() {
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::_exit(0);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return pid;
}

TEST(AtomicFile, CommittedOnlyAfterASuccessfulCommit) {
    TempDir dir;
    AtomicFile file(dir.file("out.json"));
    EXPECT_FALSE(file.committed());
    file.open();
    file.write("{}");
    EXPECT_FALSE(file.committed());
    file.commit();
    EXPECT_TRUE(file.committed());
    file.open(); // a new session: not committed until it is
    EXPECT_FALSE(file.committed());
    file.discard();
    EXPECT_FALSE(file.committed());
    EXPECT_TRUE(fs::exists(dir.file("out.json"))); // the earlier file is untouched
}

TEST(AtomicFile, AFailedCommitIsNotCommitted) {
    TempDir dir;
    const fs::path sub = fs::path(dir.file("gone"));
    fs::create_directories(sub);
    AtomicFile file((sub / "out.json").string());
    file.open();
    file.write("{}");
    fs::remove_all(sub); // the folder is removed mid-run
    EXPECT_THROW(file.commit(), pycroscope::SinkError);
    EXPECT_FALSE(file.committed());
}

TEST(AtomicFile, StaleTemporariesOfDeadProcessesAreRemovedAndOthersKept) {
    TempDir dir;
    const std::string dead = std::to_string(dead_pid());
    const std::string live = std::to_string(::getpid());
    const std::vector<std::string> files = {"session.json.tmp." + dead, "trace.json.tmp." + dead,
                                            "session.json.tmp." + live, "other.txt.tmp." + dead,
                                            "session.json.tmp.12ab", "session.json"};
    for (const auto& name : files) {
        std::ofstream(dir.file(name)) << "x";
    }
    const std::vector<std::string> removed =
        remove_stale_temporaries(dir.path().string(), {"session.json", "trace.json", "stacks.folded"});
    std::vector<std::string> names;
    for (const auto& path : removed) {
        names.push_back(fs::path(path).filename().string());
    }
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, (std::vector<std::string>{"session.json.tmp." + dead, "trace.json.tmp." + dead}));
    for (const auto& name : {"session.json.tmp." + live, "other.txt.tmp." + dead, std::string("session.json.tmp.12ab"),
                             std::string("session.json")}) {
        EXPECT_TRUE(fs::exists(dir.file(name))) << name;
    }
}

TEST(AtomicFile, StaleTemporariesOfAMissingFolderAreNone) {
    EXPECT_TRUE(remove_stale_temporaries("/nonexistent/pycroscope/folder", {"session.json"}).empty());
}

} // namespace
} // namespace stale_temporaries_test
