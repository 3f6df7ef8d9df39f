// fork() while a session records: the child detaches (records nothing,
// writes nothing) and the parent's session completes with its own events.
#include <pycroscope.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

namespace fork_test {
namespace {

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

TEST(Fork, ChildDetachesAndParentOutputIsIntact) {
    const std::string path = ::testing::TempDir() + "fork_session_" + std::to_string(::getpid()) + ".json";
    std::remove(path.c_str());
    pycroscope::Session<pycroscope::NativeZones> session;
    session.add_sink<pycroscope::sinks::JsonSummarySink>(path);
    session.start();
    for (int i = 0; i < 10; ++i) {
        PYCRO_SCOPE_N("before_fork");
    }
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        // Child: nothing records, stop() detaches, no file appears.
        int status = pycroscope::native_zones_active() ? 10 : 0;
        for (int i = 0; i < 5; ++i) {
            PYCRO_SCOPE_N("in_child");
        }
        const auto summary = session.stop();
        if (summary.errors.empty() || session.running()) {
            status += 20;
        }
        std::ifstream probe(path);
        if (probe.good()) {
            status += 40;
        }
        ::_exit(status);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
    for (int i = 0; i < 7; ++i) {
        PYCRO_SCOPE_N("after_fork");
    }
    const auto summary = session.stop();
    EXPECT_EQ(summary.total_events, 2u * (10 + 7));
    const std::string json = slurp(path);
    EXPECT_NE(json.find("\"after_fork\""), std::string::npos);
    EXPECT_EQ(json.find("\"in_child\""), std::string::npos);
    EXPECT_TRUE(summary.errors.empty());
}

} // namespace
} // namespace fork_test
