// Mann-Whitney U against reference p-values: scipy.stats.mannwhitneyu
// (two-sided, use_continuity=True) and the exact counts of small tables.

#include <pycroscope/analysis/mann_whitney.hpp>

#include <gtest/gtest.h>

#include <vector>

namespace mann_whitney_test {
namespace {

using pycroscope::analysis::mann_whitney_u;
using pycroscope::analysis::MannWhitneyMethod;

TEST(MannWhitney, CompletelySeparatedThreeAgainstThreeHasExactPOfOneTenth) {
    // 2 of the C(6,3) = 20 orderings are this extreme: p = 2 / 20.
    const auto r = mann_whitney_u({1, 2, 3}, {4, 5, 6});
    EXPECT_TRUE(r.exact);
    EXPECT_DOUBLE_EQ(r.u, 0.0);
    EXPECT_NEAR(r.p_value, 0.1, 1e-12);
}

TEST(MannWhitney, CompletelySeparatedFiveAgainstFiveIsBelowOnePercent) {
    // 2 / C(10,5) = 2 / 252: five runs a side can pass alpha = 0.01.
    const auto r = mann_whitney_u({10, 11, 12, 13, 14}, {20, 21, 22, 23, 24});
    EXPECT_TRUE(r.exact);
    EXPECT_NEAR(r.p_value, 2.0 / 252.0, 1e-12);
    const auto reversed = mann_whitney_u({20, 21, 22, 23, 24}, {10, 11, 12, 13, 14});
    EXPECT_DOUBLE_EQ(reversed.u, 25.0);
    EXPECT_NEAR(reversed.p_value, 2.0 / 252.0, 1e-12);
}

TEST(MannWhitney, ScipyDocumentationExampleExact) {
    // scipy.stats.mannwhitneyu(males, females, method="exact"):
    // statistic=17.0, pvalue=0.1111111111111111.
    const std::vector<double> males{19, 22, 16, 29, 24};
    const std::vector<double> females{20, 11, 17, 12};
    const auto r = mann_whitney_u(males, females);
    EXPECT_TRUE(r.exact);
    EXPECT_DOUBLE_EQ(r.u, 17.0);
    EXPECT_NEAR(r.p_value, 0.1111111111111111, 1e-12);
}

TEST(MannWhitney, ScipyDocumentationExampleAsymptotic) {
    // scipy.stats.mannwhitneyu(males, females, method="asymptotic"): pvalue=0.11134688653314041.
    const auto r = mann_whitney_u({19, 22, 16, 29, 24}, {20, 11, 17, 12}, MannWhitneyMethod::asymptotic);
    EXPECT_FALSE(r.exact);
    EXPECT_NEAR(r.p_value, 0.11134688653314041, 1e-9);
}

TEST(MannWhitney, TiesUseTheTieCorrectedNormalApproximation) {
    // U = 4 (pairs a > b, ties one half); by hand with scipy's asymptotic
    // formula: ties in groups of 3, 3 and 2 give sum(t^3 - t) = 54, variance
    // 25/12 * (11 - 54/90) = 21.667, z = (21 - 12.5 - 0.5) / sqrt(21.667) = 1.7187,
    // p = 2 * P(Z > z) = 0.0856734.
    const auto r = mann_whitney_u({1, 2, 2, 3, 3}, {2, 3, 4, 4, 5});
    EXPECT_FALSE(r.exact);
    EXPECT_DOUBLE_EQ(r.u, 4.0);
    EXPECT_NEAR(r.p_value, 0.08567343955231692, 1e-9);
}

TEST(MannWhitney, EqualSamplesHavePOfOne) {
    const auto r = mann_whitney_u({5, 5, 5}, {5, 5, 5});
    EXPECT_DOUBLE_EQ(r.p_value, 1.0);
    const auto interleaved = mann_whitney_u({1, 4, 5, 8}, {2, 3, 6, 7});
    EXPECT_DOUBLE_EQ(interleaved.p_value, 1.0);
}

TEST(MannWhitney, DeterministicCountsThatDifferAreSignificantWithFiveRunsASide) {
    // Calls per run are exact: all ties inside each side, none across.
    const auto r = mann_whitney_u({100, 100, 100, 100, 100}, {110, 110, 110, 110, 110});
    EXPECT_FALSE(r.exact);
    EXPECT_LT(r.p_value, 0.01);
}

TEST(MannWhitney, AnEmptySideGivesNoEvidence) {
    EXPECT_DOUBLE_EQ(mann_whitney_u({}, {1, 2}).p_value, 1.0);
    EXPECT_DOUBLE_EQ(mann_whitney_u({1}, {}).p_value, 1.0);
}

TEST(MannWhitney, LargeSamplesWithoutTiesAgreeBetweenExactAndAsymptotic) {
    std::vector<double> a, b;
    for (int i = 0; i < 25; ++i) {
        a.push_back(i * 2.0);
        b.push_back(i * 2.0 + 7.5); // shifted, interleaved partly
    }
    const auto exact = mann_whitney_u(a, b, MannWhitneyMethod::exact);
    const auto normal = mann_whitney_u(a, b, MannWhitneyMethod::asymptotic);
    EXPECT_TRUE(exact.exact);
    EXPECT_NEAR(exact.p_value, normal.p_value, 0.01);
    EXPECT_LT(exact.p_value, 0.5);
}

} // namespace
} // namespace mann_whitney_test
