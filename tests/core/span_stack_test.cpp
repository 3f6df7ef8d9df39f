// SpanStack: rebuilding nesting from begin/end events, tolerant of losses.

#include "pycroscope/core/source_location.hpp"
#include "pycroscope/core/span_stack.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace span_stack_test {
namespace {

using pycroscope::LocationKind;
using pycroscope::SourceLocation;

constexpr SourceLocation loc_a{"a", "a", "t.cpp", 1, LocationKind::native_zone};
constexpr SourceLocation loc_b{"b", "b", "t.cpp", 2, LocationKind::native_zone};
constexpr SourceLocation loc_c{"c", "c", "t.cpp", 3, LocationKind::native_zone};

TEST(SpanStack, ClosesInnermostMatchAndEverythingAbove) {
    pycroscope::SpanStack<int> stack;
    stack.push(&loc_a, 10, 1);
    stack.push(&loc_b, 20, 2);
    stack.push(&loc_c, 30, 3);
    std::vector<std::pair<int, std::uint64_t>> closed;
    auto on_close = [&](const pycroscope::SpanStack<int>::Frame& f, std::uint64_t t) {
        closed.emplace_back(f.payload, t);
    };
    // End of b whose inner c end was lost: c is closed at b's end, then b.
    EXPECT_TRUE(stack.pop(&loc_b, 40, on_close));
    ASSERT_EQ(closed.size(), 2u);
    EXPECT_EQ(closed[0], std::make_pair(3, std::uint64_t{40}));
    EXPECT_EQ(closed[1], std::make_pair(2, std::uint64_t{40}));
    EXPECT_EQ(stack.depth(), 1u);
    EXPECT_EQ(stack.top().payload, 1);
    // An end without a begin is counted and ignored.
    EXPECT_FALSE(stack.pop(&loc_c, 50, on_close));
    EXPECT_EQ(stack.unmatched_ends(), 1u);
    EXPECT_EQ(stack.depth(), 1u);
    stack.close_all(60, on_close);
    EXPECT_TRUE(stack.empty());
    ASSERT_EQ(closed.size(), 3u);
    EXPECT_EQ(closed[2], std::make_pair(1, std::uint64_t{60}));
}

TEST(SpanStack, RecursionClosesTheInnermostActivation) {
    pycroscope::SpanStack<int> stack;
    stack.push(&loc_a, 1, 1);
    stack.push(&loc_a, 2, 2);
    std::vector<int> closed;
    stack.pop(&loc_a, 3, [&](const auto& f, std::uint64_t) { closed.push_back(f.payload); });
    EXPECT_EQ(closed, std::vector<int>{2});
    EXPECT_EQ(stack.depth(), 1u);
}

TEST(SpanStack, FramesAreExposedOutermostFirst) {
    pycroscope::SpanStack<int> stack;
    EXPECT_TRUE(stack.empty());
    stack.push(&loc_a, 1, 10);
    stack.push(&loc_b, 2, 20);
    ASSERT_EQ(stack.frames().size(), 2u);
    EXPECT_EQ(stack.frames()[0].location, &loc_a);
    EXPECT_EQ(stack.frames()[1].location, &loc_b);
    EXPECT_EQ(stack.frames()[1].begin, 2u);
    stack.top().payload = 21;
    EXPECT_EQ(stack.frames()[1].payload, 21);
}

} // namespace
} // namespace span_stack_test
