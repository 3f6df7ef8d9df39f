#include "pycroscope/report/markdown_report.hpp"

#include "report/report_test_helpers.hpp"

#include <gtest/gtest.h>

#include <string>

using pycroscope::report::render_markdown_report;
using pycroscope::report::ReportInputs;
using pycroscope::report::write_markdown_report;

TEST(MarkdownReport, HoldsTheOverviewFindingsRecommendationsAndTopFunctions) {
    const auto dir = report_test::work_dir();
    report_test::copy_fixture("full", dir);
    const std::string md = render_markdown_report(ReportInputs::from_output_dir(dir.string()), 3);
    EXPECT_NE(md.find("| duration | 2.000 s |"), std::string::npos);
    EXPECT_NE(md.find("| threads | 3 |"), std::string::npos);
    EXPECT_NE(md.find("| health | 62 / 100 |"), std::string::npos);
    EXPECT_NE(md.find("| Python heap peak | 5.00 MiB (20000 allocations) |"), std::string::npos);
    EXPECT_NE(md.find("- **high** `" + (dir / "app.py").string() +
                      ":12` in `slow_sum` (loop\\_accumulation) - A Python-level loop adds numbers one at a time. "
                      "Suggestion: Use sum(values). (50.0% of the time, estimated speedup 1.80x)"),
              std::string::npos)
        << md;
    EXPECT_NE(md.find("Repeated append of formatted strings &lt;in a loop&gt;."), std::string::npos);
    EXPECT_NE(md.find("## Recommendations\n\n- **high**"), std::string::npos);
    // Top 3 by self time, heaviest first; the rest is cut.
    const std::size_t first = md.find("| 1 | `slow_sum` |");
    const std::size_t second = md.find("| 2 | `build` |");
    const std::size_t third = md.find("| 3 | `list.append` |");
    EXPECT_NE(first, std::string::npos);
    EXPECT_LT(first, second);
    EXPECT_LT(second, third);
    EXPECT_EQ(md.find("| 4 |"), std::string::npos);
    EXPECT_NE(md.find("| 1 | `build` | `" + (dir / "app.py").string() + ":19` | 3.81 MiB | 10000 |"), std::string::npos);
}

TEST(MarkdownReport, AbsentSectionsSayNotRecorded) {
    const auto dir = report_test::work_dir();
    report_test::copy_fixture("empty", dir);
    const std::string md = render_markdown_report(ReportInputs::from_output_dir(dir.string()));
    EXPECT_NE(md.find("## Findings\n\n_Not recorded in this run._"), std::string::npos);
    EXPECT_NE(md.find("## Recommendations\n\n_Not recorded in this run._"), std::string::npos);
    EXPECT_NE(md.find("## Top functions by self time\n\n_Not recorded in this run._"), std::string::npos);
    EXPECT_EQ(md.find("health"), std::string::npos);
}

TEST(MarkdownReport, NamesCannotBreakTablesOrBecomeMarkup) {
    const auto dir = report_test::work_dir();
    report_test::write_text(dir / "session.json",
                            R"({"duration_ns":10,"functions":[{"name":"a|b`c\n<script>alert(1)</script>","file":"x.py","line":2,"self_ns":5}],)"
                            R"("findings":[{"message":"<img src=x onerror=alert(1)> | *bold*","severity":"low"}]})");
    const std::string md = render_markdown_report(ReportInputs::from_output_dir(dir.string()));
    EXPECT_NE(md.find("| 1 | `a\\|b'c <script>alert(1)</script>` | `x.py:2` |"), std::string::npos) << md;
    EXPECT_NE(md.find("- **low** - &lt;img src=x onerror=alert(1)&gt; \\| \\*bold\\*"), std::string::npos) << md;
    EXPECT_EQ(md.find("<img"), std::string::npos);
}

TEST(MarkdownReport, WithoutASessionSaysNothingWasRecorded) {
    const auto dir = report_test::work_dir();
    write_markdown_report((dir / "report.md").string(), ReportInputs::from_output_dir(dir.string()));
    const std::string md = report_test::read_text(dir / "report.md");
    EXPECT_NE(md.find("_No session.json in this run: nothing was recorded._"), std::string::npos);
    EXPECT_NE(md.find("no session.json at"), std::string::npos);
}
