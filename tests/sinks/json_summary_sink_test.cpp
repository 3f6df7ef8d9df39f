// JsonSummarySink (session.json): parsed back and compared with what was
// recorded, exactly on synthetic input and against the raw events of a real
// session.

#include "sinks/sink_test_helpers.hpp"
#include "support/json.hpp"
#include "support/recording_sink.hpp"

#include <pycroscope/core/session.hpp>
#include <pycroscope/core/zone.hpp>
#include <pycroscope/model/profile_builder.hpp>
#include <pycroscope/sinks/json_summary_sink.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace json_summary_sink_test {
namespace {

using pycroscope::LocationKind;
using pycroscope::SourceLocation;
using pycroscope::sinks::JsonSummarySink;
using sink_test::Synthetic;
using sink_test::TempDir;

constexpr SourceLocation loc_a{"A", "void fn_a()", "a.cpp", 10, LocationKind::native_zone};
constexpr SourceLocation loc_b{"B", "void fn_b()", "b.cpp", 20, LocationKind::native_zone};
constexpr SourceLocation loc_c{"C", "void fn_c()", "c.cpp", 30, LocationKind::native_zone};
constexpr SourceLocation loc_r{"R", "void fn_r()", "r.cpp", 40, LocationKind::native_zone};
constexpr SourceLocation loc_m{"M", "void fn_m()", "m.cpp", 50, LocationKind::mark};
constexpr SourceLocation loc_k{"K", "void fn_k()", "k.cpp", 60, LocationKind::counter};
constexpr SourceLocation loc_f{"F", "void fn_f()", "f.cpp", 70, LocationKind::frame};
constexpr SourceLocation loc_unnamed{nullptr, "void host::update()", "u.cpp", 80, LocationKind::native_zone};

const json::Value& find_named(const json::Value& array, const std::string& name) {
    for (const auto& item : array.items()) {
        if (item.at("name").as_string() == name) {
            return item;
        }
    }
    throw std::out_of_range("no entry named '" + name + "'");
}

bool has_named(const json::Value& array, const std::string& name) {
    for (const auto& item : array.items()) {
        if (item.at("name").as_string() == name) {
            return true;
        }
    }
    return false;
}

// The stream described in the comments of SyntheticSummary below.
Synthetic make_stream() {
    Synthetic s;
    s.info.metadata = {{"build", "debug"}, {"quote\"key", "line\nbreak"}};
    s.errors = {"some sink 'x': failed"};
    s.thread(1, "main");
    s.thread(2, "worker \"2\"", 4);
    // Thread 1: A(100..300) > B(110..150), B(160..200) > C(170..190).
    s.begin(1, &loc_a, 100);
    s.counter(1, &loc_k, 105, 5.0);
    s.begin(1, &loc_b, 110);
    s.counter(1, &loc_k, 115, -2.0);
    s.mark(1, &loc_m, 120);
    s.mark(1, &loc_m, 130);
    s.end(1, &loc_b, 150);
    s.begin(1, &loc_b, 160);
    s.begin(1, &loc_c, 170);
    s.end(1, &loc_c, 190);
    s.end(1, &loc_b, 200);
    s.end(1, &loc_a, 300);
    // Direct recursion R(400..500) > R(410..440) > R(420..430).
    s.begin(1, &loc_r, 400);
    s.begin(1, &loc_r, 410);
    s.begin(1, &loc_r, 420);
    s.end(1, &loc_r, 430);
    s.end(1, &loc_r, 440);
    s.end(1, &loc_r, 500);
    s.frame(1, &loc_f, 1000);
    s.frame(1, &loc_f, 1016);
    s.frame(1, &loc_f, 1050);
    // Thread 2: a mark, an end without begin, two counter samples.
    s.mark(2, &loc_m, 50);
    s.end(2, &loc_c, 60);
    s.counter(2, &loc_k, 70, 7.5);
    s.counter(2, &loc_k, 80, 3.0);
    // Recursion through A: R(100..150) > A(110..140) > R(120..130).
    s.begin(2, &loc_r, 100);
    s.begin(2, &loc_a, 110);
    s.begin(2, &loc_r, 120);
    s.end(2, &loc_r, 130);
    s.end(2, &loc_a, 140);
    s.end(2, &loc_r, 150);
    s.frame(2, &loc_f, 2000);
    s.frame(2, &loc_f, 2010);
    // Still open when the session stops at 3500.
    s.begin(2, &loc_b, 3000);
    return s;
}

json::Value play_and_parse(const Synthetic& s, JsonSummarySink& sink, std::uint64_t stop, std::size_t batch) {
    s.play(sink, stop, batch);
    return json::parse_file(sink.path());
}

TEST(JsonSummarySink, SyntheticExactValues) {
    TempDir dir;
    Synthetic s = make_stream();
    JsonSummarySink sink(dir.file("session.json"));
    sink.add_section("extra", [](pycroscope::sinks::JsonWriter& w, const pycroscope::SessionSummary& summary) {
        w.begin_object().field("threads", summary.threads.size()).key("list").begin_array().value(1).value("two");
        w.end_array().end_object();
    });
    sink.add_section("note", [](pycroscope::sinks::JsonWriter& w, const pycroscope::SessionSummary&) {
        w.value("hello");
    });
    const json::Value doc = play_and_parse(s, sink, 3500, 3);

    EXPECT_EQ(doc.at("format").as_string(), "pycroscope-session");
    EXPECT_EQ(doc.at("version").as_int(), 1);
    EXPECT_EQ(doc.at("process").at("name").as_string(), "synthetic");
    EXPECT_EQ(doc.at("process").at("pid").as_int(), 4242);
    EXPECT_EQ(doc.at("start_unix_ns").as_int(), 1700000000000000000);
    EXPECT_EQ(doc.at("duration_ns").as_int(), 3500);
    EXPECT_EQ(doc.at("clock").at("source").as_string(), "steady_clock");
    EXPECT_EQ(doc.at("clock").at("ns_per_tick").as_number(), 1.0);
    EXPECT_EQ(doc.at("buffer").at("capacity_events").as_int(), 1024);
    EXPECT_EQ(doc.at("buffer").at("overflow").as_string(), "block");
    ASSERT_EQ(doc.at("collectors").size(), 1u);
    EXPECT_EQ(doc.at("collectors")[0].as_string(), "synthetic");

    const json::Value& metadata = doc.at("metadata");
    ASSERT_EQ(metadata.size(), 2u);
    EXPECT_EQ(metadata.at("build").as_string(), "debug");
    EXPECT_EQ(metadata.at("quote\"key").as_string(), "line\nbreak");

    const std::uint64_t events1 = s.events(1).size(), events2 = s.events(2).size();
    EXPECT_EQ(doc.at("events_total").as_uint(), events1 + events2);
    EXPECT_EQ(doc.at("lost_events").as_int(), 4);
    EXPECT_EQ(doc.at("unmatched_ends").as_int(), 1);

    const json::Value& threads = doc.at("threads");
    ASSERT_EQ(threads.size(), 2u);
    EXPECT_EQ(threads[0].at("index").as_int(), 1);
    EXPECT_EQ(threads[0].at("os_tid").as_int(), 10001);
    EXPECT_EQ(threads[0].at("name").as_string(), "main");
    EXPECT_EQ(threads[0].at("events").as_uint(), events1);
    EXPECT_EQ(threads[0].at("lost").as_int(), 0);
    EXPECT_FALSE(threads[0].at("exited").as_bool());
    EXPECT_EQ(threads[1].at("index").as_int(), 2);
    EXPECT_EQ(threads[1].at("name").as_string(), "worker \"2\"");
    EXPECT_EQ(threads[1].at("events").as_uint(), events2);
    EXPECT_EQ(threads[1].at("lost").as_int(), 4);

    // Zones, by inclusive time descending.
    const json::Value& zones = doc.at("zones");
    ASSERT_EQ(zones.size(), 4u);
    struct Expected {
        const char* name;
        std::int64_t count, inclusive, self;
    };
    const Expected expected[] = {
        {"B", 3, 40 + 40 + 500, 40 + 20 + 500}, // the open B closes at stop (3500)
        {"A", 2, 200 + 30, 120 + 20},
        {"R", 5, 100 + 50, (10 + 20 + 70) + (10 + 20)}, // outermost activations only
        {"C", 1, 20, 20},                               // the unmatched end adds nothing
    };
    for (std::size_t i = 0; i < 4; ++i) {
        SCOPED_TRACE(expected[i].name);
        EXPECT_EQ(zones[i].at("name").as_string(), expected[i].name);
        EXPECT_EQ(zones[i].at("count").as_int(), expected[i].count);
        EXPECT_EQ(zones[i].at("inclusive_ns").as_int(), expected[i].inclusive);
        EXPECT_EQ(zones[i].at("self_ns").as_int(), expected[i].self);
        EXPECT_EQ(zones[i].at("kind").as_string(), "zone");
    }
    EXPECT_EQ(zones[1].at("function").as_string(), "void fn_a()");
    EXPECT_EQ(zones[1].at("file").as_string(), "a.cpp");
    EXPECT_EQ(zones[1].at("line").as_int(), 10);

    const json::Value& marks = doc.at("marks");
    ASSERT_EQ(marks.size(), 1u);
    EXPECT_EQ(marks[0].at("name").as_string(), "M");
    EXPECT_EQ(marks[0].at("kind").as_string(), "mark");
    EXPECT_EQ(marks[0].at("count").as_int(), 3);

    const json::Value& counters = doc.at("counters");
    ASSERT_EQ(counters.size(), 1u);
    EXPECT_EQ(counters[0].at("name").as_string(), "K");
    EXPECT_EQ(counters[0].at("kind").as_string(), "counter");
    EXPECT_EQ(counters[0].at("samples").as_int(), 4);
    EXPECT_EQ(counters[0].at("min").as_number(), -2.0);
    EXPECT_EQ(counters[0].at("max").as_number(), 7.5);
    EXPECT_EQ(counters[0].at("mean").as_number(), 3.375);
    EXPECT_EQ(counters[0].at("last").as_number(), 3.0);

    const json::Value& frames = doc.at("frames");
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].at("name").as_string(), "F");
    EXPECT_EQ(frames[0].at("kind").as_string(), "frame");
    EXPECT_EQ(frames[0].at("count").as_int(), 5);
    // Intervals per thread: 16, 34 and 10.
    EXPECT_EQ(frames[0].at("mean_ns").as_number(), 20.0);
    EXPECT_EQ(frames[0].at("min_ns").as_number(), 10.0);
    EXPECT_EQ(frames[0].at("max_ns").as_number(), 34.0);

    EXPECT_EQ(doc.at("extra").at("threads").as_int(), 2);
    EXPECT_EQ(doc.at("extra").at("list")[1].as_string(), "two");
    EXPECT_EQ(doc.at("note").as_string(), "hello");

    ASSERT_EQ(doc.at("errors").size(), 1u);
    EXPECT_EQ(doc.at("errors")[0].as_string(), "some sink 'x': failed");

    // location_stats() holds the same totals.
    const auto& stats = sink.location_stats();
    ASSERT_EQ(stats.size(), 4u);
    EXPECT_EQ(stats[0].location, &loc_b);
    EXPECT_EQ(stats[0].count, 3u);
    EXPECT_EQ(stats[0].inclusive_ns, 580.0);
    EXPECT_EQ(stats[2].location, &loc_r);
    EXPECT_EQ(stats[2].self_ns, 130.0);
}

