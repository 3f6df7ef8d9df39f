// The hot-path clock: source selection, calibration against steady_clock,
// and monotonic timestamps.

#include "pycroscope/core/clock.hpp"
#include "pycroscope/core/error.hpp"
#include "pycroscope/core/session.hpp"
#include "pycroscope/core/zone.hpp"
#include "support/recording_sink.hpp"
#include "support/scoped_env.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>

namespace clock_test {
namespace {

using pycroscope::ClockSource;
namespace clock = pycroscope::clock;

using pycroscope_test::ScopedEnv;

// One (clock::now(), steady ns) pair taken inside the narrowest of a few
// steady_clock windows, so a preemption does not skew the comparison.
struct Pair {
    std::uint64_t ticks;
    std::int64_t ns;
};
Pair read_pair() {
    Pair best{0, 0};
    std::int64_t best_window = INT64_MAX;
    for (int i = 0; i < 32; ++i) {
        const std::int64_t before = clock::steady_ns();
        const std::uint64_t ticks = clock::now();
        const std::int64_t after = clock::steady_ns();
        if (after - before < best_window) {
            best_window = after - before;
            best = Pair{ticks, before + (after - before) / 2};
        }
    }
    return best;
}

TEST(Clock, SourceNames) {
    EXPECT_STREQ(clock::to_string(clock::Source::tsc), "tsc");
    EXPECT_STREQ(clock::to_string(clock::Source::steady), "steady_clock");
}

TEST(Clock, SteadySourceIsIdentityAndMonotone) {
    ScopedEnv env("PYCROSCOPE_CLOCK", nullptr);
    const clock::Calibration c = clock::select(ClockSource::steady);
    EXPECT_EQ(c.source, clock::Source::steady);
    EXPECT_EQ(c.ns_per_tick, 1.0);
    EXPECT_EQ(c.ticks_to_ns(12345), 12345.0);
    EXPECT_EQ(c.to_ns(987654321), 987654321);

    // Steady ticks are steady_clock nanoseconds.
    const std::int64_t before = clock::steady_ns();
    const std::uint64_t ticks = clock::now();
    const std::int64_t after = clock::steady_ns();
    EXPECT_GE(static_cast<std::int64_t>(ticks), before);
    EXPECT_LE(static_cast<std::int64_t>(ticks), after);

    std::uint64_t last = clock::now();
    bool monotone = true;
    for (int i = 0; i < 100000; ++i) {
        const std::uint64_t t = clock::now();
        monotone = monotone && t >= last;
        last = t;
    }
    EXPECT_TRUE(monotone);
}

TEST(Clock, EnvironmentSelectsSteady) {
    ScopedEnv env("PYCROSCOPE_CLOCK", "steady");
    const clock::Calibration c = clock::select(ClockSource::automatic);
    EXPECT_EQ(c.source, clock::Source::steady);
    EXPECT_EQ(c.ns_per_tick, 1.0);

    // And through a session: the sink is told, and the events are steady ns.
    pycroscope::Session<pycroscope::NativeZones> session;
    auto sink = session.add_sink<pycroscope_test::RecordingSink>();
    session.start();
    const std::int64_t before = clock::steady_ns();
    for (int i = 0; i < 100; ++i) {
        PYCRO_SCOPE_N("clock_test.steady");
    }
    const std::int64_t after = clock::steady_ns();
    const auto summary = session.stop();
    EXPECT_EQ(sink->info().calibration.source, clock::Source::steady);
    EXPECT_EQ(sink->info().calibration.ns_per_tick, 1.0);
    const auto events = sink->all_events();
    ASSERT_EQ(events.size(), 200u);
    std::uint64_t last = 0;
    for (const auto& e : events) {
        EXPECT_GE(e.timestamp, last);
        EXPECT_GE(static_cast<std::int64_t>(e.timestamp), before);
        EXPECT_LE(static_cast<std::int64_t>(e.timestamp), after);
        last = e.timestamp;
    }
    EXPECT_EQ(summary.info.session_ns(summary.info.start_ticks + 1000), 1000);
}

TEST(Clock, EnvironmentSelectsTscOrRefuses) {
    ScopedEnv env("PYCROSCOPE_CLOCK", "tsc");
    if (clock::invariant_tsc_available()) {
        EXPECT_EQ(clock::select(ClockSource::automatic).source, clock::Source::tsc);
    } else {
        EXPECT_THROW(clock::select(ClockSource::automatic), pycroscope::ConfigError);
    }
    // An explicit steady source ignores the environment.
    EXPECT_EQ(clock::select(ClockSource::steady).source, clock::Source::steady);
}

TEST(Clock, ExplicitTscWorksOrThrows) {
    ScopedEnv env("PYCROSCOPE_CLOCK", nullptr);
    if (!clock::invariant_tsc_available()) {
        try {
            clock::select(ClockSource::tsc);
            FAIL() << "ClockSource::tsc without an invariant TSC did not throw";
        } catch (const pycroscope::ConfigError& e) {
            EXPECT_NE(std::string(e.what()).find("tsc"), std::string::npos) << e.what();
        }
        return;
    }
    const clock::Calibration c = clock::select(ClockSource::tsc);
    EXPECT_EQ(c.source, clock::Source::tsc);
    EXPECT_GT(c.ns_per_tick, 0.0);
    EXPECT_EQ(clock::select(ClockSource::automatic).source, clock::Source::tsc);
    // Cached: the same calibration every time.
    EXPECT_EQ(clock::select(ClockSource::tsc).ns_per_tick, c.ns_per_tick);
    clock::select(ClockSource::steady);
}

TEST(Clock, AutomaticFollowsTheCpu) {
    ScopedEnv env("PYCROSCOPE_CLOCK", nullptr);
    const clock::Calibration c = clock::select(ClockSource::automatic);
    EXPECT_EQ(c.source, clock::invariant_tsc_available() ? clock::Source::tsc : clock::Source::steady);
    clock::select(ClockSource::steady);
}

// The TSC calibration (a 2 ms spin) converts a ~50 ms interval within 0.1%
// of steady_clock.
TEST(Clock, TscCalibrationAgreesWithSteadyClock) {
    if (!clock::invariant_tsc_available()) {
        GTEST_SKIP() << "no invariant TSC on this CPU";
    }
    ScopedEnv env("PYCROSCOPE_CLOCK", nullptr);
    const clock::Calibration c = clock::select(ClockSource::tsc);
    const Pair start = read_pair();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const Pair end = read_pair();
    clock::select(ClockSource::steady);

    const double tsc_ns = c.ticks_to_ns(end.ticks - start.ticks);
    const double steady = static_cast<double>(end.ns - start.ns);
    ASSERT_GE(steady, 50e6);
    EXPECT_NEAR(tsc_ns / steady, 1.0, 0.001) << "tsc " << tsc_ns << " ns vs steady " << steady << " ns";

    // to_ns() puts ticks on the steady_clock time line (same 0.1% budget on
    // the distance from the calibration origin, plus the read window).
    const double offset = static_cast<double>(c.to_ns(end.ticks) - end.ns);
    const double span = static_cast<double>(end.ns - c.ns_origin);
    EXPECT_LE(std::fabs(offset), 0.001 * span + 1e6) << "offset " << offset << " ns over " << span << " ns";
}

TEST(Clock, TscTimestampsAreMonotoneOnOneThread) {
    if (!clock::invariant_tsc_available()) {
        GTEST_SKIP() << "no invariant TSC on this CPU";
    }
    clock::select(ClockSource::tsc);
    std::uint64_t last = clock::now();
    bool monotone = true;
    for (int i = 0; i < 100000; ++i) {
        const std::uint64_t t = clock::now();
        monotone = monotone && t >= last;
        last = t;
    }
    clock::select(ClockSource::steady);
    EXPECT_TRUE(monotone);
}

} // namespace
} // namespace clock_test
