// Session life cycle: start/stop misuse, several Session objects, restarts,
// SessionInfo and SessionSummary contents, and sinks that fail.

#include "pycroscope/core/error.hpp"
#include "pycroscope/core/session.hpp"
#include "pycroscope/core/zone.hpp"
#include "support/recording_sink.hpp"
#include "support/sanitizers.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdint>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

namespace session_test {
namespace {

using pycroscope::Config;
using pycroscope::EventKind;
using pycroscope::NativeZones;
using pycroscope::Session;
using pycroscope::SessionError;
using pycroscope::SinkError;
using pycroscope_test::RecordingSink;

Config small_config() {
    Config config;
    config.buffer_capacity = 1024;
    config.drain_interval = std::chrono::microseconds(200);
    return config;
}

void record_zones(int count) {
    for (int i = 0; i < count; ++i) {
        PYCRO_SCOPE_N("session_test.zone");
    }
}

// A sink that fails on purpose at one step, and counts what it was asked.
class FailingSink : public RecordingSink {
public:
    enum class FailAt { open, consume, close };
    FailingSink(std::string label, FailAt at) : RecordingSink(std::move(label)), at_(at) {}

    void open(const pycroscope::SessionInfo& info) override {
        RecordingSink::open(info);
        if (at_ == FailAt::open) {
            throw pycroscope::ConfigError(describe() + " cannot open its output");
        }
    }
    void consume(const pycroscope::ThreadInfo& thread, const pycroscope::Event* events, std::size_t count) override {
        if (at_ == FailAt::consume) {
            throw std::runtime_error("disk full");
        }
        RecordingSink::consume(thread, events, count);
    }
    void close(const pycroscope::SessionSummary& summary) override {
        RecordingSink::close(summary);
        if (at_ == FailAt::close) {
            throw std::runtime_error("rename failed");
        }
    }

private:
    FailAt at_;
};

TEST(Session, InfoDescribesTheRun) {
    Config config = small_config();
    config.buffer_capacity = 1000; // rounded up
    config.overflow = pycroscope::OverflowPolicy::drop_newest;
    config.process_name = "unit";
    config.metadata = {{"build", "debug"}, {"host", "ci"}};
    config.clock = pycroscope::ClockSource::steady;
    Session<NativeZones> session(config);
    auto sink = session.add_sink<RecordingSink>();
    session.start();
    const pycroscope::SessionInfo info = sink->info();
    session.stop();

    EXPECT_EQ(sink->opens(), 1);
    EXPECT_EQ(info.process_name, "unit");
    EXPECT_EQ(info.pid, static_cast<std::uint64_t>(::getpid()));
    EXPECT_EQ(info.buffer_capacity, 1024u);
    EXPECT_EQ(info.overflow, pycroscope::OverflowPolicy::drop_newest);
    EXPECT_EQ(info.collectors, std::vector<std::string>{"native_zones"});
    ASSERT_EQ(info.metadata.size(), 2u);
    EXPECT_EQ(info.metadata[0].first, "build");
    EXPECT_EQ(info.metadata[1].second, "ci");
    EXPECT_EQ(info.calibration.source, pycroscope::clock::Source::steady);
    EXPECT_GT(info.start_unix_ns, 0);
}

#if defined(__linux__)
// Resident bytes of this process (/proc/self/statm).
std::uint64_t resident_bytes() {
    std::FILE* f = std::fopen("/proc/self/statm", "r");
    unsigned long long size = 0, resident = 0;
    if (f != nullptr) {
        if (std::fscanf(f, "%llu %llu", &size, &resident) != 2) {
            resident = 0;
        }
        std::fclose(f);
    }
    return static_cast<std::uint64_t>(resident) * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

// A new thread's first event: how much its buffer of 1 Mi events (32 MiB) made resident.
std::uint64_t resident_growth_of_a_new_threads_buffer(bool prefault) {
    Config config = small_config();
    config.buffer_capacity = std::size_t{1} << 20;
    config.prefault_buffers = prefault;
    Session<NativeZones> session(config);
    session.start();
    std::uint64_t grown = 0;
    std::thread([&grown] {
        const std::uint64_t before = resident_bytes();
        record_zones(1);
        const std::uint64_t after = resident_bytes();
        grown = after > before ? after - before : 0;
    }).join();
    session.stop();
    return grown;
}

TEST(Session, PrefaultedBuffersAreWrittenWhenTheThreadAttachesAndOthersAsUsed) {
    const std::uint64_t mib = 1u << 20;
    if (!pycroscope_test::under_sanitizer) { // a sanitizer's allocator may write its own metadata
        EXPECT_LT(resident_growth_of_a_new_threads_buffer(false), 8 * mib); // a page or two
    }
    EXPECT_GE(resident_growth_of_a_new_threads_buffer(true), 30 * mib);
}
#endif

TEST(Session, SummaryCountsEventsPerThread) {
    Session<NativeZones> session(small_config());
    auto sink = session.add_sink<RecordingSink>();
    session.start();
    EXPECT_TRUE(session.running());
    record_zones(10);
    std::thread([] { record_zones(3); }).join();
    const auto summary = session.stop();
    EXPECT_FALSE(session.running());

    ASSERT_EQ(summary.threads.size(), 2u);
    EXPECT_EQ(summary.threads[0].index, 1u);
    EXPECT_EQ(summary.threads[0].events, 20u);
    EXPECT_FALSE(summary.threads[0].exited); // the main thread is still alive
    EXPECT_EQ(summary.threads[1].index, 2u);
    EXPECT_EQ(summary.threads[1].events, 6u);
    EXPECT_TRUE(summary.threads[1].exited);
    EXPECT_EQ(summary.total_events, 26u);
    EXPECT_EQ(summary.total_lost, 0u);
    EXPECT_TRUE(summary.errors.empty());
    ASSERT_NE(summary.thread(2), nullptr);
    EXPECT_EQ(summary.thread(2)->events, 6u);
    EXPECT_EQ(summary.thread(3), nullptr);
    EXPECT_GE(summary.stop_ticks, summary.info.start_ticks);
    EXPECT_GE(summary.duration_ns, 0);

    EXPECT_EQ(sink->closes(), 1);
    EXPECT_EQ(sink->aborts(), 0);
    EXPECT_EQ(sink->event_count(), 26u);
    ASSERT_TRUE(sink->summary().has_value());
    EXPECT_EQ(sink->summary()->total_events, 26u);
    EXPECT_EQ(session.summary().total_events, 26u);
}

TEST(Session, StartTwiceIsANoOp) {
    Session<NativeZones> session(small_config());
    auto sink = session.add_sink<RecordingSink>();
    session.start();
    record_zones(2);
    session.start(); // nothing happens: same run, sinks not reopened
    record_zones(3);
    const auto summary = session.stop();
    EXPECT_EQ(sink->opens(), 1);
    EXPECT_EQ(sink->closes(), 1);
    EXPECT_EQ(summary.total_events, 10u);
    EXPECT_EQ(sink->event_count(), 10u);
    ASSERT_EQ(summary.threads.size(), 1u);
}

TEST(Session, StopTwiceReturnsTheSameSummary) {
    Session<NativeZones> session(small_config());
    auto sink = session.add_sink<RecordingSink>();
    session.start();
    record_zones(4);
    const auto first = session.stop();
    record_zones(4); // not recorded: stopped
    const auto second = session.stop();
    EXPECT_EQ(sink->closes(), 1);
    EXPECT_EQ(first.total_events, 8u);
    EXPECT_EQ(second.total_events, first.total_events);
    EXPECT_EQ(second.total_lost, first.total_lost);
    EXPECT_EQ(second.stop_ticks, first.stop_ticks);
    EXPECT_EQ(second.duration_ns, first.duration_ns);
    ASSERT_EQ(second.threads.size(), first.threads.size());
    EXPECT_EQ(second.threads[0].events, first.threads[0].events);
    EXPECT_EQ(sink->event_count(), 8u);
}

TEST(Session, StopWithoutStartReturnsAnEmptySummary) {
    Session<NativeZones> session(small_config());
    auto sink = session.add_sink<RecordingSink>();
    const auto summary = session.stop();
    EXPECT_FALSE(session.running());
    EXPECT_TRUE(summary.threads.empty());
    EXPECT_EQ(summary.total_events, 0u);
    EXPECT_EQ(summary.total_lost, 0u);
    EXPECT_EQ(sink->opens(), 0);
    EXPECT_EQ(sink->closes(), 0);
    EXPECT_EQ(sink->aborts(), 0);
}

TEST(Session, DestroyWithoutStopClosesSinksWithTheData) {
    auto sink = std::make_shared<RecordingSink>();
    {
        Session<NativeZones> session(small_config());
        session.add_sink(sink);
        session.start();
        record_zones(7);
        std::thread([] { record_zones(5); }).join();
    }
    EXPECT_EQ(sink->opens(), 1);
    EXPECT_EQ(sink->closes(), 1);
    EXPECT_EQ(sink->aborts(), 0);
    EXPECT_EQ(sink->event_count(), 24u);
    ASSERT_TRUE(sink->summary().has_value());
    EXPECT_EQ(sink->summary()->total_events, 24u);
    EXPECT_EQ(sink->summary()->threads.size(), 2u);
    // The slot is free again.
    Session<NativeZones> next(small_config());
    EXPECT_NO_THROW(next.start());
    next.stop();
}

TEST(Session, SecondSessionCannotStartWhileFirstRuns) {
    Session<NativeZones> first(small_config());
    Session<NativeZones> second(small_config());
    auto first_sink = first.add_sink<RecordingSink>();
    auto second_sink = second.add_sink<RecordingSink>();
    first.start();
    EXPECT_THROW(second.start(), SessionError);
    EXPECT_FALSE(second.running());
    EXPECT_TRUE(first.running());
    EXPECT_EQ(second_sink->opens(), 0);
    record_zones(3); // goes to the first session only
    const auto first_summary = first.stop();
    EXPECT_EQ(first_summary.total_events, 6u);
    EXPECT_EQ(first_sink->event_count(), 6u);

    ASSERT_NO_THROW(second.start());
    record_zones(2);
    const auto second_summary = second.stop();
    EXPECT_EQ(second_summary.total_events, 4u);
    EXPECT_EQ(second_sink->event_count(), 4u);
    EXPECT_EQ(first_sink->event_count(), 6u);
}

TEST(Session, SessionErrorMessageIsActionable) {
    Session<NativeZones> first(small_config());
    Session<NativeZones> second(small_config());
    first.start();
    try {
        second.start();
        FAIL() << "second start() did not throw";
    } catch (const SessionError& e) {
        EXPECT_NE(std::string(e.what()).find("another session"), std::string::npos) << e.what();
    }
    first.stop();
}

// A refused start() must not disturb the running session, its clock included.
TEST(Session, RefusedStartKeepsTheRunningSessionsClock) {
    if (!pycroscope::clock::invariant_tsc_available()) {
        GTEST_SKIP() << "no invariant TSC: both sessions would use steady_clock";
    }
    Config steady = small_config();
    steady.clock = pycroscope::ClockSource::steady;
    Config tsc = small_config();
    tsc.clock = pycroscope::ClockSource::tsc;
    Session<NativeZones> first(steady);
    Session<NativeZones> second(tsc);
    auto sink = first.add_sink<RecordingSink>();
    first.start();
    EXPECT_THROW(second.start(), SessionError);
    const std::int64_t before = pycroscope::clock::steady_ns();
    { PYCRO_SCOPE_N("after_refused_start"); }
    const std::int64_t after = pycroscope::clock::steady_ns();
    first.stop();
    const auto events = sink->all_events();
    ASSERT_EQ(events.size(), 2u);
    for (const auto& e : events) {
        // steady ticks are steady_clock nanoseconds
        EXPECT_GE(static_cast<std::int64_t>(e.timestamp), before);
        EXPECT_LE(static_cast<std::int64_t>(e.timestamp), after);
    }
}

TEST(Session, RestartRecordsOnlyItsOwnEventsAndRenumbersThreads) {
    Session<NativeZones> session(small_config());
    auto sink = session.add_sink<RecordingSink>();

    session.start();
    std::thread([] { record_zones(2); }).join();
    record_zones(3);
    const auto first = session.stop();
    ASSERT_EQ(first.threads.size(), 2u);
    EXPECT_EQ(first.total_events, 10u);
    EXPECT_EQ(first.thread(2)->events, 6u); // the main thread came second

    session.start();
    EXPECT_TRUE(session.running());
    record_zones(1);
    std::thread([] { record_zones(4); }).join();
    const auto second = session.stop();

    EXPECT_EQ(sink->opens(), 2);
    EXPECT_EQ(sink->closes(), 2);
    ASSERT_EQ(second.threads.size(), 2u);
    EXPECT_EQ(second.threads[0].index, 1u);
    EXPECT_EQ(second.threads[0].events, 2u); // the main thread is first now
    EXPECT_EQ(second.threads[1].index, 2u);
    EXPECT_EQ(second.threads[1].events, 8u);
    EXPECT_EQ(second.total_events, 10u);
    EXPECT_EQ(sink->event_count(), 10u);
    EXPECT_EQ(sink->events_of(1).size(), 2u);
    EXPECT_EQ(sink->events_of(2).size(), 8u);
    EXPECT_NE(first.info.start_ticks, 0u);
}

TEST(Session, NothingIsRecordedOutsideARun) {
    Session<NativeZones> session(small_config());
    auto sink = session.add_sink<RecordingSink>();
    record_zones(5);
    session.start();
    record_zones(1);
    session.stop();
    record_zones(5);
    EXPECT_EQ(sink->event_count(), 2u);
}

TEST(Session, AddSinkRules) {
    Session<NativeZones> session(small_config());
    EXPECT_THROW(session.add_sink(std::shared_ptr<pycroscope::Sink>{}), pycroscope::ConfigError);
    session.start();
    EXPECT_THROW(session.add_sink<RecordingSink>(), SessionError);
    session.stop();
}

TEST(Session, SinkOpenFailureAbortsOpenedSinksAndStartsNothing) {
    Session<NativeZones> session(small_config());
    auto a = session.add_sink<RecordingSink>("a");
    auto b = session.add_sink<FailingSink>("b", FailingSink::FailAt::open);
    auto c = session.add_sink<RecordingSink>("c");
    try {
        session.start();
        FAIL() << "start() did not throw";
    } catch (const pycroscope::ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("b cannot open"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(session.running());
    EXPECT_EQ(a->opens(), 1);
    EXPECT_EQ(a->aborts(), 1);
    EXPECT_EQ(b->opens(), 1);
    EXPECT_EQ(c->opens(), 0);
    EXPECT_EQ(c->aborts(), 0);
    EXPECT_FALSE(pycroscope::native_zones_active());
    record_zones(1);

    // Nothing is left running: another session starts and records.
    Session<NativeZones> good(small_config());
    auto sink = good.add_sink<RecordingSink>();
    ASSERT_NO_THROW(good.start());
    record_zones(2);
    EXPECT_EQ(good.stop().total_events, 4u);
    EXPECT_EQ(sink->event_count(), 4u);
    EXPECT_EQ(a->event_count(), 0u);
}

TEST(Session, FailingConsumeCostsOnlyThatSink) {
    Session<NativeZones> session(small_config());
    auto good = session.add_sink<RecordingSink>("good");
    auto bad = session.add_sink<FailingSink>("bad sink", FailingSink::FailAt::consume);
    session.start();
    record_zones(6);
    try {
        session.stop();
        FAIL() << "stop() did not report the failed sink";
    } catch (const SinkError& e) {
        EXPECT_NE(std::string(e.what()).find("bad sink: disk full"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(session.running());
    EXPECT_EQ(good->event_count(), 12u);
    EXPECT_EQ(good->closes(), 1);
    EXPECT_EQ(bad->aborts(), 1);
    EXPECT_EQ(bad->closes(), 0);
    const auto& summary = session.summary();
    ASSERT_EQ(summary.errors.size(), 1u);
    EXPECT_EQ(summary.errors[0], "bad sink: disk full");
    EXPECT_EQ(summary.total_events, 12u);
    ASSERT_TRUE(good->summary().has_value());
    EXPECT_EQ(good->summary()->errors.size(), 1u);
}

TEST(Session, FailingCloseIsReportedAndAborted) {
    Session<NativeZones> session(small_config());
    auto bad = session.add_sink<FailingSink>("bad close", FailingSink::FailAt::close);
    auto good = session.add_sink<RecordingSink>("good");
    session.start();
    record_zones(1);
    EXPECT_THROW(session.stop(), SinkError);
    EXPECT_EQ(bad->closes(), 1);
    EXPECT_EQ(bad->aborts(), 1);
    EXPECT_EQ(good->closes(), 1);
    EXPECT_EQ(good->aborts(), 0);
    ASSERT_EQ(session.summary().errors.size(), 1u);
    EXPECT_EQ(session.summary().errors[0], "bad close: rename failed");
    // A second stop() does not throw again: it returns the summary.
    EXPECT_EQ(session.stop().errors.size(), 1u);
}

// A collector that refuses to start: start() undoes everything.
struct RefusingCollector {
    static constexpr const char* name = "refusing";
    static inline int stops = 0;
    void start(pycroscope::SessionCore&) { throw pycroscope::ConfigError("refusing collector"); }
    void stop(pycroscope::SessionCore&) noexcept { ++stops; }
};
struct CountingCollector {
    static constexpr const char* name = "counting";
    static inline int starts = 0;
    static inline int stops = 0;
    void start(pycroscope::SessionCore&) { ++starts; }
    void stop(pycroscope::SessionCore&) noexcept { ++stops; }
};

TEST(Session, CollectorFailureAbortsTheStart) {
    CountingCollector::starts = CountingCollector::stops = 0;
    RefusingCollector::stops = 0;
    {
        Session<NativeZones, CountingCollector, RefusingCollector> session(small_config());
        auto sink = session.add_sink<RecordingSink>();
        EXPECT_THROW(session.start(), pycroscope::ConfigError);
        EXPECT_FALSE(session.running());
        EXPECT_FALSE(pycroscope::native_zones_active());
        EXPECT_EQ(CountingCollector::starts, 1);
        EXPECT_EQ(CountingCollector::stops, 1);
        EXPECT_EQ(RefusingCollector::stops, 0); // never started
        EXPECT_EQ(sink->opens(), 1);
        EXPECT_EQ(sink->aborts(), 1);
        EXPECT_EQ(sink->closes(), 0);
    }
    Session<NativeZones> good(small_config());
    EXPECT_NO_THROW(good.start());
    good.stop();
}

TEST(Session, CollectorsStartAndStopOnce) {
    CountingCollector::starts = CountingCollector::stops = 0;
    {
        Session<CountingCollector> session(small_config());
        session.start();
        session.start();
        EXPECT_EQ(CountingCollector::starts, 1);
        session.stop();
        session.stop();
        EXPECT_EQ(CountingCollector::stops, 1);
    }
    EXPECT_EQ(CountingCollector::stops, 1);
}


// The drain thread's pause: the longest while nothing came; else long enough
// for the fastest-filling buffer to reach a quarter of its capacity again, at
// the rate it filled since the pass before; within [20us, drain_interval].
TEST(Session, DrainPauseTargetsAQuarterOfTheFastestBuffer) {
    using std::chrono::microseconds;
    using pycroscope::detail::drain_pause;
    const microseconds longest{1000};
    EXPECT_EQ(drain_pause(0.0, microseconds(1000), longest), longest);
    EXPECT_EQ(drain_pause(1.0, microseconds(1000), longest), microseconds(250));
    EXPECT_EQ(drain_pause(0.5, microseconds(400), longest), microseconds(200));
    EXPECT_EQ(drain_pause(0.125, microseconds(400), longest), microseconds(800));
    EXPECT_EQ(drain_pause(0.01, microseconds(1000), longest), longest);
    EXPECT_EQ(drain_pause(4.0, microseconds(100), longest), microseconds(20));
    EXPECT_EQ(drain_pause(1.0, microseconds(1000), microseconds(5)), microseconds(5));
}

} // namespace
} // namespace session_test
