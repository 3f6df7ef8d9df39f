// compare_runs: the noise-aware rule (threshold and Mann-Whitney), the order
// of regressions, and one run against one run.

#include <pycroscope/analysis/profile_comparison.hpp>

#include <gtest/gtest.h>

#include <vector>

namespace profile_comparison_test {
namespace {

namespace an = pycroscope::analysis;

const an::FunctionId stage_a{"stage_a", "/w/app.py", 3};
const an::FunctionId stage_b{"stage_b", "/w/app.py", 9};
const an::FunctionId helper{"helper", "/w/app.py", 15};

// A run of about 100 ms: stage_a 30 ms, stage_b scaled, a 0.1 ms helper.
an::RunMeasures run(double b_ms, double jitter) {
    an::RunMeasures r;
    r.wall_ns = (100 + b_ms - 30 + jitter) * 1e6;
    r.peak_bytes = 1e6;
    r.functions[stage_a] = {30e6 + jitter * 1e6, 30e6 + jitter * 1e6, 1, 0};
    r.functions[stage_b] = {b_ms * 1e6, b_ms * 1e6, 1, 4096};
    r.functions[helper] = {0.1e6 * (1 + jitter), 0.1e6 * (1 + jitter), 10, 0};
    return r;
}

std::vector<an::RunMeasures> side(double b_ms) {
    std::vector<an::RunMeasures> runs;
    const double jitters[] = {0.0, 0.4, -0.3, 0.2, -0.1, 0.3, -0.2};
    for (double j : jitters) {
        runs.push_back(run(b_ms, j));
    }
    return runs;
}

TEST(ProfileComparison, ATenPercentSlowerStageIsASignificantRegressionNamedFirst) {
    const auto result = an::compare_runs(side(30), side(33));
    ASSERT_TRUE(result.statistics);
    ASSERT_FALSE(result.regressions.empty());
    EXPECT_TRUE(result.has_significant_regression());
    EXPECT_EQ(result.regressions[0].function, stage_b);
    EXPECT_EQ(result.regressions[0].metric, an::Metric::self_time);
    EXPECT_NEAR(result.regressions[0].change, 0.10, 1e-9);
    EXPECT_LT(result.regressions[0].p_value, 0.01);
    // stage_a did not move; the whole run moved by 3%: below the threshold.
    for (const auto& r : result.regressions) {
        EXPECT_FALSE(r.function == stage_a);
        EXPECT_FALSE(r.function.name.empty() && r.metric == an::Metric::wall_time);
    }
}

TEST(ProfileComparison, IdenticalSidesHaveNoRegression) {
    const auto result = an::compare_runs(side(30), side(30));
    EXPECT_FALSE(result.has_significant_regression());
    EXPECT_TRUE(result.regressions.empty());
    EXPECT_TRUE(result.improvements.empty());
}

TEST(ProfileComparison, AChangeBelowTheThresholdIsNotReportedEvenIfConsistent) {
    // +3% on every run: p is tiny, the effect is under 5%.
    const auto result = an::compare_runs(side(30), side(30.9));
    EXPECT_FALSE(result.has_significant_regression());
    an::CompareOptions strict;
    strict.threshold = 0.02;
    EXPECT_TRUE(an::compare_runs(side(30), side(30.9), strict).has_significant_regression());
}

TEST(ProfileComparison, TinyFunctionsAreLeftOutByMinShare) {
    // The helper doubles (0.1 -> 0.2 ms) but holds 0.2% of the run.
    auto base = side(30), candidate = side(30);
    for (auto& r : candidate) {
        r.functions[helper].self_ns *= 2;
        r.functions[helper].total_ns *= 2;
    }
    EXPECT_FALSE(an::compare_runs(base, candidate).has_significant_regression());
    an::CompareOptions all;
    all.min_share = 0;
    const auto result = an::compare_runs(base, candidate, all);
    ASSERT_TRUE(result.has_significant_regression());
    EXPECT_EQ(result.regressions[0].function, helper);
}

TEST(ProfileComparison, ASpeedupIsAnImprovementNotARegression) {
    const auto result = an::compare_runs(side(33), side(30));
    EXPECT_FALSE(result.has_significant_regression());
    ASSERT_FALSE(result.improvements.empty());
    EXPECT_EQ(result.improvements[0].function, stage_b);
    EXPECT_TRUE(result.improvements[0].significant);
    EXPECT_LT(result.improvements[0].change, 0);
}

TEST(ProfileComparison, OneRunAgainstOneRunListsChangesWithoutStatistics) {
    const auto result = an::compare_runs({run(30, 0)}, {run(36, 0)});
    EXPECT_FALSE(result.statistics);
    ASSERT_FALSE(result.regressions.empty());
    EXPECT_EQ(result.regressions[0].function, stage_b);
    EXPECT_FALSE(result.regressions[0].tested);
    EXPECT_FALSE(result.regressions[0].significant);
    EXPECT_FALSE(result.has_significant_regression());
    const auto small = an::compare_runs({run(30, 0)}, {run(31, 0)});
    EXPECT_TRUE(small.regressions.empty()); // +3.3%: under the threshold
}

TEST(ProfileComparison, FewRunsCannotReachAlpha) {
    // 3 against 3: the smallest two-sided p is 0.1; nothing is significant at 0.01.
    EXPECT_NEAR(an::smallest_p_value(3, 3), 0.1, 1e-12);
    EXPECT_NEAR(an::smallest_p_value(5, 5), 2.0 / 252.0, 1e-12);
    std::vector<an::RunMeasures> base{run(30, 0), run(30, 0.1), run(30, -0.1)};
    std::vector<an::RunMeasures> candidate{run(40, 0), run(40, 0.1), run(40, -0.1)};
    const auto result = an::compare_runs(base, candidate);
    EXPECT_TRUE(result.statistics);
    EXPECT_FALSE(result.has_significant_regression());
    ASSERT_FALSE(result.regressions.empty());
    // Wall times separate completely (exact test): the best p there is.
    EXPECT_TRUE(result.wall_time.beyond_threshold);
    EXPECT_NEAR(result.wall_time.p_value, 0.1, 1e-12);
    EXPECT_FALSE(result.wall_time.significant);
}

TEST(ProfileComparison, AllocatedBytesAndPeakMemoryAreCompared) {
    auto base = side(30), candidate = side(30);
    for (auto& r : candidate) {
        r.functions[stage_b].allocated_bytes = 8192;
        r.peak_bytes = 1.5e6;
    }
    const auto result = an::compare_runs(base, candidate);
    EXPECT_TRUE(result.has_significant_regression());
    EXPECT_NEAR(result.peak_memory.change, 0.5, 1e-12);
    bool bytes = false;
    for (const auto& r : result.regressions) {
        bytes = bytes || (r.function == stage_b && r.metric == an::Metric::allocated_bytes);
    }
    EXPECT_TRUE(bytes);
}

TEST(ProfileComparison, AFunctionMissingOnOneSideIsListedApart) {
    auto base = side(30), candidate = side(30);
    for (auto& r : candidate) {
        r.functions.erase(stage_a);
    }
    const auto result = an::compare_runs(base, candidate);
    ASSERT_EQ(result.only_in_base.size(), 1u);
    EXPECT_EQ(result.only_in_base[0], stage_a);
}

} // namespace
} // namespace profile_comparison_test
