#include "pycroscope/model/pair_ids.hpp"

#include <gtest/gtest.h>

#include <cstdint>

namespace pair_ids_test {
namespace {

using pycroscope::model::PairIds;

TEST(PairIds, FindsEveryPairAddedPastTheRecentEntries) {
    PairIds ids;
    EXPECT_EQ(ids.find(0, 0), PairIds::none);
    // More callees per caller than the recent entries hold, looked up in turn.
    std::uint32_t next = 0;
    for (std::uint32_t a = 0; a < 50; a += 7) {
        for (std::uint32_t b = 0; b < 9; ++b) {
            ids.add(a, b, next++);
        }
    }
    for (int round = 0; round < 3; ++round) {
        std::uint32_t expected = 0;
        for (std::uint32_t a = 0; a < 50; a += 7) {
            for (std::uint32_t b = 0; b < 9; ++b) {
                EXPECT_EQ(ids.find(a, b), expected++) << a << "," << b;
            }
            EXPECT_EQ(ids.find(a, 9), PairIds::none);
            EXPECT_EQ(ids.find(a + 1, 0), PairIds::none);
        }
    }
    EXPECT_EQ(ids.find(PairIds::none - 1, 0), PairIds::none); // an a beyond every one seen
    ids.clear();
    EXPECT_EQ(ids.find(0, 0), PairIds::none);
    ids.add(3, 4, 5);
    EXPECT_EQ(ids.find(3, 4), 5u);
}

} // namespace
} // namespace pair_ids_test
