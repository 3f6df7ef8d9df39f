// history.html: a table of the sessions and, for each series, a chart with
// its step drawn where the step detection found it; names are escaped.

#include "pycroscope/report/history_page.hpp"

#include "report/report_test_helpers.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace history_page_test {
namespace {

using pycroscope::report::HistoryPage;
using pycroscope::report::HistorySeries;
using pycroscope::report::HistoryUnit;

std::size_t count(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) {
        ++n;
    }
    return n;
}

HistoryPage six_sessions() {
    HistoryPage page;
    page.script = "/w/app.py";
    for (int k = 1; k <= 6; ++k) {
        page.sessions.push_back({"s" + std::to_string(k), "2026-12-07 10:0" + std::to_string(k) + ":00", "-", 5});
    }
    const std::vector<double> stage = {60e6, 61e6, 59e6, 70e6, 71e6, 70e6};
    const std::vector<double> wall = {100e6, 101e6, 99e6, 100e6, 101e6, 100e6};
    page.series.push_back({"wall time", HistoryUnit::nanoseconds, wall, pycroscope::analysis::detect_step(wall)});
    page.series.push_back({"self time of <script>alert(1)</script>", HistoryUnit::nanoseconds, stage,
                           pycroscope::analysis::detect_step(stage)});
    return page;
}

TEST(HistoryPage, DrawsEverySessionAndTheStepWhereTheRegressionBegan) {
    const std::string html = pycroscope::report::history_html(six_sessions());
    EXPECT_EQ(count(html, "<svg class=\"chart\""), 2u);
    EXPECT_EQ(count(html, "<circle class=\"point\""), 12u);
    EXPECT_EQ(count(html, "<tr><td>s"), 6u);
    // One step, on the stage's chart, before s4; none on the wall time's.
    EXPECT_EQ(count(html, "<line class=\"step\""), 1u);
    EXPECT_NE(html.find("data-step=\"s4\""), std::string::npos);
    EXPECT_NE(html.find("regression began at s4: +16.7%"), std::string::npos) << html;
    EXPECT_NE(html.find("<p class=\"verdict none\">no step</p>"), std::string::npos);
    EXPECT_NE(html.find("<td>70.00 ms</td>"), std::string::npos);
}

TEST(HistoryPage, NamesAreTextNeverMarkup) {
    const std::string html = pycroscope::report::history_html(six_sessions());
    EXPECT_EQ(html.find("<script"), std::string::npos);
    EXPECT_NE(html.find("self time of &lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
}

TEST(HistoryPage, FewerThanFourSessionsSayNoStepCanBeFound) {
    HistoryPage page = six_sessions();
    page.sessions.resize(3);
    for (HistorySeries& s : page.series) {
        s.values.resize(3);
        s.step = pycroscope::analysis::detect_step(s.values);
    }
    const std::string html = pycroscope::report::history_html(page);
    EXPECT_EQ(count(html, "too few sessions for step detection"), 2u);
    EXPECT_EQ(count(html, "<line class=\"step\""), 0u);
    const auto dir = report_test::work_dir();
    pycroscope::report::write_history_page((dir / "history.html").string(), page);
    EXPECT_EQ(report_test::read_text(dir / "history.html"), html);
}

} // namespace
} // namespace history_page_test
