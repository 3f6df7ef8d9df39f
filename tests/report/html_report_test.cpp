#include "pycroscope/report/html_report.hpp"

#include "report/report_test_helpers.hpp"

#include <gtest/gtest.h>

#include <string>

using pycroscope::report::parse_json;
using pycroscope::report::render_html_report;
using pycroscope::report::ReportError;
using pycroscope::report::ReportInputs;
using pycroscope::report::write_html_report;

namespace {

std::string data_blob(const std::string& page) {
    const std::string open = "<script id=\"pycroscope-data\" type=\"application/json\">";
    const std::size_t start = page.find(open);
    EXPECT_NE(start, std::string::npos);
    const std::size_t end = page.find("</script>", start);
    return page.substr(start + open.size(), end - start - open.size());
}

} // namespace

TEST(HtmlReport, IsOneSelfContainedPageWithTheDataTheScriptAndTheStyle) {
    const auto dir = report_test::work_dir();
    report_test::copy_fixture("full", dir);
    const std::string page = render_html_report(ReportInputs::from_output_dir(dir.string()));
    EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0u);
    EXPECT_EQ(report_test::count(page, "<script"), 2u);
    EXPECT_EQ(report_test::count(page, "</script>"), 2u);
    EXPECT_EQ(report_test::count(page, "<style>"), 1u);
    EXPECT_NE(page.find("Content-Security-Policy"), std::string::npos);
    EXPECT_NE(page.find("default-src 'none'"), std::string::npos);
    // Nothing is fetched: no external script, style, image or link.
    EXPECT_EQ(page.find(" src="), std::string::npos);
    EXPECT_EQ(page.find("<link"), std::string::npos);
    EXPECT_EQ(page.find("@import"), std::string::npos);
    EXPECT_EQ(page.find("url("), std::string::npos);
    // The embedded data is the report data, readable back.
    const auto data = parse_json(data_blob(page));
    EXPECT_EQ(data.find("session")->find("health")->get_number("score"), 62.0);
}

TEST(HtmlReport, HostileNamesStayTextInTheTitleAndInsideTheDataScript) {
    const auto dir = report_test::work_dir();
    const std::string hostile = "</script><script>alert(1)</script><!--\"'\n\xe2\x80\xa8\xc3\xa9";
    std::string escaped_name;
    pycroscope::report::append_json_string(escaped_name, hostile, pycroscope::report::JsonEscape::plain);
    report_test::write_text(dir / "session.json",
                            "{\"duration_ns\":5,\"process\":{\"name\":" + escaped_name +
                                "},\"functions\":[{\"name\":" + escaped_name + ",\"file\":" + escaped_name +
                                ",\"line\":1,\"self_ns\":5}]}");
    report_test::write_text(dir / "stacks.folded", "T;</script><img src=x onerror=alert(1)> 5\n");
    const std::string page = render_html_report(ReportInputs::from_output_dir(dir.string()));
    EXPECT_EQ(report_test::count(page, "<script"), 2u);
    EXPECT_EQ(report_test::count(page, "</script>"), 2u);
    EXPECT_EQ(page.find("<img"), std::string::npos);
    EXPECT_EQ(page.find("alert(1)</"), std::string::npos);
    EXPECT_NE(page.find("<title>Pycroscope report: &lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;!--&quot;&#39;"),
              std::string::npos);
    const std::string blob = data_blob(page);
    EXPECT_EQ(blob.find('<'), std::string::npos);
    EXPECT_EQ(blob.find('>'), std::string::npos);
    EXPECT_EQ(blob.find("\xe2\x80\xa8"), std::string::npos);
    // ...and the names read back intact.
    const auto data = parse_json(blob);
    EXPECT_EQ(data.find("session")->find("functions")->items().at(0).get_string("name"), hostile);
}

TEST(HtmlReport, WritesTheFileAndReportsAnUnwritablePath) {
    const auto dir = report_test::work_dir();
    report_test::copy_fixture("empty", dir);
    const auto inputs = ReportInputs::from_output_dir(dir.string());
    write_html_report((dir / "report.html").string(), inputs);
    EXPECT_EQ(report_test::read_text(dir / "report.html"), render_html_report(inputs));
    EXPECT_FALSE(std::filesystem::exists(dir / "report.html.tmp"));
    try {
        write_html_report((dir / "no" / "such" / "report.html").string(), inputs);
        FAIL() << "expected ReportError";
    } catch (const ReportError& error) {
        EXPECT_NE(std::string(error.what()).find("cannot write"), std::string::npos);
    }
}
