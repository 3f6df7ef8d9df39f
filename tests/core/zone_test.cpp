// Native instrumentation through a Session<NativeZones>: fixed and dynamic
// zones, marks, counters and frame marks, with exact counts and kinds.

#include "pycroscope/core/event.hpp"
#include "pycroscope/core/recorder.hpp"
#include "pycroscope/core/session.hpp"
#include "pycroscope/core/zone.hpp"
#include "support/recording_sink.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace zone_test {
namespace {

using pycroscope::Event;
using pycroscope::EventKind;
using pycroscope::LocationKind;
using pycroscope::NativeZones;
using pycroscope::Session;
using pycroscope::SourceLocation;
using pycroscope_test::RecordingSink;

pycroscope::Config small_config() {
    pycroscope::Config config;
    config.buffer_capacity = 4096;
    return config;
}

std::vector<Event> of_kind(const std::vector<Event>& events, EventKind kind) {
    std::vector<Event> out;
    for (const auto& e : events) {
        if (e.kind == kind) {
            out.push_back(e);
        }
    }
    return out;
}

void function_named_zone() { PYCRO_SCOPE(); }

TEST(Zone, FixedZonesRecordBeginEndPairsWithTheirSite) {
    Session<NativeZones> session(small_config());
    auto sink = session.add_sink<RecordingSink>();
    session.start();
    int zone_line = 0;
    for (int i = 0; i < 5; ++i) {
        zone_line = __LINE__ + 1;
        PYCRO_SCOPE_N("zone_test.fixed");
    }
    function_named_zone();
    session.stop();

    const auto events = sink->events_of(1);
    ASSERT_EQ(events.size(), 12u);
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(events[2 * i].kind, EventKind::zone_begin);
        EXPECT_EQ(events[2 * i + 1].kind, EventKind::zone_end);
        EXPECT_EQ(events[2 * i].id, events[2 * i + 1].id);
        EXPECT_LE(events[2 * i].timestamp, events[2 * i + 1].timestamp);
    }
    const SourceLocation* site = events[0].location();
    EXPECT_STREQ(site->name, "zone_test.fixed");
    EXPECT_STREQ(site->display_name(), "zone_test.fixed");
    EXPECT_STREQ(site->function, "TestBody");
    EXPECT_NE(std::strstr(site->file, "zone_test.cpp"), nullptr);
    EXPECT_EQ(site->line, static_cast<std::uint32_t>(zone_line));
    EXPECT_EQ(site->kind, LocationKind::native_zone);
    for (int i = 1; i < 5; ++i) {
        EXPECT_EQ(events[2 * i].location(), site) << "one static location per macro site";
    }
    const SourceLocation* unnamed = events[10].location();
    EXPECT_EQ(unnamed->name, nullptr);
    EXPECT_STREQ(unnamed->display_name(), "function_named_zone");
    EXPECT_EQ(events[10].kind, EventKind::zone_begin);
    EXPECT_EQ(events[11].kind, EventKind::zone_end);
}

TEST(Zone, ZoneObjectReportsWhetherItRecords) {
    static constexpr SourceLocation site{"zone_test.object", "f", "f.cpp", 1, LocationKind::native_zone};
    {
        pycroscope::Zone idle(&site);
        EXPECT_FALSE(idle.recording());
    }
    Session<NativeZones> session(small_config());
    auto sink = session.add_sink<RecordingSink>();
    session.start();
    {
        pycroscope::Zone zone(&site);
        EXPECT_TRUE(zone.recording());
        pycroscope::Zone no_location(nullptr);
        EXPECT_FALSE(no_location.recording());
    }
    session.stop();
    EXPECT_EQ(sink->event_count(), 2u);
}

std::string dyn_name(int i, int& evaluations) {
    ++evaluations;
    return "job-" + std::to_string(i % 3);
}

