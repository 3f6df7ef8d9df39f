// The report in a real browser: headless chromium opens report.html from a
// file URL with the page's self test on (#selftest), and --dump-dom hands
// back the DOM with the test's JSON result in <pre id="pycroscope-selftest">.
// The page's own test counts console errors and uncaught exceptions, what
// each panel drew, and clicks a flame-graph box through the canvas's real
// click handler. A page that loads but draws nothing fails here.
//
// chromium --dump-dom instead of selenium: one package (chromium), no driver
// to keep in step with the browser, and the checks run inside the page where
// they can see the canvas's boxes. Skipped when no chromium is installed.

#include "pycroscope/report/history_page.hpp"
#include "pycroscope/report/html_report.hpp"
#include "pycroscope/report/json_document.hpp"

#include "report/report_test_helpers.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

using pycroscope::report::JsonValue;
using pycroscope::report::ReportInputs;
using pycroscope::report::write_html_report;
namespace fs = std::filesystem;

namespace {

std::string find_chromium() {
    if (const char* env = std::getenv("PYCROSCOPE_CHROMIUM")) {
        return env;
    }
    const char* path = std::getenv("PATH");
    std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
    std::size_t start = 0;
    while (start <= dirs.size()) {
        std::size_t end = dirs.find(':', start);
        if (end == std::string::npos) {
            end = dirs.size();
        }
        const std::string dir = dirs.substr(start, end - start);
        for (const char* name : {"chromium", "chromium-browser", "google-chrome"}) {
            const fs::path candidate = fs::path(dir) / name;
            if (!dir.empty() && ::access(candidate.c_str(), X_OK) == 0) {
                return candidate.string();
            }
        }
        start = end + 1;
    }
    return "";
}

std::string percent_encode(const std::string& text, bool keep_slash) {
    static const char hex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
            c == '.' || c == '~' || (keep_slash && c == '/')) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

std::string html_unescape(std::string text) {
    text = report_test::replace_all(text, "&lt;", "<");
    text = report_test::replace_all(text, "&gt;", ">");
    text = report_test::replace_all(text, "&quot;", "\"");
    text = report_test::replace_all(text, "&#39;", "'");
    text = report_test::replace_all(text, "&nbsp;", "\xc2\xa0");
    return report_test::replace_all(text, "&amp;", "&");
}

struct Page {
    std::string dom;
    std::string log;
    JsonValue result;
};

std::vector<std::string> chromium_flags(const fs::path& profile) {
    return {"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--user-data-dir=" + profile.string(), "--window-size=1400,1000"};
}

std::string command_of(const std::string& chromium, const std::vector<std::string>& flags) {
    std::string command = "timeout 240 " + report_test::quote(chromium);
    for (const auto& flag : flags) {
        command += " " + report_test::quote(flag);
    }
    return command;
}

// Loads html with the self test on; fails the test when no result came back.
Page load(const std::string& chromium, const fs::path& html, const std::string& hot = "") {
    Page page;
    const fs::path work = html.parent_path();
    const fs::path profile = work / "chromium-profile";
    fs::remove_all(profile);
    std::string url = "file://" + percent_encode(fs::absolute(html).string(), true) + "#selftest";
    if (!hot.empty()) {
        url += "&hot=" + percent_encode(hot, false);
    }
    auto flags = chromium_flags(profile);
    flags.push_back("--enable-logging=stderr");
    flags.push_back("--v=0");
    flags.push_back("--dump-dom");
    flags.push_back(url);
    const int status = report_test::run(command_of(chromium, flags) + " > " + report_test::quote((work / "dom.html").string()) +
                                        " 2> " + report_test::quote((work / "chromium.log").string()));
    EXPECT_EQ(status, 0) << "chromium failed; see " << (work / "chromium.log");
    page.dom = report_test::read_text(work / "dom.html");
    page.log = report_test::read_text(work / "chromium.log");
    const std::string open = "<pre id=\"pycroscope-selftest\">";
    // The last one: the page's script text mentions the element too.
    const std::size_t start = page.dom.rfind(open);
    if (start == std::string::npos) {
        ADD_FAILURE() << "the page's self test did not run (a script error?); chromium log:\n" << page.log;
        return page;
    }
    const std::size_t end = page.dom.find("</pre>", start);
    page.result = pycroscope::report::parse_json(html_unescape(page.dom.substr(start + open.size(), end - start - open.size())));
    fs::remove_all(profile);
    return page;
}

void screenshot(const std::string& chromium, const fs::path& html, const fs::path& png) {
    const fs::path profile = html.parent_path() / "chromium-profile-shot";
    fs::remove_all(profile);
    auto flags = chromium_flags(profile);
    flags.back() = "--window-size=1400,2200";
    flags.push_back("--hide-scrollbars");
    flags.push_back("--screenshot=" + fs::absolute(png).string());
    flags.push_back("file://" + percent_encode(fs::absolute(html).string(), true));
    EXPECT_EQ(report_test::run(command_of(chromium, flags) + " > /dev/null 2>&1"), 0);
    EXPECT_TRUE(fs::exists(png) && fs::file_size(png) > 10000) << png << " is missing or blank";
    fs::remove_all(profile);
}

double number(const Page& page, const char* key) { return page.result.get_number(key); }

void expect_no_errors(const Page& page) {
    const JsonValue* errors = page.result.find("errors");
    ASSERT_NE(errors, nullptr);
    for (const auto& error : errors->items()) {
        ADD_FAILURE() << "page error: " << error.text();
    }
    EXPECT_EQ(page.log.find("Uncaught"), std::string::npos) << page.log;
    EXPECT_EQ(number(page, "injected"), 0.0);
    EXPECT_EQ(number(page, "scripts"), 2.0);
}

std::string panel_status(const Page& page, const char* panel) {
    const JsonValue* panels = page.result.find("panels");
    return panels != nullptr ? panels->get_string(panel) : "";
}

#define REQUIRE_CHROMIUM(chromium)                                                  \
    const std::string chromium = find_chromium();                                   \
    if (chromium.empty()) {                                                         \
        GTEST_SKIP() << "no chromium on PATH (set PYCROSCOPE_CHROMIUM to use one)"; \
    }

// Runs `pycroscope profile` on script into dir; its report.html is the page.
void profile_script(const fs::path& script, const fs::path& dir) {
#ifdef PYCROSCOPE_CLI_PATH
    const std::string command = report_test::quote(PYCROSCOPE_CLI_PATH) + " profile --sinks json,folded --output-dir " +
                                report_test::quote(dir.string()) + " " + report_test::quote(script.string()) +
                                " > " + report_test::quote((dir.parent_path() / "cli.log").string()) + " 2>&1";
    ASSERT_EQ(report_test::run(command), 0) << report_test::read_text(dir.parent_path() / "cli.log");
    ASSERT_TRUE(fs::exists(dir / "report.html")) << "pycroscope profile wrote no report.html";
    ASSERT_TRUE(fs::exists(dir / "report.md")) << "pycroscope profile wrote no report.md";
#else
    (void)script;
    (void)dir;
    GTEST_SKIP() << "the pycroscope command is not built (no Python embed)";
#endif
}

} // namespace

