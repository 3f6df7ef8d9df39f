// `pycroscope profile` ends by writing report.html and report.md into its
// output folder and lists them in its closing summary.

#include "pycroscope/report/json_document.hpp"

#include "report/report_test_helpers.hpp"

#include <gtest/gtest.h>

#include <string>

TEST(CliReport, ProfileWritesBothReportsAndListsThem) {
#ifndef PYCROSCOPE_CLI_PATH
    GTEST_SKIP() << "the pycroscope command is not built (no Python embed)";
#else
    const auto dir = report_test::work_dir();
    report_test::write_text(dir / "tiny.py",
                            "def busy(n):\n"
                            "    return sum(i * i for i in range(n))\n"
                            "for _ in range(50):\n"
                            "    busy(5000)\n");
    const auto out = dir / "out";
    // Under ASan, LeakSanitizer would report what libpython never frees at exit
    // (and the line tables attached to its code objects), changing the status.
    const int status = report_test::run("ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0\" " +
                                        report_test::quote(PYCROSCOPE_CLI_PATH) + " profile --sinks json,folded --output-dir " +
                                        report_test::quote(out.string()) + " " + report_test::quote((dir / "tiny.py").string()) +
                                        " > " + report_test::quote((dir / "cli.log").string()) + " 2>&1");
    const std::string log = report_test::read_text(dir / "cli.log");
    ASSERT_EQ(status, 0) << log;
    EXPECT_NE(log.find("  " + (out / "report.html").string() + "\n"), std::string::npos) << log;
    EXPECT_NE(log.find("  " + (out / "report.md").string() + "\n"), std::string::npos) << log;
    const std::string page = report_test::read_text(out / "report.html");
    EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0u);
    EXPECT_NE(page.find("busy"), std::string::npos);
    EXPECT_LT(page.size(), 5u * 1024 * 1024);
    const std::string md = report_test::read_text(out / "report.md");
    EXPECT_NE(md.find("`busy`"), std::string::npos) << md;
    EXPECT_NE(md.find("| script | `" + (dir / "tiny.py").string() + "` |"), std::string::npos) << md;
#endif
}