TEST(Zone, DynamicZonesInternOnePerNameAndSite) {
    int evaluations = 0;
    {
        PYCRO_SCOPE_DYN(dyn_name(0, evaluations)); // no session: not evaluated
    }
    EXPECT_EQ(evaluations, 0);

    Session<NativeZones> session(small_config());
    auto sink = session.add_sink<RecordingSink>();
    session.start();
    int dyn_line = 0;
    for (int i = 0; i < 9; ++i) {
        dyn_line = __LINE__ + 1;
        PYCRO_SCOPE_DYN(dyn_name(i, evaluations));
    }
    {
        PYCRO_SCOPE_DYN("job-0"); // same name, other site: another location
    }
    {
        PYCRO_SCOPE_DYN(std::string_view("literal"));
    }
    session.stop();
    EXPECT_EQ(evaluations, 9);

    const auto events = sink->all_events();
    ASSERT_EQ(events.size(), 22u);
    EXPECT_EQ(of_kind(events, EventKind::zone_begin).size(), 11u);
    EXPECT_EQ(of_kind(events, EventKind::zone_end).size(), 11u);
    std::map<std::string, std::set<const SourceLocation*>> by_name;
    for (int i = 0; i < 9; ++i) {
        const SourceLocation* loc = events[2 * i].location();
        ASSERT_EQ(events[2 * i + 1].location(), loc);
        EXPECT_EQ(std::string(loc->name), "job-" + std::to_string(i % 3));
        EXPECT_EQ(loc->kind, LocationKind::dynamic_zone);
        EXPECT_EQ(loc->line, static_cast<std::uint32_t>(dyn_line));
        EXPECT_STREQ(loc->function, "TestBody");
        EXPECT_NE(std::strstr(loc->file, "zone_test.cpp"), nullptr);
        by_name[loc->name].insert(loc);
    }
    ASSERT_EQ(by_name.size(), 3u);
    for (const auto& entry : by_name) {
        EXPECT_EQ(entry.second.size(), 1u) << entry.first << " interned more than once";
    }
    const SourceLocation* other_site = events[18].location();
    EXPECT_STREQ(other_site->name, "job-0");
    EXPECT_NE(other_site, *by_name["job-0"].begin());
    EXPECT_STREQ(events[20].location()->name, "literal");
}

TEST(Zone, MarksCountersAndFrameMarks) {
    Session<NativeZones> session(small_config());
    auto sink = session.add_sink<RecordingSink>();
    session.start();
    for (int i = 0; i < 3; ++i) {
        PYCRO_MARK("zone_test.mark");
    }
    pycroscope::mark(std::string_view("zone_test.runtime_mark"));
    pycroscope::mark(std::string("zone_test.runtime_mark"));
    const double values[] = {0.0,
                             -0.0,
                             1.5,
                             -123456.789,
                             1e300,
                             std::numeric_limits<double>::denorm_min(),
                             std::numeric_limits<double>::infinity(),
                             static_cast<double>(std::uint64_t{1} << 60)};
    for (const double v : values) {
        PYCRO_COUNTER("zone_test.counter", v);
    }
    PYCRO_COUNTER("zone_test.int_counter", 42); // any arithmetic type
    pycroscope::counter(std::string_view("zone_test.runtime_counter"), 2.25);
    for (int i = 0; i < 4; ++i) {
        PYCRO_FRAME_MARK();
    }
    for (int i = 0; i < 2; ++i) {
        PYCRO_FRAME_MARK_N("zone_test.secondary");
    }
    session.stop();

    const auto events = sink->all_events();
    ASSERT_EQ(events.size(), 5u + 10u + 6u);
    EXPECT_EQ(sink->count_kind(EventKind::instant), 5u);
    EXPECT_EQ(sink->count_kind(EventKind::counter), 10u);
    EXPECT_EQ(sink->count_kind(EventKind::frame_mark), 6u);
    EXPECT_EQ(sink->count_kind(EventKind::zone_begin), 0u);

    const auto marks = of_kind(events, EventKind::instant);
    EXPECT_STREQ(marks[0].location()->name, "zone_test.mark");
    EXPECT_EQ(marks[0].location()->kind, LocationKind::mark);
    EXPECT_EQ(marks[1].location(), marks[0].location());
    EXPECT_EQ(marks[2].location(), marks[0].location());
    EXPECT_STREQ(marks[3].location()->name, "zone_test.runtime_mark");
    EXPECT_EQ(marks[3].location()->kind, LocationKind::mark);
    EXPECT_EQ(marks[4].location(), marks[3].location()) << "runtime names are interned once";

    const auto counters = of_kind(events, EventKind::counter);
    for (std::size_t i = 0; i < 8; ++i) {
        // Bit-exact round trip (tells 0.0 from -0.0).
        EXPECT_EQ(counters[i].payload, pycroscope::double_bits(values[i])) << i;
        const double back = counters[i].value();
        EXPECT_EQ(std::memcmp(&back, &values[i], sizeof back), 0) << i;
        EXPECT_STREQ(counters[i].location()->name, "zone_test.counter");
        EXPECT_EQ(counters[i].location()->kind, LocationKind::counter);
    }
    EXPECT_EQ(counters[8].value(), 42.0);
    EXPECT_STREQ(counters[8].location()->name, "zone_test.int_counter");
    EXPECT_EQ(counters[9].value(), 2.25);
    EXPECT_STREQ(counters[9].location()->name, "zone_test.runtime_counter");
    EXPECT_EQ(counters[9].location()->kind, LocationKind::counter);

    const auto frames = of_kind(events, EventKind::frame_mark);
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(frames[i].location(), pycroscope::detail::default_frame_location());
    }
    EXPECT_STREQ(frames[0].location()->name, "frame");
    EXPECT_EQ(frames[0].location()->kind, LocationKind::frame);
    EXPECT_STREQ(frames[4].location()->name, "zone_test.secondary");
    EXPECT_EQ(frames[4].location()->kind, LocationKind::frame);
    EXPECT_EQ(frames[5].location(), frames[4].location());
}

