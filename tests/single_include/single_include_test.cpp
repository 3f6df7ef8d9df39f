// Built with only single_include/ on the include path: the amalgamated header
// alone must give the whole native SDK, sinks included.
#include <pycroscope.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace single_include_test {
namespace {

void nested() {
    PYCRO_SCOPE_N("outer");
    PYCRO_SCOPE_N("inner");
    PYCRO_MARK("mark");
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

TEST(SingleInclude, RecordsZonesAndWritesEverySink) {
    const std::string dir = ::testing::TempDir();
    pycroscope::Session<pycroscope::NativeZones> session;
    session.add_sink<pycroscope::sinks::JsonSummarySink>(dir + "single_session.json");
    session.add_sink<pycroscope::sinks::FoldedStackSink>(dir + "single_stacks.folded");
    session.add_sink<pycroscope::sinks::ChromeTraceSink>(dir + "single_trace.json");
    session.start();
    for (int i = 0; i < 3; ++i) {
        nested();
    }
    const auto summary = session.stop();
    EXPECT_EQ(summary.total_events, 3u * 5u);
    EXPECT_EQ(summary.total_lost, 0u);
    EXPECT_NE(read_file(dir + "single_session.json").find("\"outer\""), std::string::npos);
    EXPECT_NE(read_file(dir + "single_stacks.folded").find(";outer;inner "), std::string::npos);
    EXPECT_NE(read_file(dir + "single_trace.json").find("\"name\":\"inner\""), std::string::npos);
}

} // namespace
} // namespace single_include_test
