// analysis::find_patterns, recommend and health_score over hand-made
// Profiles and source facts: time shares from lines or from the function,
// severities from the thresholds, Amdahl estimates, the never-called
// functions, the options, the order of recommendations and the score's formula.

#include <pycroscope/analysis/answers.hpp>

#include <gtest/gtest.h>

namespace findings_test {
namespace {

using namespace pycroscope;
using analysis::Severity;

model::Function function(const char* name, std::uint32_t line, std::uint64_t calls, std::uint64_t self,
                         std::uint64_t inclusive, LocationKind kind = LocationKind::python_function) {
    model::Function f;
    f.name = name;
    f.file = kind == LocationKind::python_function ? "/src/app.py" : "";
    f.line = line;
    f.kind = kind;
    f.calls = calls;
    f.self = self;
    f.inclusive = inclusive;
    return f;
}

// <module> (1000) -> hot (700, of which list.pop 200) ; <module> -> cold (10)
model::Profile profile() {
    model::Profile p;
    p.total = 1000;
    p.functions = {function("<module>", 1, 1, 290, 1000), function("hot", 10, 1, 500, 700),
                   function("list.pop", 0, 5000, 200, 200, LocationKind::c_function), function("cold", 20, 1, 10, 10)};
    p.edges = {{0, 1, 1, 700, 500}, {0, 3, 1, 10, 10}, {1, 2, 5000, 200, 200}};
    return p;
}

analysis::SourceFacts facts() {
    analysis::SourceFile file;
    file.file = "/src/app.py";
    file.sites = {{"list_front_ops", 12, 12, "hot", 10, "q.pop(0) shifts every element of the list"},
                  {"membership_in_list", 22, 22, "cold", 20, "`x in xs` searches the list xs"},
                  {"unused_import", 1, 1, "<module>", 0, "os is imported but never used"}};
    file.functions = {{"hot", 10, 10, 18, 3}, {"cold", 20, 20, 25, 12}, {"unused", 30, 31, 33, 1}};
    analysis::SourceFile library;
    library.file = "/usr/lib/python3.11/json/__init__.py";
    library.skipped = "library";
    analysis::SourceFacts out;
    out.files = {file, library};
    return out;
}

const analysis::Finding* find(const analysis::FindingReport& r, const std::string& kind, const std::string& fn) {
    for (const auto& f : r.findings) {
        if (f.kind == kind && f.function == fn) {
            return &f;
        }
    }
    return nullptr;
}

TEST(Findings, WithoutLineDataTheShareIsTheFunctionsOwnTimeWithItsCCalls) {
    const auto r = analysis::find_patterns(profile(), facts());
    const auto* hot = find(r, "list_front_ops", "hot");
    ASSERT_NE(hot, nullptr);
    EXPECT_DOUBLE_EQ(hot->time_share, 0.7); // self 500 + list.pop 200 of 1000
    EXPECT_STREQ(hot->time_basis, "function");
    EXPECT_EQ(hot->severity, Severity::critical);
    EXPECT_DOUBLE_EQ(hot->estimated_saving, 0.7 * analysis::expected_gain("list_front_ops"));
    EXPECT_DOUBLE_EQ(hot->estimated_speedup, 1.0 / (1.0 - hot->estimated_saving)); // Amdahl
    const auto* cold = find(r, "membership_in_list", "cold");
    ASSERT_NE(cold, nullptr);
    EXPECT_DOUBLE_EQ(cold->time_share, 0.01);
    EXPECT_EQ(cold->severity, Severity::low);
    EXPECT_EQ(r.findings.front().kind, "list_front_ops"); // most time first
    EXPECT_FALSE(r.line_data);
    EXPECT_EQ(r.files_analysed, 1u);
    ASSERT_EQ(r.skipped.size(), 1u);
    EXPECT_EQ(r.skipped[0].reason, "library");
}

TEST(Findings, LineDataGivesTheShareOfTheSitesLinesOnly) {
    model::Profile p = profile();
    model::Line line;
    line.file = "/src/app.py";
    line.function = 1;
    line.line = 12;
    line.time = 150;
    model::Line other = line;
    other.line = 13;
    other.time = 400;
    p.lines = {line, other};
    const auto r = analysis::find_patterns(p, facts());
    const auto* hot = find(r, "list_front_ops", "hot");
    ASSERT_NE(hot, nullptr);
    EXPECT_DOUBLE_EQ(hot->time_share, 0.15);
    EXPECT_STREQ(hot->time_basis, "lines");
    EXPECT_EQ(hot->severity, Severity::high);
    const auto* cold = find(r, "membership_in_list", "cold");
    ASSERT_NE(cold, nullptr);
    EXPECT_DOUBLE_EQ(cold->time_share, 0.0); // its line never ran
    EXPECT_TRUE(r.line_data);
}

TEST(Findings, ComplexityAndNeverCalledFunctionsComeFromTheDefinitions) {
    const auto r = analysis::find_patterns(profile(), facts());
    const auto* complex = find(r, "high_complexity", "cold");
    ASSERT_NE(complex, nullptr);
    EXPECT_EQ(complex->line, 20u);
    EXPECT_EQ(complex->end_line, 25u);
    EXPECT_EQ(complex->estimated_saving, 0.0);
    EXPECT_EQ(complex->estimated_speedup, 1.0);
    EXPECT_EQ(find(r, "high_complexity", "hot"), nullptr); // McCabe 3
    const auto* dead = find(r, "dead_code", "unused");
    ASSERT_NE(dead, nullptr);
    EXPECT_EQ(dead->line, 31u); // the def, not its decorator
    EXPECT_EQ(find(r, "dead_code", "hot"), nullptr);
    // A sampled run cannot tell a function that never ran.
    model::Profile sampled = profile();
    sampled.unit = model::Unit::samples;
    EXPECT_EQ(find(analysis::find_patterns(sampled, facts()), "dead_code", "unused"), nullptr);
}

TEST(Findings, OptionsSelectKindsPresetsAndAThreshold) {
    analysis::FindingOptions options;
    std::string error;
    ASSERT_TRUE(options.select("performance,-list_front_ops", error)) << error;
    EXPECT_TRUE(options.wants("membership_in_list"));
    EXPECT_FALSE(options.wants("list_front_ops"));
    EXPECT_FALSE(options.wants("dead_code"));
    auto r = analysis::find_patterns(profile(), facts(), options);
    ASSERT_EQ(r.findings.size(), 1u);
    EXPECT_EQ(r.findings[0].kind, "membership_in_list");

    options = analysis::FindingOptions{};
    options.threshold = Severity::high;
    r = analysis::find_patterns(profile(), facts(), options);
    ASSERT_EQ(r.findings.size(), 1u);
    EXPECT_EQ(r.findings[0].kind, "list_front_ops");
    EXPECT_EQ(r.below_threshold, 4u); // membership, unused import, complexity, dead code

    EXPECT_FALSE(options.select("maintainability,loops", error));
    EXPECT_NE(error.find("unknown pattern 'loops'"), std::string::npos);
    options.enabled = false;
    r = analysis::find_patterns(profile(), facts(), options);
    EXPECT_FALSE(r.enabled);
    EXPECT_TRUE(r.findings.empty());
}

TEST(Recommendations, AreOrderedByTheirAmdahlEstimateAndJoinHotspotsAndIo) {
    const model::Profile p = profile();
    const auto found = analysis::find_patterns(p, facts());
    analysis::IoFacts io;
    io.present = true;
    io.sites.push_back({"/src/app.py", 5, "<module>", "read", 40, 100}); // 10% of the run
    analysis::MemoryFacts memory;
    memory.present = true;
    memory.growing.push_back({"/src/app.py", 7, "<module>", 1 << 20, 2048.0});
    const auto recs = analysis::recommend(p, analysis::rank_hotspots(p), found.findings, memory, io);
    ASSERT_GE(recs.size(), 4u);
    EXPECT_EQ(recs[0].kind, "list_front_ops");
    EXPECT_DOUBLE_EQ(recs[0].estimated_saving, 0.56);
    // <module> has 29% self and no finding of its own with a gain: a hotspot.
    EXPECT_EQ(recs[1].kind, "hot_function");
    EXPECT_EQ(recs[1].function, "<module>");
    EXPECT_DOUBLE_EQ(recs[1].estimated_saving, 0.145);
    EXPECT_EQ(recs[2].kind, "blocking_io");
    EXPECT_DOUBLE_EQ(recs[2].estimated_saving, 0.05);
    EXPECT_EQ(recs.back().kind, "memory_growth");
    for (std::size_t i = 1; i < recs.size(); ++i) {
        EXPECT_GE(recs[i - 1].estimated_saving, recs[i].estimated_saving);
        EXPECT_GE(recs[i - 1].estimated_speedup, recs[i].estimated_speedup);
    }
    // hot has a finding: no separate hotspot entry for it.
    for (const auto& r : recs) {
        EXPECT_FALSE(r.kind == "hot_function" && r.function == "hot");
    }
}

TEST(HealthScore, FollowsItsFormulaAndNamesWhatCostTheMost) {
    const model::Profile p = profile();
    const auto found = analysis::find_patterns(p, facts());
    analysis::IoFacts io;
    io.present = true;
    io.sites.push_back({"/src/app.py", 5, "<module>", "read", 40, 100});
    const auto h = analysis::health_score(p, found.findings, analysis::MemoryFacts{}, io);
    double time = 0, points = 0;
    for (const auto& f : found.findings) {
        time += 100 * f.estimated_saving;
        points += analysis::severity_points(f.severity);
    }
    EXPECT_DOUBLE_EQ(h.time_penalty, std::min(40.0, time));
    EXPECT_DOUBLE_EQ(h.pattern_penalty, std::min(30.0, points));
    EXPECT_DOUBLE_EQ(h.io_penalty, 5.0);
    EXPECT_EQ(h.score, static_cast<int>(100.0 - h.time_penalty - h.pattern_penalty - h.io_penalty + 0.5));
    ASSERT_FALSE(h.costs.empty());
    EXPECT_EQ(h.costs[0].item, "list_front_ops in hot");
    const auto clean = analysis::health_score(p, {}, analysis::MemoryFacts{}, analysis::IoFacts{});
    EXPECT_EQ(clean.score, 100);
    EXPECT_TRUE(clean.costs.empty());
}

} // namespace
} // namespace findings_test
