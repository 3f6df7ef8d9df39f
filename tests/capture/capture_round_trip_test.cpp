// The capture written by CaptureSink reads back as exactly the batches the
// drain delivered: every EventKind, every field, timestamps included, thread
// names and lost counts as they changed, the session's info and summary.

#include "capture/capture_test_helpers.hpp"
#include "sinks/sink_test_helpers.hpp"

#include <pycroscope/capture/capture_reader.hpp>
#include <pycroscope/capture/capture_sink.hpp>
#include <pycroscope/capture/replay.hpp>
#include <pycroscope/core/session.hpp>
#include <pycroscope/core/zone.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace capture_round_trip_test {
namespace {

using capture_test::canonical;
using capture_test::ev;
using capture_test::Recording;
using pycroscope::Event;
using pycroscope::EventKind;
using pycroscope::LocationKind;
using pycroscope::capture::CaptureBatch;
using pycroscope::capture::CaptureOptions;
using pycroscope::capture::CaptureReader;
using pycroscope::capture::CaptureSink;
using sink_test::TempDir;

std::shared_ptr<CaptureSink> write_capture(const Recording& recording, const std::string& path,
                                           std::size_t chunk_bytes = 1u << 20) {
    CaptureOptions options;
    options.chunk_bytes = chunk_bytes;
    auto sink = std::make_shared<CaptureSink>(path, options);
    recording.play_live({}, {sink});
    return sink;
}

// Reads every batch and checks it against the recording, delivery by delivery.
void expect_same_deliveries(const Recording& recording, CaptureReader& reader) {
    CaptureBatch batch;
    std::size_t at = 0;
    while (reader.next(batch)) {
        ASSERT_LT(at, recording.deliveries.size());
        const auto& d = recording.deliveries[at];
        ASSERT_EQ(canonical(*batch.thread), canonical(d.thread)) << "delivery " << at;
        ASSERT_EQ(batch.count, d.events.size()) << "delivery " << at;
        for (std::size_t i = 0; i < batch.count; ++i) {
            ASSERT_EQ(canonical(batch.events[i]), canonical(d.events[i])) << "delivery " << at << " event " << i;
        }
        ++at;
    }
    EXPECT_EQ(at, recording.deliveries.size());
}

TEST(CaptureRoundTrip, EveryKindOnSeveralThreadsReadsBackEventForEvent) {
    TempDir dir;
    const Recording recording = capture_test::synthetic_recording(4, 30000, 1);
    const std::string path = dir.file("capture.pycro");
    const auto sink = write_capture(recording, path, 32 << 10);
    ASSERT_GT(sink->chunks_written(), 10u); // many chunks, each starting its codec afresh

    CaptureReader reader(path);
    EXPECT_EQ(reader.version(), pycroscope::capture::format_version);
    expect_same_deliveries(recording, reader);
    EXPECT_TRUE(reader.complete());
    EXPECT_FALSE(reader.cut());
    EXPECT_EQ(reader.chunks_read(), sink->chunks_written());
    EXPECT_EQ(reader.events_read(), recording.total_events());
}

TEST(CaptureRoundTrip, SessionInfoAndSummaryComeBackFieldForField) {
    TempDir dir;
    Recording recording = capture_test::synthetic_recording(3, 2000, 2);
    const std::string path = dir.file("capture.pycro");
    write_capture(recording, path);
    CaptureReader reader(path);
    const auto& info = reader.info();
    EXPECT_EQ(info.process_name, recording.info.process_name);
    EXPECT_EQ(info.pid, recording.info.pid);
    EXPECT_EQ(info.start_unix_ns, recording.info.start_unix_ns);
    EXPECT_EQ(info.start_ticks, recording.info.start_ticks);
    EXPECT_EQ(info.calibration.source, recording.info.calibration.source);
    EXPECT_EQ(info.calibration.ns_per_tick, recording.info.calibration.ns_per_tick);
    EXPECT_EQ(info.calibration.tick_origin, recording.info.calibration.tick_origin);
    EXPECT_EQ(info.calibration.ns_origin, recording.info.calibration.ns_origin);
    EXPECT_EQ(info.buffer_capacity, recording.info.buffer_capacity);
    EXPECT_EQ(info.overflow, recording.info.overflow);
    EXPECT_EQ(info.collectors, recording.info.collectors);
    EXPECT_EQ(info.metadata, recording.info.metadata);

    CaptureBatch batch;
    while (reader.next(batch)) {
    }
    const auto expected = recording.summary();
    const auto& summary = reader.summary();
    EXPECT_EQ(summary.stop_ticks, expected.stop_ticks);
    EXPECT_EQ(summary.duration_ns, expected.duration_ns);
    EXPECT_EQ(summary.total_events, expected.total_events);
    EXPECT_EQ(summary.total_lost, expected.total_lost);
    EXPECT_EQ(summary.errors, expected.errors);
    ASSERT_EQ(summary.threads.size(), expected.threads.size());
    for (std::size_t i = 0; i < expected.threads.size(); ++i) {
        EXPECT_EQ(canonical(summary.threads[i]), canonical(expected.threads[i]));
    }
    EXPECT_EQ(summary.info.process_name, recording.info.process_name);
}

TEST(CaptureRoundTrip, EdgeValuesSurviveBitForBit) {
    TempDir dir;
    Recording r;
    const auto* f = r.location("f", LocationKind::python_function);
    const auto* c = r.location("c", LocationKind::counter);
    const auto* site = r.location("site", LocationKind::python_line);
    const auto* nameless = r.unnamed_location();
    std::vector<Event> events;
    events.push_back(ev(EventKind::zone_begin, 0, nameless));          // timestamp 0
    events.push_back(ev(EventKind::zone_end, ~std::uint64_t{0}, nameless)); // the largest timestamp
    events.push_back(ev(EventKind::py_call, 5, f));                     // and back to the smallest
    events.push_back(ev(EventKind::counter, 6, c, pycroscope::double_bits(std::numeric_limits<double>::quiet_NaN())));
    events.push_back(ev(EventKind::counter, 7, c, pycroscope::double_bits(-0.0)));
    events.push_back(ev(EventKind::counter, 8, c, pycroscope::double_bits(1e308)));
    Event big = ev(EventKind::mem_alloc, 9, site, ~std::uint64_t{0} - 15, 0, 2);
    pycroscope::set_memory_bytes(big, pycroscope::max_memory_event_bytes);
    events.push_back(big);
    events.push_back(ev(EventKind::mem_free, 10, nullptr, 16, 0, 1)); // address far below the last
    events.push_back(ev(EventKind::py_return, 11, f, 0, ~std::uint32_t{0}, 0xFF));
    events.push_back(Event{12, ~std::uint64_t{0}, ~std::uint64_t{0}, ~std::uint32_t{0}, static_cast<EventKind>(255),
                           0xFF, 0xFFFF});
    events.push_back(ev(EventKind::py_return, 13, f)); // a return with nothing open
    r.deliver(1, "", events); // an empty thread name
    r.deliver(0xFFFFFFFFu, "last index", {ev(EventKind::instant, 1, nullptr)});
    const std::string path = dir.file("edge.pycro");
    write_capture(r, path);
    CaptureReader reader(path);
    expect_same_deliveries(r, reader);
    EXPECT_TRUE(reader.complete());
}

TEST(CaptureRoundTrip, NewLocationsAreDefinedOnceAcrossChunks) {
    TempDir dir;
    const Recording recording = capture_test::synthetic_recording(2, 20000, 3);
    const std::string path = dir.file("capture.pycro");
    write_capture(recording, path, 16 << 10);
    CaptureReader reader(path);
    CaptureBatch batch;
    while (reader.next(batch)) {
    }
    // 300 functions + 20 builtins + 3 zones + 6 others + 40 sites, some never used; never one twice.
    EXPECT_LE(reader.location_count(), 369u);
    EXPECT_GT(reader.location_count(), 300u);
}

TEST(CaptureRoundTrip, AverageEventOfACallHeavyStreamTakesFourBytesOrLess) {
    // Python calls and returns only, over 50 functions, 100-600 ticks apart.
    TempDir dir;
    Recording r;
    std::vector<const pycroscope::SourceLocation*> functions;
    for (int i = 0; i < 50; ++i) {
        functions.push_back(r.location("f" + std::to_string(i), LocationKind::python_function));
    }
    std::uint64_t ts = 1000;
    std::vector<Event> events;
    std::uint64_t seed = 12345;
    const auto next = [&] {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        return seed >> 33;
    };
    std::vector<const pycroscope::SourceLocation*> stack;
    while (events.size() < 200000) {
        ts += 100 + next() % 500;
        if (stack.size() < 3 || (stack.size() < 20 && next() % 2 == 0)) {
            const auto* f = functions[(stack.size() * 7 + next() % 3) % functions.size()];
            events.push_back(ev(EventKind::py_call, ts, f));
            stack.push_back(f);
        } else {
            events.push_back(ev(EventKind::py_return, ts, stack.back()));
            stack.pop_back();
        }
    }
    for (std::size_t at = 0; at < events.size(); at += 4096) {
        r.deliver(1, "main",
                  std::vector<Event>(events.begin() + static_cast<std::ptrdiff_t>(at),
                                     events.begin() + static_cast<std::ptrdiff_t>(std::min(events.size(), at + 4096))));
    }
    const std::string path = dir.file("calls.pycro");
    const auto sink = write_capture(r, path);
    const double per_event = static_cast<double>(sink->bytes_written()) / static_cast<double>(events.size());
    EXPECT_LE(per_event, 4.0);
    CaptureReader reader(path);
    expect_same_deliveries(r, reader);
}

// --- with a live session --------------------------------------------------

// Rewrites every event it sees, as the memory model rewrites frees.
class Scribbler : public pycroscope::EventProcessor {
public:
    std::string describe() const override { return "scribbler"; }
    void open(const pycroscope::SessionInfo&) override {}
    void process(const pycroscope::ThreadInfo&, Event* events, std::size_t count) override {
        for (std::size_t i = 0; i < count; ++i) {
            events[i].payload = 0xDEAD;
        }
    }
    void close(const pycroscope::SessionSummary&) override {}
};

TEST(CaptureSinkInASession, GetsTheEventsAsRecordedBeforeAnyProcessorRewritesThem) {
    TempDir dir;
    const std::string path = dir.file("session.pycro");
    pycroscope::Config config;
    config.buffer_capacity = 1024;
    config.drain_interval = std::chrono::microseconds(200);
    pycroscope::Session<pycroscope::NativeZones> session(config);
    session.core().add_processor(std::make_shared<Scribbler>());
    auto capture = std::make_shared<CaptureSink>(path);
    session.add_sink(capture);
    session.start();
    for (int i = 0; i < 5000; ++i) {
        PYCRO_SCOPE_N("capture_test.zone");
        PYCRO_COUNTER("capture_test.counter", static_cast<double>(i) + 0.5);
    }
    const auto summary = session.stop();

    CaptureReader reader(path);
    CaptureBatch batch;
    std::uint64_t zones = 0;
    std::uint64_t counters = 0;
    double last_value = -0.5;
    while (reader.next(batch)) {
        for (std::size_t i = 0; i < batch.count; ++i) {
            const Event& e = batch.events[i];
            if (e.kind == EventKind::zone_begin) {
                ++zones;
                EXPECT_STREQ(e.location()->name, "capture_test.zone");
            } else if (e.kind == EventKind::counter) {
                EXPECT_EQ(e.value(), last_value + 1);
                last_value = e.value();
                ++counters;
            }
        }
    }
    EXPECT_TRUE(reader.complete());
    EXPECT_EQ(zones, 5000u);
    EXPECT_EQ(counters, 5000u);
    EXPECT_EQ(reader.summary().total_events, summary.total_events);
    EXPECT_EQ(reader.events_read(), summary.total_events);
}

} // namespace
} // namespace capture_round_trip_test
