// Step detection over a series of sessions: where a level change began.

#include <pycroscope/analysis/step_detection.hpp>

#include <gtest/gtest.h>

#include <vector>

namespace step_detection_test {
namespace {

using pycroscope::analysis::detect_step;
using pycroscope::analysis::median;

TEST(StepDetection, FindsTheFirstPointOfANoisyUpwardStep) {
    const std::vector<double> series{100, 102, 99, 101, 100, 98, 112, 111, 113, 110, 112};
    const auto step = detect_step(series);
    ASSERT_TRUE(step.found);
    EXPECT_EQ(step.index, 6u);
    EXPECT_DOUBLE_EQ(step.before, 100.0);
    EXPECT_DOUBLE_EQ(step.after, 112.0);
    EXPECT_NEAR(step.change, 0.12, 1e-12);
}

TEST(StepDetection, FindsADownwardStep) {
    const auto step = detect_step({50, 51, 49, 50, 40, 41, 39});
    ASSERT_TRUE(step.found);
    EXPECT_EQ(step.index, 4u);
    EXPECT_LT(step.change, 0);
}

TEST(StepDetection, OneOutlierIsNotAStep) {
    // A single slow session in the middle: medians on both sides stay put.
    const auto step = detect_step({100, 101, 99, 140, 100, 102, 98, 101});
    EXPECT_FALSE(step.found);
}

TEST(StepDetection, NoiseWithoutALevelChangeIsNotAStep) {
    const auto step = detect_step({100, 104, 97, 103, 99, 102, 96, 101, 103, 98});
    EXPECT_FALSE(step.found);
}

TEST(StepDetection, ASmallChangeBelowMinChangeIsNotAStepEvenIfClean) {
    // A perfectly clean +3% step: the score reaches min_score, the change is too small.
    const auto step = detect_step({100, 100, 100, 103, 103, 103});
    EXPECT_FALSE(step.found);
    EXPECT_EQ(step.index, 3u);
    EXPECT_GE(step.score, 3.0);
}

TEST(StepDetection, TooShortASeriesHasNoStep) {
    EXPECT_FALSE(detect_step({}).found);
    EXPECT_FALSE(detect_step({1, 100, 100}).found);
}

TEST(StepDetection, MedianOfEvenAndOddCounts) {
    EXPECT_DOUBLE_EQ(median({3, 1, 2}), 2.0);
    EXPECT_DOUBLE_EQ(median({4, 1, 3, 2}), 2.5);
    EXPECT_DOUBLE_EQ(median({}), 0.0);
}

} // namespace
} // namespace step_detection_test
