// The word a zone reads first (native_fast_epoch): zero without a session;
// the session's epoch while zones may take the shortest path (the TSC, no
// ZoneStackReader); the checked path otherwise. Zones record the same events
// on both paths.

#include "pycroscope/core/clock.hpp"
#include "pycroscope/core/native_zone_state.hpp"
#include "pycroscope/core/session.hpp"
#include "pycroscope/core/zone.hpp"
#include "support/recording_sink.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>

namespace native_zone_state_test {
namespace {

using pycroscope::ClockSource;
using pycroscope::Config;
using pycroscope::EventKind;
using pycroscope::NativeZones;
using pycroscope::Session;
using pycroscope::ZoneStackReader;
using pycroscope::detail::native_checked_path;
using pycroscope::detail::native_epoch;
using pycroscope::detail::native_fast_epoch;

TEST(NativeZoneState, FastOnlyWithTheTscAndNoStackReader) {
    if (!pycroscope::clock::invariant_tsc_available()) {
        GTEST_SKIP() << "no invariant TSC: zones always take the checked path";
    }
    EXPECT_EQ(native_fast_epoch.load(), 0u);
    auto sink = std::make_shared<pycroscope_test::RecordingSink>();
    Session<NativeZones> session;
    session.add_sink(sink);
    session.start();
    const std::uint64_t epoch = native_epoch.load();
    ASSERT_NE(epoch, 0u);
    EXPECT_EQ(native_fast_epoch.load(), epoch);
    { PYCRO_SCOPE_N("fast"); }
    {
        ZoneStackReader reader;
        EXPECT_EQ(native_fast_epoch.load(), native_checked_path);
        { PYCRO_SCOPE_N("checked"); }
        PYCRO_SCOPE_N("begun checked, ended fast");
        ZoneStackReader second;
    }
    EXPECT_EQ(native_fast_epoch.load(), epoch);
    {
        PYCRO_SCOPE_N("begun fast, ended checked");
        ZoneStackReader reader;
    }
    session.stop();
    EXPECT_EQ(native_fast_epoch.load(), 0u);
    EXPECT_EQ(native_epoch.load(), 0u);

    std::size_t begins = 0, ends = 0;
    for (const auto& event : sink->all_events()) {
        begins += event.kind == EventKind::zone_begin ? 1 : 0;
        ends += event.kind == EventKind::zone_end ? 1 : 0;
    }
    EXPECT_EQ(begins, 4u);
    EXPECT_EQ(ends, 4u);
}

TEST(NativeZoneState, SteadyClockTakesTheCheckedPath) {
    Config config;
    config.clock = ClockSource::steady;
    Session<NativeZones> session(config);
    session.start();
    EXPECT_NE(native_epoch.load(), 0u);
    EXPECT_EQ(native_fast_epoch.load(), native_checked_path);
    session.stop();
    EXPECT_EQ(native_fast_epoch.load(), 0u);
}

} // namespace
} // namespace native_zone_state_test
