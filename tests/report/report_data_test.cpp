#include "pycroscope/report/report_data.hpp"

#include "report/report_test_helpers.hpp"

#include <gtest/gtest.h>

#include <ctime>
#include <string>

using pycroscope::report::build_report_data;
using pycroscope::report::JsonEscape;
using pycroscope::report::JsonValue;
using pycroscope::report::ReportInputs;
using pycroscope::report::to_json;

TEST(ReportData, EmbedsTheSessionFlamesAndTheProfiledSource) {
    const auto dir = report_test::work_dir();
    report_test::copy_fixture("full", dir);
    const JsonValue data = build_report_data(ReportInputs::from_output_dir(dir.string()));
    const JsonValue* session = data.find("session");
    ASSERT_TRUE(session != nullptr && session->is_object());
    EXPECT_EQ(session->find("functions")->items().size(), 5u);
    EXPECT_EQ(session->find("findings")->items().size(), 2u);
    const JsonValue* time = data.find("flames")->find("time");
    ASSERT_TRUE(time->is_object());
    EXPECT_EQ(time->get_string("unit"), "ns");
    EXPECT_EQ(time->get_number("total"), 1997000000.0);
    EXPECT_EQ(data.find("flames")->find("memory")->get_number("total"), 7200000.0);
    EXPECT_EQ(data.find("flames")->find("memory")->get_string("unit"), "bytes");
    const auto& sources = data.find("sources")->items();
    ASSERT_EQ(sources.size(), 1u); // app.py; "<built-in>" and host.cpp (no such file) are skipped
    EXPECT_EQ(sources[0].get_string("path"), (dir / "app.py").string());
    EXPECT_EQ(sources[0].get_string("text"), report_test::read_text(dir / "app.py"));
    EXPECT_TRUE(data.find("report")->find("problems")->items().empty());
}

TEST(ReportData, MissingInputsLeaveNullSectionsAndSaySo) {
    const auto dir = report_test::work_dir();
    const JsonValue data = build_report_data(ReportInputs::from_output_dir(dir.string()));
    EXPECT_TRUE(data.find("session")->is_null());
    EXPECT_TRUE(data.find("flames")->find("time")->is_null());
    EXPECT_TRUE(data.find("flames")->find("memory")->is_null());
    EXPECT_TRUE(data.find("sources")->items().empty());
    const auto& problems = data.find("report")->find("problems")->items();
    ASSERT_EQ(problems.size(), 1u);
    EXPECT_NE(problems[0].text().find("no session.json"), std::string::npos);
}

TEST(ReportData, MalformedSessionIsAProblemNotACrash) {
    const auto dir = report_test::work_dir();
    report_test::write_text(dir / "session.json", "{\"format\": \"pycroscope-session\", \"threads\": [");
    report_test::write_text(dir / "stacks.folded", "T;a 5\n");
    const JsonValue data = build_report_data(ReportInputs::from_output_dir(dir.string()));
    EXPECT_TRUE(data.find("session")->is_null());
    EXPECT_EQ(data.find("flames")->find("time")->get_number("total"), 5.0); // what was readable is kept
    const auto& problems = data.find("report")->find("problems")->items();
    ASSERT_EQ(problems.size(), 1u);
    EXPECT_NE(problems[0].text().find("invalid JSON"), std::string::npos);
}

TEST(ReportData, SampledRunsCountSamplesNotTime) {
    const auto dir = report_test::work_dir();
    report_test::write_text(dir / "session.json",
                            R"({"duration_ns":100,"functions":[],"hotspots":{"samples":4,"functions":[]}})");
    report_test::write_text(dir / "stacks.folded", "T;a 4\n");
    const JsonValue data = build_report_data(ReportInputs::from_output_dir(dir.string()));
    EXPECT_EQ(data.find("flames")->find("time")->get_string("unit"), "samples");
}

// A run far larger than any page: 200k distinct stacks, 50k functions.
TEST(ReportData, AHugeRunFitsThePageBudget) {
    const auto dir = report_test::work_dir();
    std::string folded;
    std::string functions;
    for (int i = 0; i < 200000; ++i) {
        folded += "MainThread;<module>;main;dispatch_" + std::to_string(i % 97) + ";handler_" + std::to_string(i) +
                  ";leaf_" + std::to_string(i % 13) + " " + std::to_string(1000 + i % 7) + "\n";
    }
    for (int i = 0; i < 50000; ++i) {
        functions += std::string(i ? "," : "") + R"({"name":"handler_)" + std::to_string(i) +
                     R"(","file":"/nowhere/app.py","line":)" + std::to_string(i + 1) +
                     R"(,"calls":1,"inclusive_ns":)" + std::to_string(5000 + i) + R"(,"self_ns":)" + std::to_string(i) +
                     "}";
    }
    report_test::write_text(dir / "stacks.folded", folded);
    report_test::write_text(dir / "memory.folded", folded);
    report_test::write_text(dir / "session.json", R"({"duration_ns":1000000,"functions":[)" + functions + "]}");
    ReportInputs inputs = ReportInputs::from_output_dir(dir.string());
    // How long this takes is a benchmark's figure (docs/benchmarks.md), not a test's.
    const JsonValue data = build_report_data(inputs);
    const std::size_t bytes = to_json(data, JsonEscape::script).size();
    EXPECT_LE(bytes, inputs.limits.page_bytes);
    const JsonValue* time = data.find("flames")->find("time");
    EXPECT_LE(time->find("name")->items().size(), inputs.limits.flame_nodes + inputs.limits.flame_nodes / 2);
    EXPECT_GT(time->get_number("pruned_nodes"), 0.0);
    // Totals survive the cut: the root still weighs every sample.
    double expected = 0;
    for (int i = 0; i < 200000; ++i) {
        expected += 1000 + i % 7;
    }
    EXPECT_EQ(time->get_number("total"), expected);
    EXPECT_EQ(time->find("value")->items().at(0).as_double(), expected);
    // The heaviest functions are the ones kept, and the page says what was cut.
    const auto& kept = data.find("session")->find("functions")->items();
    ASSERT_FALSE(kept.empty());
    EXPECT_LT(kept.size(), 50000u);
    EXPECT_EQ(kept[0].get_string("name"), "handler_49999");
    const auto& truncated = data.find("report")->find("truncated")->items();
    ASSERT_FALSE(truncated.empty());
    EXPECT_EQ(truncated[0].get_string("what"), "functions");
    EXPECT_EQ(truncated[0].get_number("total"), 50000.0);
}