TEST(Zone, NaNCounterRoundTrips) {
    Session<NativeZones> session(small_config());
    auto sink = session.add_sink<RecordingSink>();
    session.start();
    PYCRO_COUNTER("zone_test.nan", std::numeric_limits<double>::quiet_NaN());
    session.stop();
    const auto events = sink->all_events();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_TRUE(std::isnan(events[0].value()));
}

TEST(Zone, CounterValueEvaluatedOnlyWhileRecording) {
    int evaluations = 0;
    PYCRO_COUNTER("zone_test.lazy", ++evaluations);
    EXPECT_EQ(evaluations, 0);
    Session<NativeZones> session(small_config());
    auto sink = session.add_sink<RecordingSink>();
    session.start();
    PYCRO_COUNTER("zone_test.lazy", ++evaluations);
    PYCRO_COUNTER("zone_test.lazy", ++evaluations);
    session.stop();
    PYCRO_COUNTER("zone_test.lazy", ++evaluations);
    EXPECT_EQ(evaluations, 2);
    const auto events = sink->all_events();
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].value(), 1.0);
    EXPECT_EQ(events[1].value(), 2.0);
}

TEST(Zone, NothingWithoutASession) {
    auto sink = std::make_shared<RecordingSink>();
    EXPECT_FALSE(pycroscope::native_zones_active());
    { PYCRO_SCOPE_N("zone_test.idle"); }
    PYCRO_MARK("zone_test.idle");
    PYCRO_FRAME_MARK();
    pycroscope::mark(std::string_view("zone_test.idle"));
    static constexpr SourceLocation site{"x", "x", "x", 0, LocationKind::other};
    EXPECT_FALSE(pycroscope::record(EventKind::instant, &site));
    Session<NativeZones> session(small_config());
    session.add_sink(sink);
    session.start();
    session.stop();
    EXPECT_EQ(sink->event_count(), 0u);
    EXPECT_TRUE(session.summary().threads.empty());
}

// Without the NativeZones collector the native macros record nothing, while
// record() (the entry point of other collectors) still does.
TEST(Zone, NativeMacrosNeedTheNativeZonesCollector) {
    static constexpr SourceLocation site{"zone_test.generic", "f", "f.py", 3, LocationKind::python_function};
    Session<> session(small_config());
    auto sink = session.add_sink<RecordingSink>();
    session.start();
    EXPECT_FALSE(pycroscope::native_zones_active());
    { PYCRO_SCOPE_N("zone_test.not_collected"); }
    PYCRO_MARK("zone_test.not_collected");
    EXPECT_TRUE(pycroscope::record(EventKind::py_call, &site, 7, 9));
    EXPECT_TRUE(pycroscope::record(EventKind::py_return, &site));
    session.stop();
    EXPECT_FALSE(pycroscope::record(EventKind::py_call, &site));
    const auto events = sink->all_events();
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].kind, EventKind::py_call);
    EXPECT_EQ(events[0].location(), &site);
    EXPECT_EQ(events[0].payload, 7u);
    EXPECT_EQ(events[0].aux, 9u);
    EXPECT_EQ(events[1].kind, EventKind::py_return);
    EXPECT_TRUE(sink->info().collectors.empty());
}

// A zone that outlives its session records no end in the next one: every
// recorded end has its begin in the same session.
TEST(Zone, ZoneSpanningTwoSessionsEndsInNeither) {
    static constexpr SourceLocation site{"zone_test.straddle", "f", "f.cpp", 1, LocationKind::native_zone};
    Session<NativeZones> session(small_config());
    auto sink = session.add_sink<RecordingSink>();
    session.start();
    auto* zone = new pycroscope::Zone(&site);
    EXPECT_TRUE(zone->recording());
    const auto first = session.stop();
    EXPECT_EQ(first.total_events, 1u);
    EXPECT_EQ(sink->count_kind(EventKind::zone_begin), 1u);

    session.start();
    { PYCRO_SCOPE_N("zone_test.inside_second"); }
    delete zone; // ends during the second session: skipped
    const auto second = session.stop();
    EXPECT_EQ(second.total_events, 2u);
    const auto events = sink->all_events();
    ASSERT_EQ(events.size(), 2u);
    EXPECT_STREQ(events[0].location()->name, "zone_test.inside_second");
    EXPECT_STREQ(events[1].location()->name, "zone_test.inside_second");
}

} // namespace
} // namespace zone_test