TEST(JsonSummarySink, OutputDoesNotDependOnBatching) {
    TempDir dir;
    const Synthetic s = make_stream();
    std::string first;
    for (const std::size_t batch : {std::size_t{1}, std::size_t{2}, std::size_t{7}, std::size_t{4096}}) {
        JsonSummarySink sink(dir.file("session.json"));
        s.play(sink, 3500, batch);
        const std::string text = sink_test::read_file(sink.path());
        if (first.empty()) {
            first = text;
        } else {
            EXPECT_EQ(text, first) << "batch " << batch;
        }
    }
}

// With the session's ProfileBuilder the zones, per-location totals and
// unmatched ends come from its Profile: the same file, one tree fewer.
TEST(JsonSummarySink, ZonesFromTheProfileBuilderEqualItsOwnTree) {
    TempDir dir;
    Synthetic s = make_stream();
    s.end(2, &loc_b, 3400); // nothing open at stop: open spans end at stop in one, at their last event in the other
    JsonSummarySink own(dir.file("own.json"));
    s.play(own, 3500, 3);
    auto builder = std::make_shared<pycroscope::model::ProfileBuilder>();
    JsonSummarySink shared(dir.file("shared.json"));
    shared.use_profile(builder);
    s.play(*builder, shared, 3500, 2);
    const std::string text = sink_test::read_file(shared.path());
    EXPECT_EQ(text, sink_test::read_file(own.path()));
    EXPECT_NE(text.find("\"name\":\"R\""), std::string::npos);
    ASSERT_EQ(shared.location_stats().size(), own.location_stats().size());
    for (std::size_t i = 0; i < own.location_stats().size(); ++i) {
        EXPECT_EQ(shared.location_stats()[i].location, own.location_stats()[i].location);
        EXPECT_EQ(shared.location_stats()[i].count, own.location_stats()[i].count);
        EXPECT_EQ(shared.location_stats()[i].self_ns, own.location_stats()[i].self_ns);
    }
}

