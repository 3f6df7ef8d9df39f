// ChromeTraceSink with stack samples: slices rebuilt from consecutive
// samples, parsed back from the file and compared exactly, next to the
// sink's ordinary spans; and the trace of a real session.

#include "sinks/sink_test_helpers.hpp"
#include "support/json.hpp"
#include "support/sample_events.hpp"

#include <pycroscope/core/clock.hpp>
#include <pycroscope/core/session.hpp>
#include <pycroscope/sinks/chrome_trace_sink.hpp>

#include <gtest/gtest.h>

#include <map>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

namespace chrome_trace_samples_test {
namespace {

using pycroscope::LocationKind;
using pycroscope::SourceLocation;
using pycroscope::sinks::ChromeTraceSink;
using sample_test::Frame;
using sink_test::Synthetic;
using sink_test::TempDir;
using sink_test::us_text_to_ns;

namespace flags = pycroscope::sample_flags;

constexpr SourceLocation py_a{"A", "A", "dir/a \"x\".py", 3, LocationKind::python_function};
constexpr SourceLocation py_b{"B", "B", "b.py", 7, LocationKind::python_function};
constexpr SourceLocation zone_c{"C", "void c()", "c.cpp", 9, LocationKind::native_zone};
constexpr SourceLocation zone_span{"span", "span", "s.cpp", 1, LocationKind::native_zone};
constexpr SourceLocation name_main{"main \"thread\"", "main", "", 0, LocationKind::other};

// A sample slice of the trace, sorted by track, start, then duration.
struct SampleSliceOut {
    std::uint64_t tid;
    std::string name;
    std::int64_t ts, dur;
    std::int64_t samples;
    bool operator==(const SampleSliceOut& o) const {
        return std::tie(tid, name, ts, dur, samples) == std::tie(o.tid, o.name, o.ts, o.dur, o.samples);
    }
    bool operator<(const SampleSliceOut& o) const {
        return std::tie(tid, ts, dur, name) < std::tie(o.tid, o.ts, o.dur, o.name);
    }
};

std::ostream& operator<<(std::ostream& os, const SampleSliceOut& s) {
    return os << "{tid " << s.tid << ", '" << s.name << "', ts " << s.ts << ", dur " << s.dur << ", samples "
              << s.samples << "}";
}

std::vector<SampleSliceOut> sample_slices(const json::Value& doc) {
    std::vector<SampleSliceOut> out;
    const json::Value& events = doc.at("traceEvents");
    for (std::size_t i = 0; i < events.size(); ++i) {
        const json::Value& e = events[i];
        if (e.at("ph").as_string() == "X" && e.at("cat").as_string() == "sample") {
            out.push_back(SampleSliceOut{e.at("tid").as_uint(), e.at("name").as_string(), us_text_to_ns(e.at("ts")),
                                         us_text_to_ns(e.at("dur")), e.at("args").at("samples").as_int()});
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

// The name given to a tid by a thread_name metadata event, "" if none.
std::string thread_name(const json::Value& doc, std::uint64_t tid) {
    const json::Value& events = doc.at("traceEvents");
    for (std::size_t i = 0; i < events.size(); ++i) {
        const json::Value& e = events[i];
        if (e.at("ph").as_string() == "M" && e.at("name").as_string() == "thread_name" && e.at("tid").as_uint() == tid) {
            return e.at("args").at("name").as_string();
        }
    }
    return {};
}

void add_sample(Synthetic& s, std::uint32_t producer, std::uint64_t ts, std::uint64_t os_tid,
                const SourceLocation* name, std::uint8_t sample_flags, const std::vector<Frame>& frames) {
    for (const auto& e : sample_test::sample_events(ts, os_tid, name, sample_flags, frames)) {
        s.add(producer, e);
    }
}

// Thread 1 records a span; thread 2 (the sampler) carries samples of
// os_tid 555 at 1000, 1010, 1020, 1030 ns: A;B  A;B  A;C  A.
Synthetic make_stream() {
    Synthetic s;
    s.thread(1, "recorder");
    s.thread(2, "sampler");
    s.span(1, &zone_span, 100, 300);
    add_sample(s, 2, 1000, 555, &name_main, flags::running, {{&py_a, 4}, {&py_b, 8}});
    add_sample(s, 2, 1010, 555, &name_main, flags::running, {{&py_a, 4}, {&py_b, 9}});
    add_sample(s, 2, 1020, 555, &name_main, 0, {{&py_a, 5}, {&zone_c}});
    add_sample(s, 2, 1030, 555, &name_main, flags::running, {{&py_a, 6}});
    return s;
}

TEST(ChromeTraceSamples, SlicesRebuiltFromConsecutiveSamples) {
    TempDir dir;
    const Synthetic s = make_stream();
    for (std::size_t batch = 1; batch <= 5; ++batch) {
        SCOPED_TRACE(batch);
        ChromeTraceSink sink(dir.file("trace.json"));
        sink.set_sample_interval_ns(10);
        s.play(sink, 5000, batch);
        const json::Value doc = json::parse_file(dir.file("trace.json"));
        const std::vector<SampleSliceOut> expected{
            {555, "B", 1000, 20, 2},
            {555, "A", 1000, 40, 4}, // to the last sample + one interval
            {555, "C", 1020, 10, 1},
        };
        EXPECT_EQ(sample_slices(doc), expected);
        EXPECT_EQ(thread_name(doc, 555), "main \"thread\"");

        // Python slices carry their file and line; the span is untouched.
        const json::Value& events = doc.at("traceEvents");
        int spans = 0, python_slices = 0;
        for (std::size_t i = 0; i < events.size(); ++i) {
            const json::Value& e = events[i];
            if (e.at("ph").as_string() != "X") {
                continue;
            }
            if (e.at("cat").as_string() == "sample" && e.at("name").as_string() == "A") {
                ++python_slices;
                EXPECT_EQ(e.at("args").at("file").as_string(), "dir/a \"x\".py");
                EXPECT_EQ(e.at("args").at("line").as_int(), 3);
            } else if (e.at("cat").as_string() != "sample") {
                ++spans;
                EXPECT_EQ(e.at("name").as_string(), "span");
                EXPECT_EQ(e.at("tid").as_int(), 1);
                EXPECT_EQ(us_text_to_ns(e.at("ts")), 100);
                EXPECT_EQ(us_text_to_ns(e.at("dur")), 200);
            }
        }
        EXPECT_EQ(spans, 1);
        EXPECT_EQ(python_slices, 1);
        EXPECT_EQ(thread_name(doc, 1), "recorder");
    }
}

TEST(ChromeTraceSamples, LastSliceUsesTheLastGapOrStopsAtSessionStop) {
    TempDir dir;
    Synthetic s = make_stream();
    add_sample(s, 2, 1060, 555, &name_main, flags::running, {{&py_a, 6}}); // gap 30 now
    {
        ChromeTraceSink sink(dir.file("gap.json"));
        s.play(sink, 5000, 3);
        const std::vector<SampleSliceOut> expected{
            {555, "B", 1000, 20, 2}, {555, "A", 1000, 90, 5}, {555, "C", 1020, 10, 1}};
        EXPECT_EQ(sample_slices(json::parse_file(dir.file("gap.json"))), expected);
    }
    {
        ChromeTraceSink sink(dir.file("stop.json"));
        sink.set_sample_interval_ns(1000);
        s.play(sink, 1070, 3);
        const std::vector<SampleSliceOut> expected{
            {555, "B", 1000, 20, 2}, {555, "A", 1000, 70, 5}, {555, "C", 1020, 10, 1}};
        EXPECT_EQ(sample_slices(json::parse_file(dir.file("stop.json"))), expected);
    }
}

TEST(ChromeTraceSamples, SessionWithSamplesFromATestThread) {
    TempDir dir;
    const std::string path = dir.file("trace.json");
    std::vector<std::uint64_t> stamps;
    pycroscope::SessionSummary summary;
    {
        pycroscope::Config config;
        config.buffer_capacity = 64; // samples cut by batch boundaries
        pycroscope::Session<> session(config);
        session.add_sink<ChromeTraceSink>(path);
        session.start();
        std::thread sampler([&] {
            // Runs of 10 samples: A;B x10, A;C x10, A;B x10 ... (5 runs).
            for (int run = 0; run < 5; ++run) {
                for (int i = 0; i < 10; ++i) {
                    const std::uint64_t ts = pycroscope::clock::now();
                    stamps.push_back(ts);
                    const std::vector<Frame> stack{{&py_a, 1}, {run % 2 == 0 ? &py_b : &zone_c, 2}};
                    ASSERT_TRUE(sample_test::record_sample(ts, 777, &name_main, flags::running, stack));
                }
            }
        });
        sampler.join();
        summary = session.stop();
    }
    ASSERT_EQ(stamps.size(), 50u);
    const json::Value doc = json::parse_file(path);
    const auto slices = sample_slices(doc);
    const auto at = [&](std::size_t k) { return summary.info.session_ns(stamps[k]); };
    ASSERT_EQ(slices.size(), 6u);
    // A spans all 50 samples; inner slices switch at the first sample of each run.
    int a_slices = 0;
    for (const auto& slice : slices) {
        if (slice.name == "A") {
            ++a_slices;
            EXPECT_EQ(slice.samples, 50);
            EXPECT_EQ(slice.ts, at(0));
        }
    }
    EXPECT_EQ(a_slices, 1);
    std::vector<SampleSliceOut> inner;
    for (const auto& slice : slices) {
        if (slice.name != "A") {
            inner.push_back(slice);
        }
    }
    ASSERT_EQ(inner.size(), 5u);
    for (std::size_t run = 0; run < 5; ++run) {
        SCOPED_TRACE(run);
        EXPECT_EQ(inner[run].name, run % 2 == 0 ? "B" : "C");
        EXPECT_EQ(inner[run].samples, 10);
        EXPECT_EQ(inner[run].ts, at(run * 10));
        if (run < 4) {
            EXPECT_EQ(inner[run].ts + inner[run].dur, at(run * 10 + 10));
        }
    }
    EXPECT_EQ(thread_name(doc, 777), "main \"thread\"");
}

} // namespace
} // namespace chrome_trace_samples_test
