// ChromeTraceSink: the whole file parsed as JSON and compared with what was
// recorded: exact ts/dur on synthetic input, and the X events of a real
// session against the raw begin/end events.

#include "sinks/sink_test_helpers.hpp"
#include "support/json.hpp"
#include "support/recording_sink.hpp"

#include <pycroscope/core/session.hpp>
#include <pycroscope/core/zone.hpp>
#include <pycroscope/sinks/chrome_trace_sink.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <ostream>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

namespace chrome_trace_sink_test {
namespace {

using pycroscope::LocationKind;
using pycroscope::SourceLocation;
using pycroscope::sinks::ChromeTraceSink;
using sink_test::Synthetic;
using sink_test::TempDir;
using sink_test::us_text_to_ns;

const char nasty_name[] = "q\"uote\\back/slash\nnew\rret\ttab\x01\x1f\b\f end \xc3\xa9";

constexpr SourceLocation loc_a{"A", "fa", "a.cpp", 1, LocationKind::native_zone};
constexpr SourceLocation loc_b{"B", "fb", "b.cpp", 2, LocationKind::native_zone};
constexpr SourceLocation loc_c{"C", "fc", "c.cpp", 3, LocationKind::native_zone};
constexpr SourceLocation loc_z{"Z", "fz", "z.cpp", 4, LocationKind::native_zone};
constexpr SourceLocation loc_nasty{nasty_name, "fn", "n.cpp", 5, LocationKind::native_zone};
constexpr SourceLocation loc_py{"py_func", "mod.py_func", "dir\\mod \"x\".py", 42, LocationKind::python_function};
constexpr SourceLocation loc_mark{"M", "fm", "m.cpp", 6, LocationKind::mark};
constexpr SourceLocation loc_counter{"K", "fk", "k.cpp", 7, LocationKind::counter};
constexpr SourceLocation loc_frame{"F", "ff", "f.cpp", 8, LocationKind::frame};

// A trace event reduced to what the tests compare.
struct Slice {
    std::uint64_t tid;
    std::string name;
    std::int64_t ts;
    std::int64_t dur;
    bool operator<(const Slice& o) const {
        return std::tie(tid, ts, dur, name) < std::tie(o.tid, o.ts, o.dur, o.name);
    }
    bool operator==(const Slice& o) const {
        return std::tie(tid, ts, dur, name) == std::tie(o.tid, o.ts, o.dur, o.name);
    }
};

std::ostream& operator<<(std::ostream& os, const Slice& s) {
    return os << "{tid " << s.tid << ", '" << s.name << "', ts " << s.ts << ", dur " << s.dur << "}";
}

std::vector<const json::Value*> events_with_phase(const json::Value& doc, const std::string& ph) {
    std::vector<const json::Value*> out;
    for (const auto& e : doc.at("traceEvents").items()) {
        if (e.at("ph").as_string() == ph) {
            out.push_back(&e);
        }
    }
    return out;
}

std::vector<Slice> complete_events(const json::Value& doc) {
    std::vector<Slice> out;
    for (const json::Value* e : events_with_phase(doc, "X")) {
        out.push_back(Slice{e->at("tid").as_uint(), e->at("name").as_string(), us_text_to_ns(e->at("ts")),
                            us_text_to_ns(e->at("dur"))});
    }
    std::sort(out.begin(), out.end());
    return out;
}

// Within a thread, X events must nest: a slice that starts inside another
// ends inside it.
void expect_properly_nested(std::vector<Slice> slices) {
    // Parents before their children: by start, then longest first.
    std::sort(slices.begin(), slices.end(), [](const Slice& a, const Slice& b) {
        return std::make_tuple(a.tid, a.ts, -a.dur) < std::make_tuple(b.tid, b.ts, -b.dur);
    });
    std::map<std::uint64_t, std::vector<Slice>> open;
    for (const auto& s : slices) {
        auto& stack = open[s.tid];
        while (!stack.empty() && stack.back().ts + stack.back().dur <= s.ts) {
            stack.pop_back();
        }
        if (!stack.empty()) {
            const Slice& parent = stack.back();
            EXPECT_GE(s.ts, parent.ts) << s << " in " << parent;
            EXPECT_LE(s.ts + s.dur, parent.ts + parent.dur) << s << " overflows " << parent;
        }
        stack.push_back(s);
    }
}

// Every event has the common fields with the right types; timestamps are
// numbers in microseconds with exactly three decimals.
void check_event_shapes(const json::Value& doc, std::uint64_t pid) {
    for (const auto& e : doc.at("traceEvents").items()) {
        ASSERT_TRUE(e.is_object());
        ASSERT_TRUE(e.at("ph").is_string());
        EXPECT_TRUE(e.at("name").is_string());
        EXPECT_EQ(e.at("pid").as_uint(), pid);
        EXPECT_TRUE(e.at("tid").is_integer());
        const std::string ph = e.at("ph").as_string();
        if (ph == "M") {
            EXPECT_FALSE(e.contains("ts"));
            continue;
        }
        ASSERT_TRUE(e.at("ts").is_number());
        EXPECT_NO_THROW(us_text_to_ns(e.at("ts"))) << e.at("ts").number_text();
        if (ph == "X") {
            ASSERT_TRUE(e.at("dur").is_number());
            EXPECT_GE(us_text_to_ns(e.at("dur")), 0);
        } else {
            EXPECT_FALSE(e.contains("dur"));
        }
        EXPECT_TRUE(e.at("cat").is_string());
    }
}

Synthetic make_stream() {
    Synthetic s;
    s.info.process_name = "proc \"x\"\\\n";
    s.info.metadata = {{"host", "ci"}};
    s.thread(1, "main");
    s.thread(2, nasty_name, 5);
    s.begin(1, &loc_a, 100);
    s.span(1, &loc_b, 110, 150);
    s.begin(1, &loc_b, 160);
    s.span(1, &loc_c, 170, 190);
    s.end(1, &loc_b, 200);
    s.end(1, &loc_a, 300);
    s.mark(1, &loc_mark, 400);
    s.counter(1, &loc_counter, 500, 2.5);
    s.counter(1, &loc_counter, 600, -1.0);
    s.frame(1, &loc_frame, 700);
    s.end(2, &loc_c, 10); // no begin: ignored
    s.span(2, &loc_nasty, 1000, 2000);
    s.span(2, &loc_py, 2500, 3750);
    s.begin(2, &loc_z, 1234567); // open at stop
    return s;
}

constexpr std::uint64_t stop_ticks = 2000000;

TEST(ChromeTraceSink, SyntheticExactEvents) {
    TempDir dir;
    const Synthetic s = make_stream();
    ChromeTraceSink sink(dir.file("trace.json"));
    EXPECT_EQ(sink.describe(), "chrome trace '" + dir.file("trace.json") + "'");
    s.play(sink, stop_ticks);
    const json::Value doc = json::parse_file(sink.path());

    EXPECT_EQ(doc.at("displayTimeUnit").as_string(), "ns");
    check_event_shapes(doc, 4242);

    const std::vector<Slice> expected = {
        {1, "A", 100, 200}, {1, "B", 110, 40},  {1, "B", 160, 40},
        {1, "C", 170, 20},  {2, nasty_name, 1000, 1000}, {2, "py_func", 2500, 1250},
        {2, "Z", 1234567, stop_ticks - 1234567},
    };
    std::vector<Slice> sorted_expected = expected;
    std::sort(sorted_expected.begin(), sorted_expected.end());
    const std::vector<Slice> slices = complete_events(doc);
    EXPECT_EQ(slices, sorted_expected);
    expect_properly_nested(slices);

    for (const json::Value* e : events_with_phase(doc, "X")) {
        const std::string name = e->at("name").as_string();
        if (name == "A") {
            EXPECT_EQ(e->at("ts").number_text(), "0.100");
            EXPECT_EQ(e->at("dur").number_text(), "0.200");
            EXPECT_EQ(e->at("cat").as_string(), "zone");
            EXPECT_FALSE(e->contains("args"));
        } else if (name == "Z") {
            EXPECT_EQ(e->at("ts").number_text(), "1234.567");
            EXPECT_EQ(e->at("dur").number_text(), "765.433");
        } else if (name == "py_func") {
            EXPECT_EQ(e->at("cat").as_string(), "python");
            EXPECT_EQ(e->at("args").at("file").as_string(), "dir\\mod \"x\".py");
            EXPECT_EQ(e->at("args").at("line").as_int(), 42);
            EXPECT_EQ(e->at("dur").number_text(), "1.250");
        }
    }

    const auto instants = events_with_phase(doc, "i");
    ASSERT_EQ(instants.size(), 3u); // mark, frame mark, lost events
    std::map<std::string, const json::Value*> by_name;
    for (const json::Value* e : instants) {
        by_name[e->at("name").as_string()] = e;
    }
    ASSERT_EQ(by_name.count("M"), 1u);
    EXPECT_EQ(by_name["M"]->at("s").as_string(), "t");
    EXPECT_EQ(by_name["M"]->at("cat").as_string(), "mark");
    EXPECT_EQ(by_name["M"]->at("tid").as_int(), 1);
    EXPECT_EQ(by_name["M"]->at("ts").number_text(), "0.400");
    ASSERT_EQ(by_name.count("F"), 1u);
    EXPECT_EQ(by_name["F"]->at("s").as_string(), "p");
    EXPECT_EQ(by_name["F"]->at("cat").as_string(), "frame");
    EXPECT_EQ(by_name["F"]->at("ts").number_text(), "0.700");
    ASSERT_EQ(by_name.count("pycroscope: 5 events lost"), 1u);
    const json::Value& lost = *by_name["pycroscope: 5 events lost"];
    EXPECT_EQ(lost.at("tid").as_int(), 2);
    EXPECT_EQ(lost.at("cat").as_string(), "pycroscope");
    EXPECT_EQ(lost.at("ts").number_text(), "2000.000");

    const auto counters = events_with_phase(doc, "C");
    ASSERT_EQ(counters.size(), 2u);
    EXPECT_EQ(counters[0]->at("name").as_string(), "K");
    EXPECT_EQ(counters[0]->at("cat").as_string(), "counter");
    EXPECT_EQ(counters[0]->at("ts").number_text(), "0.500");
    EXPECT_EQ(counters[0]->at("args").at("value").as_number(), 2.5);
    EXPECT_EQ(counters[1]->at("ts").number_text(), "0.600");
    EXPECT_EQ(counters[1]->at("args").at("value").as_number(), -1.0);

    // Metadata: the process and every thread, names escaped and restored.
    std::map<std::string, std::vector<const json::Value*>> metadata;
    for (const json::Value* e : events_with_phase(doc, "M")) {
        metadata[e->at("name").as_string()].push_back(e);
    }
    ASSERT_EQ(metadata["process_name"].size(), 1u);
    EXPECT_EQ(metadata["process_name"][0]->at("args").at("name").as_string(), "proc \"x\"\\\n");
    ASSERT_EQ(metadata["thread_name"].size(), 2u);
    std::map<std::int64_t, std::string> thread_names;
    for (const json::Value* e : metadata["thread_name"]) {
        thread_names[e->at("tid").as_int()] = e->at("args").at("name").as_string();
    }
    EXPECT_EQ(thread_names[1], "main");
    EXPECT_EQ(thread_names[2], nasty_name);
    ASSERT_EQ(metadata["thread_sort_index"].size(), 2u);
    for (const json::Value* e : metadata["thread_sort_index"]) {
        EXPECT_EQ(e->at("args").at("sort_index").as_int(), e->at("tid").as_int());
    }

    const json::Value& other = doc.at("otherData");
    EXPECT_EQ(other.at("producer").as_string(), "pycroscope");
    EXPECT_EQ(other.at("duration_ns").as_int(), 2000000);
    EXPECT_EQ(other.at("events_total").as_uint(), s.summary(stop_ticks).total_events);
    EXPECT_EQ(other.at("lost_events").as_int(), 5);
    EXPECT_EQ(other.at("clock").as_string(), "steady_clock");
    EXPECT_EQ(other.at("host").as_string(), "ci");
}

TEST(ChromeTraceSink, OutputDoesNotDependOnBatching) {
    TempDir dir;
    const Synthetic s = make_stream();
    std::string first;
    for (const std::size_t batch : {std::size_t{1}, std::size_t{4}, std::size_t{4096}}) {
        ChromeTraceSink sink(dir.file("trace.json"));
        s.play(sink, stop_ticks, batch);
        const std::string text = sink_test::read_file(sink.path());
        if (first.empty()) {
            first = text;
        } else {
            EXPECT_EQ(text, first) << "batch " << batch;
        }
    }
}

TEST(ChromeTraceSink, StartTicksAreTheOrigin) {
    TempDir dir;
    Synthetic s;
    s.info.start_ticks = 5000;
    s.thread(1, "t");
    s.span(1, &loc_a, 6500, 7000);
    ChromeTraceSink sink(dir.file("trace.json"));
    s.play(sink, 9000);
    const json::Value doc = json::parse_file(sink.path());
    EXPECT_EQ(complete_events(doc), (std::vector<Slice>{{1, "A", 1500, 500}}));
    EXPECT_EQ(doc.at("otherData").at("duration_ns").as_int(), 4000);
}

TEST(ChromeTraceSink, FractionalTickLengthKeepsChildrenInsideParents) {
    // With 0.3 ns per tick, converting the length (5 ticks = 1.5 ns, rounded
    // up) instead of the end would make C end after P.
    TempDir dir;
    Synthetic s;
    s.info.calibration.ns_per_tick = 0.3;
    s.thread(1, "t");
    s.begin(1, &loc_a, 1); // P: 0.3 ns
    s.begin(1, &loc_c, 4); // C: 1.2 ns
    s.end(1, &loc_a, 9);   // C's end was lost; both close at 2.7 ns
    s.begin(1, &loc_b, 20);
    s.begin(1, &loc_c, 23); // both open at stop (tick 28)
    ChromeTraceSink sink(dir.file("trace.json"));
    s.play(sink, 28);
    const auto slices = complete_events(json::parse_file(sink.path()));
    ASSERT_EQ(slices.size(), 4u);
    expect_properly_nested(slices);
    for (const auto& slice : slices) {
        EXPECT_GE(slice.dur, 0);
    }
    EXPECT_EQ(slices[0], (Slice{1, "A", 0, 2}));
    EXPECT_EQ(slices[1], (Slice{1, "C", 1, 1}));
}

TEST(ChromeTraceSink, NonFiniteCounterValuesAreNull) {
    TempDir dir;
    Synthetic s;
    s.thread(1, "t");
    s.counter(1, &loc_counter, 1, std::numeric_limits<double>::quiet_NaN());
    s.counter(1, &loc_counter, 2, std::numeric_limits<double>::infinity());
    s.counter(1, &loc_counter, 3, 1e-300);
    ChromeTraceSink sink(dir.file("trace.json"));
    s.play(sink, 10);
    const json::Value doc = json::parse_file(sink.path());
    const auto counters = events_with_phase(doc, "C");
    ASSERT_EQ(counters.size(), 3u);
    EXPECT_TRUE(counters[0]->at("args").at("value").is_null());
    EXPECT_TRUE(counters[1]->at("args").at("value").is_null());
    EXPECT_EQ(counters[2]->at("args").at("value").as_number(), 1e-300);
}

TEST(ChromeTraceSink, EmptySessionIsAValidTrace) {
    TempDir dir;
    Synthetic s;
    ChromeTraceSink sink(dir.file("trace.json"));
    s.play(sink, 10);
    const json::Value doc = json::parse_file(sink.path());
    ASSERT_EQ(doc.at("traceEvents").size(), 1u); // process_name
    EXPECT_EQ(doc.at("otherData").at("events_total").as_int(), 0);
}

TEST(ChromeTraceSink, LargeTracesAreStreamedAndStayValid) {
    // More than the 1 MiB write threshold, in many batches.
    TempDir dir;
    Synthetic s;
    s.thread(1, "t");
    for (std::uint64_t i = 0; i < 20000; ++i) {
        s.span(1, &loc_nasty, i * 10, i * 10 + 5);
    }
    ChromeTraceSink sink(dir.file("trace.json"));
    s.play(sink, 300000, 4096);
    EXPECT_GT(sink_test::fs::file_size(sink.path()), 1u << 20);
    const json::Value doc = json::parse_file(sink.path());
    const auto slices = complete_events(doc);
    ASSERT_EQ(slices.size(), 20000u);
    EXPECT_EQ(slices[19999], (Slice{1, nasty_name, 199990, 5}));
}

// --- real sessions --------------------------------------------------------

// The X events the raw begin/end events of a session must give.
std::vector<Slice> reference_slices(const pycroscope_test::RecordingSink& recording,
                                    const pycroscope::SessionSummary& summary) {
    std::vector<Slice> out;
    for (const auto& entry : recording.events_by_thread()) {
        for (const auto& span : sink_test::reference_spans(entry.second, summary.stop_ticks)) {
            const std::int64_t ts = summary.info.session_ns(span.begin);
            const std::int64_t end = span.end > span.begin ? summary.info.session_ns(span.end) : ts;
            out.push_back(Slice{entry.first, span.location->display_name(), ts, end - ts});
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

TEST(ChromeTraceSink, RealSessionMatchesTheRecording) {
    TempDir dir;
    pycroscope::Config config;
    config.metadata = {{"suite", "sinks"}};
    pycroscope::Session<pycroscope::NativeZones> session(config);
    auto trace = session.add_sink<ChromeTraceSink>(dir.file("trace.json"));
    auto recording = session.add_sink<pycroscope_test::RecordingSink>();

    std::string all_controls;
    for (int c = 1; c < 0x20; ++c) {
        all_controls += static_cast<char>(c);
    }
    all_controls += "\"\\/ \xe2\x82\xac";

    pycroscope::set_thread_name("main");
    session.start();
    sink_test::run_workers(2, [&](int k) {
        sink_test::workload(50 * k);
        sink_test::recurse(3 + k);
        PYCRO_SCOPE_N("quote\" back\\ nl\n tab\t ctl\x01");
        PYCRO_SCOPE_DYN(all_controls);
    });
    sink_test::workload(25);
    pycroscope::SessionSummary summary;
    {
        PYCRO_SCOPE_N("open at stop");
        PYCRO_SCOPE_N("nested open at stop");
        summary = session.stop();
    }
    ASSERT_TRUE(summary.errors.empty());
    ASSERT_EQ(summary.threads.size(), 3u);

    const json::Value doc = json::parse_file(trace->path());
    check_event_shapes(doc, summary.info.pid);

    const std::vector<Slice> slices = complete_events(doc);
    EXPECT_EQ(slices, reference_slices(*recording, summary));
    expect_properly_nested(slices);
    const int iterations = 25 + 50 + 100;
    EXPECT_EQ(slices.size(), static_cast<std::size_t>(2 * iterations + (4 + 5) + 2 * 2 + 2));

    std::map<std::string, int> names;
    for (const auto& s : slices) {
        ++names[s.name];
    }
    EXPECT_EQ(names["outer"], iterations);
    EXPECT_EQ(names["inner"], iterations);
    EXPECT_EQ(names["recurse"], 9);
    EXPECT_EQ(names["quote\" back\\ nl\n tab\t ctl\x01"], 2);
    EXPECT_EQ(names[all_controls], 2);
    EXPECT_EQ(names["open at stop"], 1);
    EXPECT_EQ(names["nested open at stop"], 1);
    // The spans open at stop end at the stop time.
    const std::int64_t stop_ns = summary.info.session_ns(summary.stop_ticks);
    for (const auto& s : slices) {
        if (s.name == "open at stop" || s.name == "nested open at stop") {
            EXPECT_EQ(s.ts + s.dur, stop_ns) << s;
        }
        EXPECT_LE(s.ts + s.dur, stop_ns) << s;
        EXPECT_GE(s.ts, 0) << s;
    }

    EXPECT_EQ(events_with_phase(doc, "C").size(), static_cast<std::size_t>(iterations));
    std::size_t marks = 0, frames = 0;
    for (const json::Value* e : events_with_phase(doc, "i")) {
        marks += e->at("name").as_string() == "tick" ? 1 : 0;
        frames += e->at("name").as_string() == "frame" ? 1 : 0;
    }
    EXPECT_EQ(marks, static_cast<std::size_t>(iterations));
    EXPECT_EQ(frames, static_cast<std::size_t>(iterations));
    // Counter values are the recorded ones, per thread in order.
    std::map<std::uint64_t, std::vector<double>> values;
    for (const json::Value* e : events_with_phase(doc, "C")) {
        values[e->at("tid").as_uint()].push_back(e->at("args").at("value").as_number());
    }
    for (const auto& entry : recording->events_by_thread()) {
        std::vector<double> recorded;
        for (const auto& e : entry.second) {
            if (e.kind == pycroscope::EventKind::counter) {
                recorded.push_back(e.value());
            }
        }
        EXPECT_EQ(values[entry.first], recorded) << "thread " << entry.first;
    }

    std::map<std::uint64_t, std::string> thread_names;
    for (const json::Value* e : events_with_phase(doc, "M")) {
        if (e->at("name").as_string() == "thread_name") {
            thread_names[e->at("tid").as_uint()] = e->at("args").at("name").as_string();
        }
    }
    ASSERT_EQ(thread_names.size(), 3u);
    for (const auto& t : summary.threads) {
        EXPECT_EQ(thread_names[t.index], t.name);
    }
    std::vector<std::string> sorted_names;
    for (const auto& t : thread_names) {
        sorted_names.push_back(t.second);
    }
    std::sort(sorted_names.begin(), sorted_names.end());
    EXPECT_EQ(sorted_names, (std::vector<std::string>{"main", "worker-1", "worker-2"}));

    EXPECT_EQ(doc.at("otherData").at("lost_events").as_int(), 0);
    EXPECT_EQ(doc.at("otherData").at("events_total").as_uint(), summary.total_events);
    EXPECT_EQ(doc.at("otherData").at("suite").as_string(), "sinks");
}

} // namespace
} // namespace chrome_trace_sink_test