TEST(JsonSummarySink, TicksAreConvertedWithTheCalibration) {
    TempDir dir;
    Synthetic s;
    s.info.calibration.ns_per_tick = 2.5;
    s.info.start_ticks = 1000;
    s.thread(1, "t");
    s.span(1, &loc_a, 1100, 1103); // 3 ticks = 7.5 ns, written rounded
    s.frame(1, &loc_f, 1200);
    s.frame(1, &loc_f, 1203);
    JsonSummarySink sink(dir.file("s.json"));
    s.play(sink, 1400);
    const json::Value doc = json::parse_file(sink.path());
    EXPECT_EQ(doc.at("duration_ns").as_int(), 1000); // (1400 - 1000) * 2.5
    EXPECT_EQ(doc.at("clock").at("ns_per_tick").as_number(), 2.5);
    EXPECT_EQ(doc.at("zones")[0].at("inclusive_ns").as_int(), 8);
    EXPECT_EQ(doc.at("zones")[0].at("self_ns").as_int(), 8);
    EXPECT_EQ(doc.at("frames")[0].at("mean_ns").as_number(), 7.5);
}

TEST(JsonSummarySink, TheProfilersOwnCalibrationCountersAreNoCounters) {
    TempDir dir;
    Synthetic s;
    s.thread(1, "t");
    s.counter(1, &pycroscope::model::overhead_untraced_location, 5, 22.0);
    s.counter(1, &pycroscope::model::overhead_bias_location_for("eval_frame"), 6, 10.0);
    s.counter(1, &loc_k, 7, 1.0);
    s.span(1, &loc_a, 10, 20);
    JsonSummarySink sink(dir.file("s.json"));
    s.play(sink, 30);
    const json::Value doc = json::parse_file(sink.path());
    ASSERT_EQ(doc.at("counters").size(), 1u);
    EXPECT_EQ(doc.at("counters")[0].at("name").as_string(), "K");
}