TEST(BrowserReport, FixtureDrawsEveryPanelAndAFlameBoxClickZooms) {
    REQUIRE_CHROMIUM(chromium);
    const auto dir = report_test::work_dir();
    report_test::copy_fixture("full", dir);
    write_html_report((dir / "report.html").string(), ReportInputs::from_output_dir(dir.string()));
    const Page page = load(chromium, dir / "report.html", "slow_sum");
    expect_no_errors(page);
    for (const char* panel : {"overview", "flame", "callgraph", "timeline", "hotspots", "source", "memory", "imports",
                              "io", "exceptions", "gc", "system", "complexity"}) {
        EXPECT_EQ(panel_status(page, panel), "rendered") << panel;
    }
    EXPECT_GE(number(page, "flame_boxes"), 8.0);
    EXPECT_EQ(number(page, "flame_hot_boxes"), 2.0); // under MainThread and under pool-1
    EXPECT_TRUE(page.result.find("flame_clicked")->as_bool());
    EXPECT_EQ(page.result.get_string("flame_zoom"), "slow_sum");
    EXPECT_TRUE(page.result.find("flame_zoom_full_width")->as_bool());
    EXPECT_NE(page.result.get_string("flame_search").find("search matches"), std::string::npos);
    EXPECT_EQ(page.result.get_string("selected"), "slow_sum");
    EXPECT_EQ(number(page, "hotspot_selected_rows"), 1.0);
    EXPECT_EQ(number(page, "callgraph_rows"), 1.0); // the recorded edge main -> slow_sum
    EXPECT_EQ(number(page, "heatmap_lines"), 30.0); // app.py
    EXPECT_EQ(number(page, "heatmap_hot_lines"), 3.0); // lines 11, 12 and 19 carry time or allocations
    EXPECT_EQ(number(page, "source_badges"), 3.0);  // two findings, one recommendation
    EXPECT_EQ(number(page, "findings"), 3.0);
    EXPECT_GE(number(page, "memory_points"), 6.0 + 2.0); // live-bytes points and lifetime bars
    EXPECT_GE(number(page, "timeline_marks"), 4.0);
    // Program text is shown as text.
    EXPECT_NE(page.dom.find("&lt;b&gt;bold&lt;/b&gt;"), std::string::npos);
    EXPECT_EQ(page.dom.find("<b>bold</b>"), std::string::npos);
    screenshot(chromium, dir / "report.html", dir / "report.png");
}

