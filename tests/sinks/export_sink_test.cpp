// make_export_sink: every format name gives the sink of that format, writing
// the path given; an unknown name is a ConfigError that lists the formats.

#include "sinks/sink_test_helpers.hpp"

#include <pycroscope/core/error.hpp>
#include <pycroscope/sinks/export_sink.hpp>

#include <gtest/gtest.h>

#include <string>

namespace export_sink_test {
namespace {

using pycroscope::sinks::make_export_sink;

TEST(ExportSink, EveryFormatNameMakesItsSinkAndWritesItsFile) {
    sink_test::TempDir dir;
    const std::pair<const char*, const char*> expected[] = {
        {"chrome", "chrome trace"},      {"folded", "folded stacks"},         {"perfetto", "perfetto trace"},
        {"speedscope", "speedscope profile"}, {"pprof", "pprof cpu profile"},
        {"pprof-alloc", "pprof allocation profile"}, {"callgrind", "callgrind profile"}};
    for (const auto& format : expected) {
        const std::string path = dir.file(pycroscope::sinks::export_file_name(format.first));
        auto sink = make_export_sink(format.first, path);
        ASSERT_NE(sink, nullptr);
        EXPECT_EQ(sink->output_path(), path);
        EXPECT_EQ(sink->describe().rfind(format.second, 0), 0u) << sink->describe();
        sink_test::Synthetic s;
        s.span(1, &pycroscope::sinks::memory_counter_location, 10, 20);
        s.play(*sink, 30);
        EXPECT_TRUE(sink_test::exists(path)) << format.first;
    }
}

TEST(ExportSink, AnUnknownFormatIsAConfigErrorListingTheFormats) {
    try {
        make_export_sink("flamegraph", "out");
        FAIL() << "no error";
    } catch (const pycroscope::ConfigError& error) {
        const std::string message = error.what();
        EXPECT_NE(message.find("'flamegraph'"), std::string::npos) << message;
        EXPECT_NE(message.find("chrome, folded, perfetto, speedscope, pprof, pprof-alloc, callgrind"), std::string::npos)
            << message;
    }
    EXPECT_THROW(pycroscope::sinks::export_file_name("svg"), pycroscope::ConfigError);
}

} // namespace
} // namespace export_sink_test