TEST(JsonSummarySink, UnnamedZoneUsesTheFunctionAndEmptySectionsAreValid) {
    TempDir dir;
    Synthetic s;
    s.thread(1, "t");
    s.span(1, &loc_unnamed, 10, 20);
    JsonSummarySink sink(dir.file("s.json"));
    s.play(sink, 30);
    const json::Value doc = json::parse_file(sink.path());
    ASSERT_EQ(doc.at("zones").size(), 1u);
    EXPECT_EQ(doc.at("zones")[0].at("name").as_string(), "void host::update()");
    EXPECT_EQ(doc.at("marks").size(), 0u);
    EXPECT_EQ(doc.at("counters").size(), 0u);
    EXPECT_EQ(doc.at("frames").size(), 0u);
    EXPECT_EQ(doc.at("metadata").size(), 0u);
    EXPECT_EQ(doc.at("errors").size(), 0u);
    EXPECT_EQ(doc.at("unmatched_ends").as_int(), 0);
}

TEST(JsonSummarySink, EndOfAnOuterZoneClosesInnerZonesWhoseEndWasLost) {
    TempDir dir;
    Synthetic s;
    s.thread(1, "t");
    s.begin(1, &loc_a, 0);
    s.begin(1, &loc_b, 10);
    s.end(1, &loc_a, 50); // B's end was lost: B closes at 50 too
    JsonSummarySink sink(dir.file("s.json"));
    s.play(sink, 100);
    const json::Value doc = json::parse_file(sink.path());
    EXPECT_EQ(find_named(doc.at("zones"), "A").at("inclusive_ns").as_int(), 50);
    EXPECT_EQ(find_named(doc.at("zones"), "A").at("self_ns").as_int(), 10);
    EXPECT_EQ(find_named(doc.at("zones"), "B").at("inclusive_ns").as_int(), 40);
    EXPECT_EQ(doc.at("unmatched_ends").as_int(), 0);
}

