// CallgrindSink: the file read by valgrind's own callgrind_annotate, whose
// per-function totals must equal, to the nanosecond, the self times that
// JsonSummarySink computes from the same events.

#include "sinks/export_tools.hpp"
#include "sinks/sink_test_helpers.hpp"

#include <pycroscope/model/profile_builder.hpp>
#include <pycroscope/sinks/callgrind_sink.hpp>
#include <pycroscope/sinks/json_summary_sink.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>

namespace callgrind_sink_test {
namespace {

using pycroscope::sinks::CallgrindSink;
using pycroscope::sinks::JsonSummarySink;
using sink_test::TempDir;

// "file:function" -> cost, from callgrind_annotate's function table.
std::map<std::string, std::uint64_t> annotate(const std::string& path, bool inclusive = false) {
    const auto result = export_test::run("callgrind_annotate --threshold=100 --auto=no" +
                                         std::string(inclusive ? " --inclusive=yes " : " ") +
                                         export_test::quote(path) + " 2>&1");
    if (result.status != 0) {
        throw std::runtime_error("callgrind_annotate failed:\n" + result.output);
    }
    std::map<std::string, std::uint64_t> costs;
    bool table = false;
    for (const std::string& line : sink_test::lines_of(result.output)) {
        if (line.find("file:function") != std::string::npos) {
            table = true;
            continue;
        }
        if (!table || line.empty() || line[0] == '-') {
            continue;
        }
        // " 1,234 ( 2.34%)  file:function", numbers right-aligned
        const std::size_t begin = line.find_first_not_of(' ');
        const std::size_t space = line.find(' ', begin);
        const std::size_t name_at = line.find(")  ");
        if (begin == std::string::npos || space == std::string::npos || name_at == std::string::npos) {
            continue;
        }
        std::string number = line.substr(begin, space - begin);
        number.erase(std::remove(number.begin(), number.end(), ','), number.end());
        costs[line.substr(name_at + 3)] = std::stoull(number);
    }
    return costs;
}

std::string callgrind_file(const pycroscope::SourceLocation* l) {
    return l->file != nullptr && l->file[0] != '\0' ? l->file : "???";
}

void expect_annotate_equals_summary(sink_test::Synthetic& s, std::uint64_t stop) {
    TempDir dir;
    CallgrindSink callgrind(dir.file("callgrind.out"));
    JsonSummarySink summary(dir.file("session.json"));
    s.play(callgrind, stop);
    s.play(summary, stop);
    std::map<std::string, std::uint64_t> expected;
    for (const auto& stats : summary.location_stats()) {
        std::string name = stats.location->display_name();
        if (name == "<lambda>") { // two in one file: told apart by their line
            name += "'" + std::to_string(stats.location->line);
        }
        const auto ns = static_cast<std::uint64_t>(stats.self_ns + 0.5);
        if (ns > 0) {
            expected[callgrind_file(stats.location) + ":" + name] = ns;
        }
    }
    ASSERT_FALSE(expected.empty());
    auto costs = annotate(dir.file("callgrind.out"));
    for (auto it = costs.begin(); it != costs.end();) {
        it = it->second == 0 ? costs.erase(it) : std::next(it);
    }
    EXPECT_EQ(costs, expected);
}

TEST(CallgrindSink, CallgrindAnnotateTotalsEqualTheSummarysSelfTimes) {
    EXPORT_TEST_REQUIRE_COMMAND("callgrind_annotate");
    auto s = export_test::rich_stream(false);
    expect_annotate_equals_summary(s, export_test::rich_stop);
}

TEST(CallgrindSink, SelfTimesStayExactWithAFractionalClock) {
    EXPORT_TEST_REQUIRE_COMMAND("callgrind_annotate");
    auto s = export_test::rich_stream(false);
    s.info.calibration.ns_per_tick = 0.37;
    expect_annotate_equals_summary(s, export_test::rich_stop);
}

TEST(CallgrindSink, InclusiveCostOfAFunctionIsItsSpan) {
    EXPORT_TEST_REQUIRE_COMMAND("callgrind_annotate");
    TempDir dir;
    auto s = export_test::rich_stream(false);
    CallgrindSink sink(dir.file("callgrind.out"));
    s.play(sink, export_test::rich_stop);
    const auto inclusive = annotate(dir.file("callgrind.out"), true);
    EXPECT_EQ(inclusive.at("app.cpp:work"), 150u - 105u);
    EXPECT_EQ(inclusive.at("/src/mod.py:helper"), 190u - 160u);
}

TEST(CallgrindSink, FromTheProfileBuilderSelfTimesAreTheProfiles) {
    // The Profile's times: spans open at stop end at their thread's last
    // event, as in session.json (the walk ends them at stop).
    EXPORT_TEST_REQUIRE_COMMAND("callgrind_annotate");
    TempDir dir;
    auto s = export_test::rich_stream(false);
    const auto builder = std::make_shared<pycroscope::model::ProfileBuilder>();
    CallgrindSink modelled(dir.file("modelled.out"), builder);
    s.play(*builder, modelled, export_test::rich_stop);
    std::map<std::string, std::uint64_t> expected;
    for (const auto& f : builder->profile().functions) {
        std::string name = f.name == "<lambda>" ? f.name + "'" + std::to_string(f.line) : f.name;
        if (f.self > 0) {
            expected[callgrind_file(f.location) + ":" + name] = f.self;
        }
    }
    ASSERT_GE(expected.size(), 3u);
    auto costs = annotate(dir.file("modelled.out"));
    for (auto it = costs.begin(); it != costs.end();) {
        it = it->second == 0 ? costs.erase(it) : std::next(it);
    }
    EXPECT_EQ(costs, expected);
    const auto inclusive = annotate(dir.file("modelled.out"), true);
    EXPECT_EQ(inclusive.at("app.cpp:work"), 150u - 105u);
    EXPECT_EQ(inclusive.at("/src/mod.py:helper"), 190u - 160u);
    EXPECT_EQ(inclusive.at("/src/mod.py:<lambda>'31"), 131u - 121u); // a resume inside it
}

TEST(CallgrindSink, FileUsesNameCompressionAndDeclaresItsEvents) {
    TempDir dir;
    auto s = export_test::rich_stream(false);
    CallgrindSink sink(dir.file("callgrind.out"));
    s.play(sink, export_test::rich_stop);
    const auto lines = sink_test::lines_of(sink_test::read_file(dir.file("callgrind.out")));
    ASSERT_GE(lines.size(), 8u);
    EXPECT_EQ(lines[0], "# callgrind format");
    EXPECT_EQ(lines[1], "version: 1");
    EXPECT_NE(std::find(lines.begin(), lines.end(), "events: ns"), lines.end());
    int fib_named = 0, fib_by_id = 0;
    std::string fib_id;
    for (const auto& line : lines) {
        const auto named = line.find(") fib");
        if ((line.rfind("fn=(", 0) == 0 || line.rfind("cfn=(", 0) == 0) && named != std::string::npos &&
            named + 5 == line.size()) {
            ++fib_named;
            fib_id = line.substr(line.find('('), named - line.find('(') + 1);
        }
    }
    for (const auto& line : lines) {
        if (!fib_id.empty() && (line == "fn=" + fib_id || line == "cfn=" + fib_id)) {
            ++fib_by_id;
        }
    }
    EXPECT_EQ(fib_named, 1); // the name once, its id after
    EXPECT_GE(fib_by_id, 2);
    // 300 ns on main and 45 on worker, all of it someone's self time.
    EXPECT_EQ(lines.back(), "totals: 345");
}

} // namespace
} // namespace callgrind_sink_test
