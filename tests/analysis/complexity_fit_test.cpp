// analysis::fit_complexity on synthetic timings: every model named right
// under +-10% multiplicative noise (several seeds), noise around a constant
// is O(1), and too few points or too short a range is "insufficient data".

#include <pycroscope/analysis/complexity_fit.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace complexity_fit_test {
namespace {

using pycroscope::analysis::ComplexityFit;
using pycroscope::analysis::ComplexityPoint;
using pycroscope::analysis::fit_complexity;

// t(n) = overhead + cost(n), each point times a uniform factor in [1 - noise, 1 + noise].
std::vector<ComplexityPoint> timings(const std::vector<double>& sizes, const std::function<double(double)>& cost,
                                     double overhead, double noise, std::uint32_t seed) {
    std::mt19937 random(seed);
    std::uniform_real_distribution<double> factor(1.0 - noise, 1.0 + noise);
    std::vector<ComplexityPoint> points;
    for (double n : sizes) {
        points.push_back({n, (overhead + cost(n)) * factor(random)});
    }
    return points;
}

// Sizes from first, times step, count of them (rounded).
std::vector<double> geometric(double first, double step, int count) {
    std::vector<double> sizes;
    double n = first;
    for (int i = 0; i < count; ++i, n *= step) {
        sizes.push_back(std::round(n));
    }
    return sizes;
}

struct Case {
    const char* expected;
    std::function<double(double)> cost;
    std::vector<double> sizes;
};

std::vector<Case> cases() {
    // Two decades, three sizes per octave, as pycroscope.complexity() measures
    // when its budget allows, with a fixed cost per call that is a sizeable
    // part of small sizes.
    const double step = std::cbrt(2.0);
    const std::vector<double> sizes = geometric(1000, step, 21); // 1000 .. 100000
    return {
        {"O(1)", [](double) { return 0.0; }, sizes},
        {"O(log n)", [](double n) { return 5e-7 * std::log(n); }, sizes}, // 1.5x over the range
        {"O(n)", [](double n) { return 1e-8 * n; }, sizes},
        {"O(n log n)", [](double n) { return 1e-8 * n * std::log(n); }, sizes},
        {"O(n^2)", [](double n) { return 1e-9 * n * n; }, geometric(30, step, 21)},
        {"O(n^3)", [](double n) { return 1e-9 * n * n * n; }, geometric(10, step, 21)},
        {"O(2^n)", [](double n) { return 1e-8 * std::exp2(n); }, {8, 10, 12, 14, 16, 18, 20, 22, 24}},
    };
}

// Noise decides a few series: adjacent models (n and n log n) differ by a
// factor of 1.7 over two decades. 48 of 50 seeds must be named right.
TEST(ComplexityFit, NamesEveryModelUnderTenPercentNoiseForManySeeds) {
    for (const Case& c : cases()) {
        int right = 0;
        for (std::uint32_t seed = 1; seed <= 50; ++seed) {
            const ComplexityFit fit = fit_complexity(timings(c.sizes, c.cost, 1e-6, 0.10, seed));
            ASSERT_TRUE(fit.ok) << c.expected << ": " << fit.error;
            right += fit.best == c.expected ? 1 : 0;
        }
        EXPECT_GE(right, 48) << c.expected;
    }
}

TEST(ComplexityFit, ExactDataIsNamedWithAnRSquaredOfOne) {
    const ComplexityFit fit =
        fit_complexity(timings(geometric(100, 2.0, 8), [](double n) { return 1e-9 * n * n; }, 0.0, 0.0, 1));
    ASSERT_TRUE(fit.ok);
    EXPECT_EQ(fit.best, "O(n^2)");
    EXPECT_NEAR(fit.r2, 1.0, 1e-9);
    ASSERT_EQ(fit.models.size(), 7u);
    EXPECT_EQ(fit.models[4].name, "O(n^2)");
    EXPECT_NEAR(fit.models[4].b, 1e-9, 1e-15);
    EXPECT_NEAR(fit.models[4].a, 0.0, 1e-12);
    EXPECT_LT(fit.models[4].error, 1e-6);
}

TEST(ComplexityFit, PureNoiseAroundAConstantIsConstant) {
    // +-30% noise, no trend: a growth model must not be bought by noise.
    const std::vector<double> sizes = geometric(10, std::cbrt(2.0), 21);
    int constant = 0;
    for (std::uint32_t seed = 1; seed <= 200; ++seed) {
        const ComplexityFit fit = fit_complexity(timings(sizes, [](double) { return 0.0; }, 1e-5, 0.30, seed));
        ASSERT_TRUE(fit.ok);
        constant += fit.best == "O(1)" ? 1 : 0;
    }
    EXPECT_GE(constant, 196) << "of 200 noise series named O(1)";
}

TEST(ComplexityFit, AFlatFunctionWithACacheStepIsConstant) {
    // 27 ns, then 33 ns past 5000 elements (a dict lookup as measured when the
    // table leaves a cache level): significant, but not a complexity class.
    std::vector<ComplexityPoint> points;
    for (double n : geometric(8, std::cbrt(2.0), 42)) {
        points.push_back({n, n < 5000 ? 27e-9 : 33e-9});
    }
    const ComplexityFit fit = fit_complexity(points);
    ASSERT_TRUE(fit.ok);
    EXPECT_EQ(fit.best, "O(1)");
    EXPECT_EQ(fit.r2, 0.0);
}

TEST(ComplexityFit, TooFewPointsIsInsufficientDataNotACrash) {
    EXPECT_FALSE(fit_complexity({}).ok);
    const ComplexityFit three = fit_complexity({{10, 1e-6}, {100, 1e-5}, {1000, 1e-4}});
    EXPECT_FALSE(three.ok);
    EXPECT_EQ(three.error.rfind("insufficient data", 0), 0u) << three.error;
    EXPECT_EQ(three.points.size(), 3u);
    EXPECT_TRUE(three.best.empty());
    // Repeated sizes count once.
    EXPECT_FALSE(fit_complexity({{10, 1e-6}, {10, 1e-6}, {20, 2e-6}, {20, 2e-6}, {40, 4e-6}}).ok);
}

TEST(ComplexityFit, TooShortARangeIsInsufficientData) {
    const ComplexityFit fit = fit_complexity({{100, 1e-6}, {110, 1.1e-6}, {120, 1.2e-6}, {130, 1.3e-6}});
    EXPECT_FALSE(fit.ok);
    EXPECT_NE(fit.error.find("factor"), std::string::npos) << fit.error;
}

TEST(ComplexityFit, InvalidPointsAreDroppedAndCounted) {
    std::vector<ComplexityPoint> points = timings(geometric(10, 2.0, 8), [](double n) { return 1e-8 * n; }, 0, 0, 1);
    points.push_back({0, 1e-3});
    points.push_back({100, -1});
    points.push_back({100, std::nan("")});
    const ComplexityFit fit = fit_complexity(points);
    ASSERT_TRUE(fit.ok) << fit.error;
    EXPECT_EQ(fit.dropped, 3u);
    EXPECT_EQ(fit.points.size(), 8u);
    EXPECT_EQ(fit.best, "O(n)");
}

TEST(ComplexityFit, ExponentialIsNotFittedOnLargeSizes) {
    const ComplexityFit fit =
        fit_complexity(timings(geometric(1000, 2.0, 8), [](double n) { return 1e-8 * n; }, 0, 0.05, 3));
    ASSERT_TRUE(fit.ok);
    EXPECT_EQ(fit.best, "O(n)");
    EXPECT_EQ(fit.models.back().name, "O(2^n)");
    EXPECT_FALSE(fit.models.back().fitted);
}

} // namespace
} // namespace complexity_fit_test
