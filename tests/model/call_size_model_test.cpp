// model::CallSizeModel on hand-made event runs: each watched call paired with
// its own return (recursion and other functions in between), the fastest
// call kept per size, unsized calls counted, and large sizes binned.

#include <pycroscope/model/call_size_model.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace call_size_model_test {
namespace {

using namespace pycroscope;
using model::CallSizeModel;

Event call(std::uint64_t ts, std::uint64_t size, bool watched = true) {
    return Event{ts, 1, watched ? size : 0, 0, EventKind::py_call, watched ? event_flags::watched : std::uint8_t{0}, 0};
}
Event ret(std::uint64_t ts) { return Event{ts, 1, 0, 0, EventKind::py_return, 0, 0}; }

TEST(CallSizeModel, PairsEachWatchedCallWithItsOwnReturnThroughRecursion) {
    CallSizeModel model;
    // f(8) calls g (not watched) then f(4), which calls f(2).
    const std::vector<Event> events = {call(100, 8), call(110, 0, false), ret(120), call(130, 4),
                                       call(140, 2), ret(150),            ret(170), ret(200)};
    model.add(0, events.data(), events.size());
    const std::vector<CallSizeModel::SizeBin> bins = model.bins();
    ASSERT_EQ(bins.size(), 3u);
    EXPECT_EQ(bins[0].size(), 2.0);
    EXPECT_EQ(bins[0].min_ticks, 10u);
    EXPECT_EQ(bins[1].size(), 4.0);
    EXPECT_EQ(bins[1].min_ticks, 40u);
    EXPECT_EQ(bins[2].size(), 8.0);
    EXPECT_EQ(bins[2].min_ticks, 100u);
    EXPECT_EQ(model.calls(), 3u);
    EXPECT_EQ(model.unsized_calls(), 0u);
}

TEST(CallSizeModel, KeepsTheFastestCallPerSizeAndCountsUnsizedCalls) {
    CallSizeModel model;
    const std::vector<Event> events = {call(0, 5), ret(50), call(60, 5), ret(90), call(100, 5), ret(170),
                                       call(200, CallSizeModel::unsized), ret(300)};
    model.add(0, events.data(), events.size());
    const std::vector<CallSizeModel::SizeBin> bins = model.bins();
    ASSERT_EQ(bins.size(), 1u);
    EXPECT_EQ(bins[0].calls, 3u);
    EXPECT_EQ(bins[0].min_ticks, 30u);
    EXPECT_EQ(model.calls(), 4u);
    EXPECT_EQ(model.unsized_calls(), 1u);
}

TEST(CallSizeModel, ThreadsArePairedSeparatelyAcrossBatches) {
    CallSizeModel model;
    const Event a1[] = {call(0, 10)};
    const Event b1[] = {call(5, 20), ret(25)};
    const Event a2[] = {ret(40)};
    model.add(0, a1, 1);
    model.add(1, b1, 2);
    model.add(0, a2, 1);
    const std::vector<CallSizeModel::SizeBin> bins = model.bins();
    ASSERT_EQ(bins.size(), 2u);
    EXPECT_EQ(bins[0].min_ticks, 40u);
    EXPECT_EQ(bins[1].min_ticks, 20u);
}

TEST(CallSizeModel, LargeSizesShareThirtyTwoBinsPerOctave) {
    EXPECT_EQ(CallSizeModel::bin_of(255), 255u);
    EXPECT_NE(CallSizeModel::bin_of(256), CallSizeModel::bin_of(255));
    EXPECT_EQ(CallSizeModel::bin_of(1000000), CallSizeModel::bin_of(1000001));
    EXPECT_LT(CallSizeModel::bin_of(1000000), CallSizeModel::bin_of(1100000));
    CallSizeModel model;
    std::vector<Event> events;
    for (std::uint64_t size = 1; size <= 10000000; size += 997) {
        events.push_back(call(size, size));
        events.push_back(ret(size + 10));
    }
    model.add(0, events.data(), events.size());
    EXPECT_LE(model.bins().size(), 32u * 24u);
    EXPECT_EQ(model.calls(), events.size() / 2);
}

} // namespace
} // namespace call_size_model_test