TEST(JsonSummarySink, SingleFrameMarkHasNoIntervalStatistics) {
    TempDir dir;
    Synthetic s;
    s.thread(1, "t");
    s.frame(1, &loc_f, 10);
    JsonSummarySink sink(dir.file("s.json"));
    s.play(sink, 20);
    const json::Value doc = json::parse_file(sink.path());
    ASSERT_EQ(doc.at("frames").size(), 1u);
    EXPECT_EQ(doc.at("frames")[0].at("count").as_int(), 1);
    EXPECT_FALSE(doc.at("frames")[0].contains("mean_ns"));
}

// --- real sessions --------------------------------------------------------

struct RefTotals {
    std::uint64_t count = 0, inclusive = 0, self = 0;
};

// Per-name totals from the raw events, the way session.json defines them.
std::map<std::string, RefTotals> reference_totals(const pycroscope_test::RecordingSink& recording,
                                                  std::uint64_t stop_ticks) {
    std::map<std::string, RefTotals> out;
    for (const auto& entry : recording.events_by_thread()) {
        const auto spans = sink_test::reference_spans(entry.second, stop_ticks);
        const auto self = sink_test::reference_self_ticks(spans);
        for (const auto& span : spans) {
            RefTotals& t = out[span.location->display_name()];
            t.count += 1;
            const bool outermost =
                std::find(span.stack.begin(), span.stack.end() - 1, span.location) == span.stack.end() - 1;
            if (outermost) {
                t.inclusive += span.end - span.begin;
            }
        }
        for (const auto& entry_self : self) {
            out[entry_self.first.back()->display_name()].self += entry_self.second;
        }
    }
    return out;
}

