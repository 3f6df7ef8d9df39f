// report::terminal_summary: every kind of function in the table, the hot
// path, and names from the profiled program escaped before they reach a terminal.

#include <pycroscope/report/terminal_summary.hpp>

#include <gtest/gtest.h>

#include <string>

namespace terminal_summary_test {
namespace {

using namespace pycroscope;

model::Function function(const char* name, const char* file, std::uint64_t calls, std::uint64_t self,
                         std::uint64_t inclusive, LocationKind kind) {
    model::Function f;
    f.name = name;
    f.file = file;
    f.line = file[0] != '\0' ? 3 : 0;
    f.kind = kind;
    f.calls = calls;
    f.self = self;
    f.inclusive = inclusive;
    return f;
}

model::Profile sleeping() {
    model::Profile p;
    p.total = 1000000000;
    p.functions = {function("<module>", "s.py", 1, 100000000, 1000000000, LocationKind::python_function),
                   function("wait", "s.py", 4, 50000000, 850000000, LocationKind::python_function),
                   function("sleep", "", 4, 800000000, 800000000, LocationKind::c_function),
                   function("evil\x1b[2J\r\n\xe2\x80\xaeoops", "s.py", 1, 50000000, 50000000,
                            LocationKind::python_function)};
    p.edges = {{0, 1, 4, 850000000, 50000000}, {1, 2, 4, 800000000, 800000000}, {0, 3, 1, 50000000, 50000000}};
    p.tree = {model::TreeNode{model::no_index, model::no_index, 0, 0, 1000000000},
              model::TreeNode{0, 0, 1, 100000000, 1000000000}, model::TreeNode{1, 1, 4, 50000000, 850000000},
              model::TreeNode{2, 2, 4, 800000000, 800000000}, model::TreeNode{3, 1, 1, 50000000, 50000000}};
    return p;
}

TEST(TerminalSummary, CFunctionsLeadTheTableWithTheirShareAndSeverity) {
    const std::string out = report::terminal_summary(sleeping());
    const std::size_t header = out.find("top 4 of 4 functions by self time (all kinds)");
    ASSERT_NE(header, std::string::npos) << out;
    const std::size_t first = out.find('\n', out.find("severity")) + 1;
    const std::string row = out.substr(first, out.find('\n', first) - first);
    EXPECT_NE(row.find("800.000"), std::string::npos) << row;
    EXPECT_NE(row.find("80.0%"), std::string::npos) << row;
    EXPECT_NE(row.find("critical"), std::string::npos) << row;
    EXPECT_NE(row.find("sleep"), std::string::npos) << row;
    EXPECT_EQ(row.substr(row.size() - 2), " c") << row; // no file: the kind stands in
    EXPECT_NE(out.find("hot path: <module> (100.0%) > wait (85.0%) > sleep (80.0%)"), std::string::npos) << out;
    // Only the critical and high functions get their callers listed.
    EXPECT_NE(out.find("callers of sleep: wait (4 calls, 100.0%)\n"), std::string::npos) << out;
    EXPECT_EQ(out.find("callers of wait"), std::string::npos) << out;
}

TEST(TerminalSummary, NamesAreEscapedForTheTerminal) {
    const std::string out = report::terminal_summary(sleeping());
    EXPECT_EQ(out.find('\x1b'), std::string::npos);
    EXPECT_EQ(out.find('\r'), std::string::npos);
    EXPECT_EQ(out.find("\xe2\x80\xae"), std::string::npos);
    EXPECT_NE(out.find("evil\\x1b[2J\\r\\n\\u{202e}oops"), std::string::npos) << out;
}

TEST(TerminalSummary, SampledProfilesShowSamplesAndNoCalls) {
    model::Profile p = sleeping();
    p.unit = model::Unit::samples;
    p.total = 100;
    p.functions[2].self = p.functions[2].inclusive = 80;
    p.functions[2].calls = 0;
    const std::string out = report::terminal_summary(p);
    EXPECT_NE(out.find("by self samples"), std::string::npos) << out;
    EXPECT_NE(out.find("80.0%"), std::string::npos) << out;
}

TEST(TerminalSummary, AnEmptyProfileSaysSo) {
    EXPECT_EQ(report::terminal_summary(model::Profile{}), "pycroscope: no functions recorded\n");
}

} // namespace
} // namespace terminal_summary_test
