// analysis::rank_hotspots and hot_path over hand-made Profiles: exact
// shares, severities from the documented thresholds, callers and callees,
// and where the hot path stops.

#include <pycroscope/analysis/hotspots.hpp>

#include <gtest/gtest.h>

namespace hotspots_test {
namespace {

using namespace pycroscope;
using analysis::Severity;

model::Function function(const char* name, std::uint64_t calls, std::uint64_t self, std::uint64_t inclusive,
                         LocationKind kind = LocationKind::python_function) {
    model::Function f;
    f.name = name;
    f.file = "app.py";
    f.kind = kind;
    f.calls = calls;
    f.self = self;
    f.inclusive = inclusive;
    return f;
}

// main (1000) -> wait (800) -> sleep (780, C); main -> parse (150); main -> tiny (5); parse -> tiny (20)
model::Profile sample_profile() {
    model::Profile p;
    p.total = 1000;
    p.functions = {function("main", 1, 25, 1000), function("wait", 2, 20, 800),
                   function("sleep", 2, 780, 780, LocationKind::c_function), function("parse", 1, 150, 170),
                   function("tiny", 7, 25, 25)};
    p.edges = {{0, 1, 2, 800, 20}, {0, 3, 1, 170, 150}, {0, 4, 5, 5, 5}, {1, 2, 2, 780, 780}, {3, 4, 2, 20, 20}};
    p.tree = {model::TreeNode{model::no_index, model::no_index, 0, 0, 1000},
              model::TreeNode{0, 0, 1, 25, 1000},
              model::TreeNode{1, 1, 2, 20, 800},
              model::TreeNode{2, 2, 2, 780, 780},
              model::TreeNode{3, 1, 1, 150, 170},
              model::TreeNode{4, 4, 2, 20, 20},
              model::TreeNode{4, 1, 5, 5, 5}};
    model::Line l1;
    l1.file = "app.py";
    l1.line = 7;
    l1.function = 1;
    l1.hits = 2;
    l1.time = 790;
    l1.total = 790;
    model::Line l2 = l1;
    l2.line = 12;
    l2.function = 3;
    l2.time = l2.total = 40;
    p.lines = {l2, l1};
    return p;
}

TEST(Hotspots, FunctionsAreRankedBySelfWithSharesAndSeverity) {
    const auto r = analysis::rank_hotspots(sample_profile());
    ASSERT_EQ(r.functions.size(), 5u);
    EXPECT_EQ(r.functions[0].function, 2u); // sleep
    EXPECT_DOUBLE_EQ(r.functions[0].self_pct, 78.0);
    EXPECT_EQ(r.functions[0].severity, Severity::critical);
    EXPECT_EQ(r.functions[1].function, 3u); // parse
    EXPECT_DOUBLE_EQ(r.functions[1].total_pct, 17.0);
    EXPECT_EQ(r.functions[1].severity, Severity::high);
    // main and tiny tie on self (25): the heavier inclusive first.
    EXPECT_EQ(r.functions[2].function, 0u);
    EXPECT_EQ(r.functions[2].severity, Severity::low);
    EXPECT_EQ(r.functions[3].function, 4u);
    EXPECT_EQ(r.functions[4].function, 1u);
}

TEST(Hotspots, SeverityFollowsTheDocumentedThresholds) {
    const analysis::SeverityThresholds t;
    EXPECT_EQ(t.grade(25.0), Severity::critical);
    EXPECT_EQ(t.grade(24.9), Severity::high);
    EXPECT_EQ(t.grade(10.0), Severity::high);
    EXPECT_EQ(t.grade(9.99), Severity::medium);
    EXPECT_EQ(t.grade(3.0), Severity::medium);
    EXPECT_EQ(t.grade(2.99), Severity::low);
    EXPECT_STREQ(analysis::to_string(Severity::critical), "critical");
}

TEST(Hotspots, CallersAndCalleesCarryTheirShareOfTheFunction) {
    const auto r = analysis::rank_hotspots(sample_profile());
    const auto& tiny = r.functions[3];
    ASSERT_EQ(tiny.callers.size(), 2u);
    EXPECT_EQ(tiny.callers[0].function, 3u); // parse: 20 of 25
    EXPECT_DOUBLE_EQ(tiny.callers[0].pct, 80.0);
    EXPECT_EQ(tiny.callers[0].calls, 2u);
    EXPECT_EQ(tiny.callers[1].function, 0u);
    EXPECT_DOUBLE_EQ(tiny.callers[1].pct, 20.0);
    const auto& main = r.functions[2];
    ASSERT_EQ(main.callees.size(), 3u);
    EXPECT_EQ(main.callees[0].function, 1u);
    EXPECT_DOUBLE_EQ(main.callees[0].pct, 80.0);
    analysis::RankingOptions one;
    one.related = 1;
    EXPECT_EQ(analysis::rank_hotspots(sample_profile(), one).functions[2].callees.size(), 1u);
}

TEST(Hotspots, LinesAreRankedByTime) {
    const auto r = analysis::rank_hotspots(sample_profile());
    ASSERT_EQ(r.lines.size(), 2u);
    EXPECT_EQ(r.lines[0].line, 1u); // index into Profile::lines: line 7
    EXPECT_DOUBLE_EQ(r.lines[0].pct, 79.0);
    EXPECT_EQ(r.lines[0].severity, Severity::critical);
    EXPECT_EQ(r.lines[1].severity, Severity::medium);
}

TEST(Hotspots, HotPathFollowsTheHeaviestChildWhileItHoldsItsShare) {
    const auto path = analysis::hot_path(sample_profile());
    ASSERT_EQ(path.size(), 3u);
    EXPECT_EQ(path[0].function, 0u);
    EXPECT_EQ(path[1].function, 1u);
    EXPECT_EQ(path[2].function, 2u);
    EXPECT_DOUBLE_EQ(path[2].pct, 78.0);
    EXPECT_EQ(analysis::hot_path(sample_profile(), 79.0).size(), 2u);
}

TEST(Hotspots, HotPathWithoutATreeFollowsTheHeaviestEdges) {
    model::Profile p = sample_profile();
    p.tree.clear();
    const auto path = analysis::hot_path(p);
    ASSERT_EQ(path.size(), 3u);
    EXPECT_EQ(path[0].function, 0u);
    EXPECT_EQ(path[2].function, 2u);
}

TEST(Hotspots, AnEmptyProfileHasNoHotspots) {
    const auto r = analysis::rank_hotspots(model::Profile{});
    EXPECT_TRUE(r.functions.empty());
    EXPECT_TRUE(r.lines.empty());
    EXPECT_TRUE(r.hot_path.empty());
}

} // namespace
} // namespace hotspots_test
