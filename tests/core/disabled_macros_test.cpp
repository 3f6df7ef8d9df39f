// PYCROSCOPE_ENABLED=0 compiles every PYCRO_* macro to nothing. Only the
// macros differ from the other test files, so linking them together is fine.

#define PYCROSCOPE_ENABLED 0
#include "pycroscope/core/session.hpp"
#include "pycroscope/core/zone.hpp"
#include "support/recording_sink.hpp"

#include <gtest/gtest.h>

#include <string>

static_assert(PYCROSCOPE_ENABLED == 0, "this file tests the disabled macros");

namespace disabled_macros_test {
namespace {

int evaluations = 0;
// [[maybe_unused]]: the disabled macros drop their arguments, so nothing else uses these.
[[maybe_unused]] int count_evaluation() { return ++evaluations; }
[[maybe_unused]] std::string counted_name() {
    ++evaluations;
    return "dynamic";
}

void instrumented_function() {
    PYCRO_SCOPE();
    PYCRO_SCOPE_N("disabled.named");
    PYCRO_SCOPE_DYN(counted_name());
    PYCRO_MARK("disabled.mark");
    PYCRO_COUNTER("disabled.counter", count_evaluation());
    PYCRO_FRAME_MARK();
    PYCRO_FRAME_MARK_N("disabled.frame");
}

TEST(DisabledMacros, RecordNothingAndEvaluateNothing) {
    evaluations = 0;
    pycroscope::Session<pycroscope::NativeZones> session;
    auto sink = session.add_sink<pycroscope_test::RecordingSink>();
    session.start();
    ASSERT_TRUE(pycroscope::native_zones_active()); // a live session: the macros alone are off
    for (int i = 0; i < 10; ++i) {
        instrumented_function();
    }
    // Macros in a braceless if/else still parse as one statement each.
    if (evaluations == 0)
        PYCRO_MARK("disabled.if");
    else
        PYCRO_COUNTER("disabled.else", count_evaluation());
    const auto summary = session.stop();
    EXPECT_EQ(evaluations, 0) << "a disabled macro evaluated its argument";
    EXPECT_EQ(sink->event_count(), 0u);
    EXPECT_EQ(summary.total_events, 0u);
    EXPECT_TRUE(summary.threads.empty());
}

// The API under the macros stays available when the macros are disabled.
TEST(DisabledMacros, ExplicitApiStillRecords) {
    static constexpr pycroscope::SourceLocation site{"disabled.explicit", "f", "f.cpp", 1,
                                                     pycroscope::LocationKind::native_zone};
    pycroscope::Session<pycroscope::NativeZones> session;
    auto sink = session.add_sink<pycroscope_test::RecordingSink>();
    session.start();
    {
        pycroscope::Zone zone(&site);
    }
    pycroscope::counter(std::string_view("disabled.explicit_counter"), 1.0);
    session.stop();
    EXPECT_EQ(sink->event_count(), 3u);
}

} // namespace
} // namespace disabled_macros_test