TEST(BrowserReport, AnEmptySessionSaysNotRecordedInEveryPanel) {
    REQUIRE_CHROMIUM(chromium);
    const auto dir = report_test::work_dir();
    report_test::copy_fixture("empty", dir);
    write_html_report((dir / "report.html").string(), ReportInputs::from_output_dir(dir.string()));
    const Page page = load(chromium, dir / "report.html");
    expect_no_errors(page);
    EXPECT_EQ(panel_status(page, "overview"), "rendered");
    for (const char* panel : {"flame", "callgraph", "hotspots", "source", "memory", "imports", "io", "exceptions", "gc",
                              "system", "complexity"}) {
        EXPECT_EQ(panel_status(page, panel), "absent") << panel;
    }
    EXPECT_GE(report_test::count(page.dom, "not recorded in this run."), 11u);
}

TEST(BrowserReport, AFolderWithoutInputsStillRendersAndSaysWhy) {
    REQUIRE_CHROMIUM(chromium);
    const auto dir = report_test::work_dir();
    write_html_report((dir / "report.html").string(), ReportInputs::from_output_dir(dir.string()));
    const Page page = load(chromium, dir / "report.html");
    expect_no_errors(page);
    EXPECT_EQ(panel_status(page, "overview"), "rendered");
    EXPECT_NE(page.dom.find("no session.json at"), std::string::npos);
}

TEST(BrowserReport, RealRunsOfTwoWorkloadsDrawTheirHotFunctions) {
    REQUIRE_CHROMIUM(chromium);
    const auto dir = report_test::work_dir();
    for (const char* workload : {"fib_calls", "alloc_heavy"}) {
        SCOPED_TRACE(workload);
        const fs::path out = dir / workload;
        profile_script(fs::path(PYCROSCOPE_SOURCE_DIR) / "benchmarks" / "python" / "workloads" / (std::string(workload) + ".py"),
                       out);
        if (HasFatalFailure() || IsSkipped()) {
            return;
        }
        const Page page = load(chromium, out / "report.html");
        expect_no_errors(page);
        const std::string hot = page.result.get_string("hot");
        EXPECT_FALSE(hot.empty());
        EXPECT_GE(number(page, "flame_hot_boxes"), 1.0) << hot;
        EXPECT_EQ(page.result.get_string("flame_zoom"), hot);
        EXPECT_TRUE(page.result.find("flame_zoom_full_width")->as_bool());
        EXPECT_GE(number(page, "hotspot_rows"), 5.0);
        EXPECT_GE(number(page, "callgraph_rows"), 1.0);
        EXPECT_GE(number(page, "heatmap_hot_lines"), 1.0);
        EXPECT_GE(number(page, "memory_points"), 1.0);
        for (const char* panel : {"overview", "flame", "timeline", "hotspots", "source", "memory", "gc", "system"}) {
            EXPECT_EQ(panel_status(page, panel), "rendered") << panel;
        }
        screenshot(chromium, out / "report.html", out / "report.png");
    }
}

