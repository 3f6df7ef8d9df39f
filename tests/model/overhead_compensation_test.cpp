// Overhead compensation (model/overhead_compensation.hpp) on synthetic event
// streams, through model::ProfileBuilder (ns_per_tick = 1, so a timestamp is
// a nanosecond): exact self and inclusive times, clamping, what is counted.

#include <pycroscope/model/overhead_compensation.hpp>
#include <pycroscope/model/profile_builder.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace overhead_compensation_test {
namespace {

using namespace pycroscope;
using model::Profile;

constexpr SourceLocation main_fn{"main", "main", "app.py", 1, LocationKind::python_function};
constexpr SourceLocation f_fn{"f", "f", "app.py", 10, LocationKind::python_function};
constexpr SourceLocation g_fn{"g", "g", "app.py", 20, LocationKind::python_function};
constexpr SourceLocation len_fn{"len", "builtins.len", "", 0, LocationKind::c_function};
constexpr SourceLocation zone{"load", "load", "host.cpp", 7, LocationKind::native_zone};

Event event(std::uint64_t t, const SourceLocation& l, EventKind kind, std::uint8_t flags = 0) {
    return Event{t, location_id(&l), 0, 0, kind, flags, 0};
}

ThreadInfo thread(std::uint32_t index) {
    ThreadInfo t;
    t.index = index;
    t.os_tid = 100 + index;
    t.name = "t";
    return t;
}

struct Feed {
    std::shared_ptr<model::ProfileBuilder> builder = std::make_shared<model::ProfileBuilder>();
    SessionSummary summary;
    Feed() {
        summary.info.calibration.ns_per_tick = 1.0;
        summary.duration_ns = 1000;
        builder->open(summary.info);
    }
    void feed(std::uint32_t index, std::vector<Event> events) {
        builder->process(thread(index), events.data(), events.size());
    }
    const Profile& finish() {
        builder->close(summary);
        return builder->profile();
    }
};

const model::Function& fn(const Profile& p, const char* name) {
    const std::uint32_t i = p.find(name);
    EXPECT_NE(i, model::no_index) << name;
    return p.functions.at(i);
}

// main calls f then g: event i is shifted back by 10 x i.
std::vector<Event> two_children() {
    return {event(0, main_fn, EventKind::py_call),   event(100, f_fn, EventKind::py_call),
            event(150, f_fn, EventKind::py_return),  event(200, g_fn, EventKind::py_call),
            event(260, g_fn, EventKind::py_return), event(400, main_fn, EventKind::py_return)};
}

TEST(OverheadShiftTest, ShiftsEachEventByTheEventsBeforeIt) {
    model::OverheadShift shift(10.0);
    std::vector<std::uint64_t> out;
    for (const Event& e : two_children()) {
        out.push_back(shift.apply(e));
    }
    EXPECT_EQ(out, (std::vector<std::uint64_t>{0, 90, 130, 170, 220, 350}));
    EXPECT_EQ(shift.subtracted_events(), 6u);
}

TEST(OverheadShiftTest, RebiasKeepsWhatWasSubtractedSoNothingJumps) {
    model::OverheadShift shift(10.0);
    const std::vector<Event> events = two_children();
    std::vector<std::uint64_t> out;
    for (std::size_t i = 0; i < events.size(); ++i) {
        if (i == 3) {
            shift.rebias(5.0); // 30 subtracted so far stays; 5 per event from here
        }
        out.push_back(shift.apply(events[i]));
    }
    EXPECT_EQ(out, (std::vector<std::uint64_t>{0, 90, 130, 170, 225, 360}));
    shift.rebias(5.0); // the same bias again changes nothing
    EXPECT_EQ(shift.apply(event(500, main_fn, EventKind::py_call)), 455u);
    EXPECT_EQ(shift.subtracted_events(), 7u);
}

TEST(OverheadShiftTest, ZeroBiasKeepsTimestamps) {
    model::OverheadShift shift;
    for (const Event& e : two_children()) {
        EXPECT_EQ(shift.apply(e), e.timestamp);
    }
    EXPECT_EQ(shift.subtracted_events(), 0u);
}

TEST(OverheadShiftTest, FractionalBiasRoundsTheAccumulatedShift) {
    model::OverheadShift shift(2.5);
    const std::vector<Event> events{event(100, f_fn, EventKind::py_call), event(200, f_fn, EventKind::py_return),
                                    event(300, f_fn, EventKind::py_call), event(400, f_fn, EventKind::py_return)};
    std::vector<std::uint64_t> out;
    for (const Event& e : events) {
        out.push_back(shift.apply(e));
    }
    // Shifts 0, 2.5 -> 3, 5, 7.5 -> 8.
    EXPECT_EQ(out, (std::vector<std::uint64_t>{100, 197, 295, 392}));
}

TEST(OverheadCompensationTest, SubtractsOwnAndChildEventsFromSelfAndInclusive) {
    Feed run;
    run.builder->set_overhead(model::OverheadBias{10.0, "test", 0, 0});
    run.feed(1, two_children());
    const Profile& p = run.finish();
    // Uncompensated: main 400 inclusive, 290 self; f 50; g 60.
    EXPECT_EQ(fn(p, "main").inclusive, 350u); // five events inside its span
    EXPECT_EQ(fn(p, "main").self, 260u);      // its own call, and one per child (their calls before, returns after)
    EXPECT_EQ(fn(p, "f").inclusive, 40u);
    EXPECT_EQ(fn(p, "f").self, 40u);
    EXPECT_EQ(fn(p, "g").inclusive, 50u);
    EXPECT_EQ(fn(p, "g").self, 50u);
    EXPECT_EQ(fn(p, "main").calls, 1u);
    EXPECT_EQ(fn(p, "f").calls, 1u);
    EXPECT_EQ(p.total, 350u);
    EXPECT_EQ(run.builder->compensated_events(), 6u);
    ASSERT_EQ(p.edges.size(), 2u);
    EXPECT_EQ(p.edges[0].inclusive + p.edges[1].inclusive, 90u);
}

TEST(OverheadCompensationTest, WithoutBiasTimesAreRaw) {
    Feed run;
    run.feed(1, two_children());
    const Profile& p = run.finish();
    EXPECT_EQ(fn(p, "main").inclusive, 400u);
    EXPECT_EQ(fn(p, "main").self, 290u);
    EXPECT_EQ(fn(p, "f").self, 50u);
    EXPECT_EQ(fn(p, "g").self, 60u);
}

TEST(OverheadCompensationTest, ClampsSoNoDurationGoesNegative) {
    Feed run;
    run.builder->set_overhead(model::OverheadBias{10.0, "test", 0, 0});
    run.feed(1, {event(0, main_fn, EventKind::py_call), event(5, f_fn, EventKind::py_call),
                 event(8, f_fn, EventKind::py_return), event(100, main_fn, EventKind::py_return)});
    const Profile& p = run.finish();
    EXPECT_EQ(fn(p, "f").inclusive, 0u); // 5-10 and 8-20 both clamp to 0
    EXPECT_EQ(fn(p, "f").self, 0u);
    EXPECT_EQ(fn(p, "main").inclusive, 70u); // 100 - 30
    EXPECT_EQ(fn(p, "main").self, 70u);
}

TEST(OverheadCompensationTest, ZonesAreShiftedButNotCountedNorSyntheticEvents) {
    Feed run;
    run.builder->set_overhead(model::OverheadBias{10.0, "test", 0, 0});
    run.feed(1, {event(0, main_fn, EventKind::py_call, event_flags::synthetic), event(0, zone, EventKind::zone_begin),
                 event(10, f_fn, EventKind::py_call), event(30, f_fn, EventKind::py_return),
                 event(50, zone, EventKind::zone_end), event(60, len_fn, EventKind::c_call),
                 event(75, len_fn, EventKind::c_return), event(100, main_fn, EventKind::py_return)});
    const Profile& p = run.finish();
    EXPECT_EQ(fn(p, "f").inclusive, 10u);     // 10..(30-10)
    EXPECT_EQ(fn(p, "load").inclusive, 30u);  // 0..(50-20)
    EXPECT_EQ(fn(p, "load").self, 20u);
    EXPECT_EQ(fn(p, "len").inclusive, 5u);    // (60-20)..(75-30)
    EXPECT_EQ(fn(p, "main").inclusive, 60u);  // 0..(100-40)
    EXPECT_EQ(fn(p, "main").self, 25u);       // 60 - 30 - 5
    EXPECT_EQ(run.builder->compensated_events(), 5u); // f, len and main's return; not the synthetic call
}

TEST(OverheadCompensationTest, ThreadsCountTheirOwnEvents) {
    Feed run;
    run.builder->set_overhead(model::OverheadBias{10.0, "test", 0, 0});
    run.feed(1, two_children());
    run.feed(2, two_children());
    const Profile& p = run.finish();
    EXPECT_EQ(fn(p, "main").inclusive, 700u);
    EXPECT_EQ(fn(p, "main").self, 520u);
    EXPECT_EQ(fn(p, "f").self, 80u);
    EXPECT_EQ(run.builder->compensated_events(), 12u);
}

TEST(OverheadCompensationTest, BiasSetMidRunCountsFromThere) {
    Feed run;
    run.feed(1, {event(0, main_fn, EventKind::py_call), event(100, f_fn, EventKind::py_call),
                 event(150, f_fn, EventKind::py_return)});
    run.builder->set_overhead(model::OverheadBias{10.0, "test", 0, 0});
    run.feed(1, {event(200, g_fn, EventKind::py_call), event(260, g_fn, EventKind::py_return),
                 event(400, main_fn, EventKind::py_return)});
    const Profile& p = run.finish();
    EXPECT_EQ(fn(p, "f").self, 50u);           // before the bias: raw
    EXPECT_EQ(fn(p, "g").self, 50u);           // 200..(260-10)
    EXPECT_EQ(fn(p, "main").inclusive, 380u);  // 0..(400-20)
    EXPECT_EQ(run.builder->compensated_events(), 3u);
}

Event bias_event(std::uint64_t t, const SourceLocation& l, double ns) {
    return Event{t, location_id(&l), double_bits(ns), 0, EventKind::counter, 0, 0};
}

TEST(OverheadCompensationTest, BiasEventInTheStreamStartsCompensation) {
    // As a live run records it, and as a replay reads it back: the same
    // counter name at another address.
    constexpr SourceLocation replayed{"pycroscope.overhead_ns_per_event", "", "", 0, LocationKind::counter};
    for (const SourceLocation* location : {&model::overhead_bias_location, &replayed}) {
        Feed run;
        std::vector<Event> events{bias_event(0, *location, 10.0)};
        for (const Event& e : two_children()) {
            events.push_back(e);
        }
        run.feed(1, events);
        const Profile& p = run.finish();
        EXPECT_EQ(fn(p, "main").inclusive, 350u);
        EXPECT_EQ(fn(p, "main").self, 260u);
        EXPECT_EQ(fn(p, "g").self, 50u);
        EXPECT_DOUBLE_EQ(run.builder->overhead().ns_per_event, 10.0);
        EXPECT_EQ(run.builder->compensated_events(), 6u);
    }
}

TEST(OverheadCompensationTest, TheBiasEventAgainMidSpanChangesNothing) {
    // A live run used to set the bias directly and then meet its event in
    // the stream: the second start counted from zero again, and a span open
    // across it got all the earlier subtraction back.
    Feed once, twice;
    std::vector<Event> first{bias_event(0, model::overhead_bias_location, 10.0)};
    std::vector<Event> rest;
    const std::vector<Event> events = two_children();
    first.insert(first.end(), events.begin(), events.begin() + 4);
    rest.assign(events.begin() + 4, events.end());
    once.feed(1, first);
    once.feed(1, rest);
    twice.feed(1, first);
    twice.feed(1, {bias_event(230, model::overhead_bias_location, 10.0)});
    twice.feed(1, rest);
    const Profile& a = once.finish();
    const Profile& b = twice.finish();
    EXPECT_EQ(fn(b, "main").inclusive, fn(a, "main").inclusive);
    EXPECT_EQ(fn(b, "main").self, fn(a, "main").self);
    EXPECT_EQ(fn(b, "g").self, fn(a, "g").self);
    EXPECT_EQ(fn(b, "main").inclusive, 350u);
}

TEST(OverheadCompensationTest, TheMeasurementTravelsAsCountersAndTheBiasNamesItsBackend) {
    constexpr SourceLocation untraced{"pycroscope.overhead_untraced_ns_per_call", "", "", 0, LocationKind::counter};
    constexpr SourceLocation traced{"pycroscope.overhead_traced_ns_per_call", "", "", 0, LocationKind::counter};
    Feed run;
    std::vector<Event> events{bias_event(0, untraced, 22.5), bias_event(0, traced, 43.5),
                              bias_event(0, model::overhead_bias_location_for("monitoring"), 10.5)};
    for (const Event& e : events) {
        EXPECT_TRUE(model::is_overhead_counter_event(e));
    }
    run.feed(1, events);
    run.feed(1, two_children());
    run.finish();
    const model::OverheadBias& bias = run.builder->overhead();
    EXPECT_EQ(bias.backend, "monitoring");
    EXPECT_DOUBLE_EQ(bias.ns_per_event, 10.5);
    EXPECT_DOUBLE_EQ(bias.untraced_ns_per_call, 22.5);
    EXPECT_DOUBLE_EQ(bias.traced_ns_per_call, 43.5);
    EXPECT_EQ(model::overhead_bias_location_for("eval_frame").function, std::string("eval_frame"));
    EXPECT_EQ(model::overhead_bias_location_for("profile").function, std::string("profile"));
    EXPECT_FALSE(model::is_overhead_counter_event(event(0, main_fn, EventKind::py_call)));
}

TEST(OverheadCompensationTest, AModelToldNotToCompensateReadsTheBiasButKeepsRawTimes) {
    Feed run;
    run.builder->compensate(false);
    std::vector<Event> events{bias_event(0, model::overhead_bias_location, 10.0)};
    for (const Event& e : two_children()) {
        events.push_back(e);
    }
    run.feed(1, events);
    const Profile& p = run.finish();
    EXPECT_EQ(fn(p, "main").inclusive, 400u);
    EXPECT_DOUBLE_EQ(run.builder->overhead().ns_per_event, 10.0);
    EXPECT_EQ(run.builder->compensated_events(), 0u);
}

TEST(OverheadCompensationTest, OtherCountersAreNotBiasEvents) {
    constexpr SourceLocation other{"rss_mb", "", "", 0, LocationKind::counter};
    Feed run;
    std::vector<Event> events{bias_event(0, other, 10.0)};
    for (const Event& e : two_children()) {
        events.push_back(e);
    }
    run.feed(1, events);
    const Profile& p = run.finish();
    EXPECT_EQ(fn(p, "main").inclusive, 400u);
    EXPECT_EQ(run.builder->compensated_events(), 0u);
}

TEST(OverheadCompensationTest, BiasInNanosecondsIsConvertedToTicks) {
    Feed run;
    run.summary.info.calibration.ns_per_tick = 0.5; // 2 ticks per ns
    run.builder->open(run.summary.info);
    run.builder->set_overhead(model::OverheadBias{5.0, "test", 0, 0}); // 10 ticks
    run.feed(1, two_children());
    const Profile& p = run.finish();
    EXPECT_EQ(fn(p, "main").inclusive, 175u); // 350 ticks
    EXPECT_EQ(fn(p, "f").self, 20u);          // 40 ticks
}

} // namespace
} // namespace overhead_compensation_test