TEST(JsonSummarySink, RealSessionOnThreeThreadsMatchesTheRecording) {
    TempDir dir;
    pycroscope::Config config;
    config.metadata = {{"suite", "sinks"}, {"run", "1"}};
    config.process_name = "summary-test";
    pycroscope::Session<pycroscope::NativeZones> session(config);
    auto summary_sink = session.add_sink<JsonSummarySink>(dir.file("session.json"));
    summary_sink->add_section("custom", [](pycroscope::sinks::JsonWriter& w, const pycroscope::SessionSummary& s) {
        w.begin_object().field("threads_seen", s.threads.size()).end_object();
    });
    auto recording = session.add_sink<pycroscope_test::RecordingSink>();
    const int iterations[] = {60, 90, 120}; // main, worker-1, worker-2

    pycroscope::set_thread_name("main");
    session.start();
    sink_test::run_workers(2, [&](int k) {
        sink_test::workload(iterations[k]);
        if (k == 2) {
            for (int i = 0; i < 5; ++i) {
                sink_test::recurse(4);
            }
        }
    });
    sink_test::workload(iterations[0]);
    pycroscope::SessionSummary summary;
    {
        PYCRO_SCOPE_N("held at stop"); // its end is never recorded
        summary = session.stop();
    }
    EXPECT_TRUE(summary.errors.empty());

    const json::Value doc = json::parse_file(dir.file("session.json"));
    EXPECT_EQ(doc.at("process").at("name").as_string(), "summary-test");
    EXPECT_EQ(doc.at("metadata").at("suite").as_string(), "sinks");
    EXPECT_EQ(doc.at("metadata").at("run").as_string(), "1");
    ASSERT_EQ(doc.at("collectors").size(), 1u);
    EXPECT_EQ(doc.at("collectors")[0].as_string(), "native_zones");
    EXPECT_EQ(doc.at("duration_ns").as_int(), summary.duration_ns);
    EXPECT_EQ(doc.at("custom").at("threads_seen").as_int(), 3);

    // Threads: names and exactly the events each recorded.
    const json::Value& threads = doc.at("threads");
    ASSERT_EQ(threads.size(), 3u);
    std::map<std::string, std::uint64_t> expected_events = {
        {"main", iterations[0] * sink_test::events_per_iteration + 1},
        {"worker-1", iterations[1] * sink_test::events_per_iteration},
        {"worker-2", iterations[2] * sink_test::events_per_iteration + 5 * 4 * 2},
    };
    std::uint64_t total = 0;
    for (const auto& t : threads.items()) {
        const std::string name = t.at("name").as_string();
        ASSERT_EQ(expected_events.count(name), 1u) << name;
        EXPECT_EQ(t.at("events").as_uint(), expected_events[name]) << name;
        const auto index = static_cast<std::uint32_t>(t.at("index").as_uint());
        EXPECT_EQ(t.at("events").as_uint(), recording->events_of(index).size()) << name;
        EXPECT_EQ(t.at("lost").as_int(), 0);
        EXPECT_EQ(t.at("exited").as_bool(), name != "main") << name;
        total += t.at("events").as_uint();
    }
    EXPECT_EQ(doc.at("events_total").as_uint(), total);
    EXPECT_EQ(doc.at("lost_events").as_int(), 0);
    EXPECT_EQ(doc.at("unmatched_ends").as_int(), 0);

    const int all = iterations[0] + iterations[1] + iterations[2];
    const json::Value& zones = doc.at("zones");
    ASSERT_EQ(zones.size(), 4u);
    EXPECT_EQ(find_named(zones, "outer").at("count").as_int(), all);
    EXPECT_EQ(find_named(zones, "inner").at("count").as_int(), all);
    EXPECT_EQ(find_named(zones, "recurse").at("count").as_int(), 20);
    EXPECT_EQ(find_named(zones, "held at stop").at("count").as_int(), 1);

    // Inclusive and self time exactly as the raw events give them.
    const auto reference = reference_totals(*recording, summary.stop_ticks);
    const auto& info = summary.info;
    for (const auto& z : zones.items()) {
        const std::string name = z.at("name").as_string();
        SCOPED_TRACE(name);
        ASSERT_EQ(reference.count(name), 1u);
        const RefTotals& r = reference.at(name);
        EXPECT_EQ(z.at("count").as_uint(), r.count);
        EXPECT_EQ(z.at("inclusive_ns").as_uint(), static_cast<std::uint64_t>(info.ticks_to_ns(r.inclusive) + 0.5));
        EXPECT_EQ(z.at("self_ns").as_uint(), static_cast<std::uint64_t>(info.ticks_to_ns(r.self) + 0.5));
        EXPECT_LE(z.at("self_ns").as_uint(), z.at("inclusive_ns").as_uint());
    }
    // Zones come by inclusive time, largest first.
    for (std::size_t i = 1; i < zones.size(); ++i) {
        EXPECT_GE(zones[i - 1].at("inclusive_ns").as_uint(), zones[i].at("inclusive_ns").as_uint());
    }

    ASSERT_EQ(doc.at("marks").size(), 1u);
    EXPECT_EQ(find_named(doc.at("marks"), "tick").at("count").as_int(), all);

    const json::Value& progress = find_named(doc.at("counters"), "progress");
    EXPECT_EQ(progress.at("samples").as_int(), all);
    EXPECT_EQ(progress.at("min").as_number(), 0.0);
    EXPECT_EQ(progress.at("max").as_number(), iterations[2] - 1.0);
    const double sum = (59.0 * 60 + 89.0 * 90 + 119.0 * 120) / 2;
    EXPECT_EQ(progress.at("mean").as_number(), sum / all);
    const double last = progress.at("last").as_number();
    EXPECT_TRUE(last == iterations[0] - 1.0 || last == iterations[1] - 1.0 || last == iterations[2] - 1.0) << last;

    // Frame statistics from the raw frame-mark timestamps of each thread.
    const json::Value& frame = find_named(doc.at("frames"), "frame");
    EXPECT_EQ(frame.at("count").as_int(), all);
    std::uint64_t intervals = 0, sum_ticks = 0;
    for (const auto& entry : recording->events_by_thread()) {
        std::uint64_t previous = 0;
        bool first = true;
        for (const auto& e : entry.second) {
            if (e.kind == pycroscope::EventKind::frame_mark) {
                if (!first) {
                    ++intervals;
                    sum_ticks += e.timestamp - previous;
                }
                first = false;
                previous = e.timestamp;
            }
        }
    }
    EXPECT_EQ(intervals, static_cast<std::uint64_t>(all - 3));
    EXPECT_EQ(frame.at("mean_ns").as_number(), info.ticks_to_ns(sum_ticks) / static_cast<double>(intervals));
    EXPECT_EQ(doc.at("errors").size(), 0u);
}

