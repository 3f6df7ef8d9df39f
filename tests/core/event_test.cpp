// The 32-byte Event record and its helpers.

#include "pycroscope/core/event.hpp"
#include "pycroscope/core/source_location.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

namespace event_test {
namespace {

using pycroscope::Event;
using pycroscope::EventKind;
using pycroscope::LocationKind;
using pycroscope::SourceLocation;

constexpr SourceLocation loc_a{"a", "a", "t.cpp", 1, LocationKind::native_zone};

Event ev(EventKind kind, const SourceLocation* loc, std::uint64_t ts) {
    return Event{ts, pycroscope::location_id(loc), 0, 0, kind, 0, 0};
}

TEST(Event, LayoutAndHelpers) {
    static_assert(sizeof(Event) == 32, "");
    const Event e = ev(EventKind::counter, &loc_a, 5);
    EXPECT_EQ(e.location(), &loc_a);
    EXPECT_EQ(e.timestamp, 5u);
    EXPECT_EQ(e.kind, EventKind::counter);
    static_assert(std::is_trivially_copyable<Event>::value, "");
    for (auto kind : {EventKind::zone_begin, EventKind::py_call, EventKind::c_call, EventKind::py_resume}) {
        EXPECT_TRUE(pycroscope::opens_span(kind));
        EXPECT_FALSE(pycroscope::closes_span(kind));
    }
    for (auto kind : {EventKind::zone_end, EventKind::py_return, EventKind::c_return}) {
        EXPECT_TRUE(pycroscope::closes_span(kind));
        EXPECT_FALSE(pycroscope::opens_span(kind));
    }
    for (auto kind : {EventKind::none, EventKind::instant, EventKind::counter, EventKind::frame_mark,
                      EventKind::py_line, EventKind::py_exception}) {
        EXPECT_FALSE(pycroscope::opens_span(kind));
        EXPECT_FALSE(pycroscope::closes_span(kind));
    }
}

TEST(Event, ValueRoundTripsDoubleBits) {
    const double values[] = {0.0, -0.0, 1.0, -2.5, 3.141592653589793, 1e-310, 1e308,
                             std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()};
    for (const double v : values) {
        Event e{};
        e.payload = pycroscope::double_bits(v);
        const double back = e.value();
        EXPECT_EQ(std::memcmp(&back, &v, sizeof v), 0) << v;
    }
    EXPECT_EQ(pycroscope::double_bits(1.0), 0x3ff0000000000000ull);
    EXPECT_EQ(pycroscope::double_bits(-0.0), 0x8000000000000000ull);
}

TEST(Event, NullLocationIsIdZero) {
    EXPECT_EQ(pycroscope::location_id(nullptr), 0u);
    Event e{};
    EXPECT_EQ(e.location(), nullptr);
}

} // namespace
} // namespace event_test