TEST(BrowserReport, HostileFunctionAndFileNamesRenderAsText) {
    REQUIRE_CHROMIUM(chromium);
    const auto dir = report_test::work_dir();
    // A file name may hold no '/', so the file carries an <img> tag; the
    // functions carry </script>, quotes, a newline, U+2028 and non-ASCII.
    const fs::path script = dir / "h<img src=x onerror=alert(1)>'\"\xc3\xa9.py";
    report_test::write_text(script,
                            "import types\n"
                            "def make(name):\n"
                            "    def f(n):\n"
                            "        return sum(i * i for i in range(n))\n"
                            "    return types.FunctionType(f.__code__.replace(co_name=name, co_qualname=name), globals(), name)\n"
                            "hostile = make('<script>alert(1)</script>')\n"
                            "quoted = make('q\"uo\\'te\\nnew</script><img src=x onerror=alert(2)> \\u00e9\\u2028')\n"
                            "for _ in range(300):\n"
                            "    hostile(2000)\n"
                            "    quoted(2000)\n"
                            "exec(compile('def g():\\n    return [str(i) for i in range(20000)]\\ng()\\n',\n"
                            "             '<img src=y onerror=alert(3)>.py', 'exec'))\n");
    const fs::path out = dir / "out";
    profile_script(script, out);
    if (HasFatalFailure() || IsSkipped()) {
        return;
    }
    const Page page = load(chromium, out / "report.html", "<script>alert(1)</script>");
    expect_no_errors(page);
    EXPECT_GE(number(page, "flame_hot_boxes"), 1.0);
    EXPECT_EQ(page.result.get_string("flame_zoom"), "<script>alert(1)</script>");
    EXPECT_GE(number(page, "heatmap_lines"), 12.0); // the hostile file itself, read from disk
    EXPECT_EQ(page.dom.find("<img"), std::string::npos);
    EXPECT_EQ(page.dom.find("<script>alert"), std::string::npos);
    EXPECT_NE(page.dom.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
    EXPECT_NE(page.dom.find("h&lt;img src=x onerror=alert(1)&gt;'\"\xc3\xa9.py"), std::string::npos);
    // report.md shows the names in code spans, where markup is inert: every
    // "<img" sits after an odd number of backquotes on its line.
    const std::string md = report_test::read_text(out / "report.md");
    std::size_t spans = 0;
    for (std::size_t at = md.find("<img"); at != std::string::npos; at = md.find("<img", at + 1)) {
        const std::size_t line_start = md.rfind('\n', at) + 1;
        EXPECT_EQ(report_test::count(md.substr(line_start, at - line_start), "`") % 2, 1u) << md.substr(line_start, 200);
        ++spans;
    }
    EXPECT_GE(spans, 2u);
}

// history.html (report/history_page.hpp) has no script: chromium's DOM of it
// holds each chart's line, its points and the step, and a hostile name as text.
TEST(BrowserHistory, TheHistoryPageDrawsItsChartsAndTheStep) {
    REQUIRE_CHROMIUM(chromium);
    const auto dir = report_test::work_dir();
    pycroscope::report::HistoryPage page;
    page.script = "/w/<b>app</b>.py";
    for (int k = 1; k <= 6; ++k) {
        page.sessions.push_back({"s" + std::to_string(k), "2026-12-07", "-", 5});
    }
    const std::vector<double> stage = {60e6, 61e6, 59e6, 70e6, 71e6, 70e6};
    page.series.push_back({"self time of stage", pycroscope::report::HistoryUnit::nanoseconds, stage,
                           pycroscope::analysis::detect_step(stage)});
    pycroscope::report::write_history_page((dir / "history.html").string(), page);
    const fs::path profile = dir / "chromium-profile";
    auto flags = chromium_flags(profile);
    flags.push_back("--dump-dom");
    flags.push_back("file://" + percent_encode((dir / "history.html").string(), true));
    ASSERT_EQ(report_test::run(command_of(chromium, flags) + " > " + report_test::quote((dir / "dom.html").string()) +
                               " 2> " + report_test::quote((dir / "chromium.log").string())),
              0)
        << report_test::read_text(dir / "chromium.log");
    const std::string dom = report_test::read_text(dir / "dom.html");
    EXPECT_NE(dom.find("<polyline class=\"trend\""), std::string::npos) << dom;
    EXPECT_NE(dom.find("data-step=\"s4\""), std::string::npos) << dom;
    EXPECT_NE(dom.find("regression began at s4"), std::string::npos) << dom;
    EXPECT_EQ(dom.find("<b>app</b>"), std::string::npos) << dom;
    EXPECT_NE(dom.find("&lt;b&gt;app&lt;/b&gt;"), std::string::npos) << dom;
    fs::remove_all(profile);
}