TEST(JsonSummarySink, ASinkReusedForASecondSessionReportsOnlyThatSession) {
    TempDir dir;
    auto sink = std::make_shared<JsonSummarySink>(dir.file("session.json"));
    for (int run = 1; run <= 2; ++run) {
        pycroscope::Session<pycroscope::NativeZones> session;
        session.add_sink(sink);
        session.start();
        sink_test::run_workers(1, [run](int) { sink_test::workload(10 * run); });
        session.stop();
        const json::Value doc = json::parse_file(sink->path());
        EXPECT_EQ(find_named(doc.at("zones"), "outer").at("count").as_int(), 10 * run);
        EXPECT_EQ(find_named(doc.at("marks"), "tick").at("count").as_int(), 10 * run);
        EXPECT_EQ(find_named(doc.at("counters"), "progress").at("samples").as_int(), 10 * run);
        EXPECT_EQ(doc.at("threads").size(), 1u);
    }
}

TEST(JsonSummarySink, EmptySessionIsAValidFile) {
    TempDir dir;
    pycroscope::Session<pycroscope::NativeZones> session;
    session.add_sink<JsonSummarySink>(dir.file("session.json"));
    session.start();
    session.stop();
    const json::Value doc = json::parse_file(dir.file("session.json"));
    EXPECT_EQ(doc.at("threads").size(), 0u);
    EXPECT_EQ(doc.at("zones").size(), 0u);
    EXPECT_EQ(doc.at("events_total").as_int(), 0);
    EXPECT_FALSE(has_named(doc.at("zones"), "outer"));
}

} // namespace
} // namespace json_summary_sink_test
