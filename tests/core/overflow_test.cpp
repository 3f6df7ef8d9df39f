// Overflow policies end to end: a sink stalls the drain thread after exactly
// one event, a thread then records N events into a tiny buffer, and the
// summary must account for every event exactly.

#include "pycroscope/core/session.hpp"
#include "pycroscope/core/zone.hpp"
#include "support/recording_sink.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

namespace overflow_test {
namespace {

using pycroscope::Event;
using pycroscope::EventKind;
using pycroscope::NativeZones;
using pycroscope::OverflowPolicy;
using pycroscope::Session;
using pycroscope_test::StallingSink;

constexpr std::size_t capacity = 16;
constexpr std::uint64_t n = 1000; // recorded after the stall

pycroscope::Config tiny(OverflowPolicy policy) {
    pycroscope::Config config;
    config.buffer_capacity = capacity;
    config.overflow = policy;
    config.drain_interval = std::chrono::microseconds(100);
    return config;
}

void record_counter(std::uint64_t value) { PYCRO_COUNTER("overflow_test.seq", value); }

std::vector<std::uint64_t> values(const std::vector<Event>& events) {
    std::vector<std::uint64_t> out;
    for (const auto& e : events) {
        EXPECT_EQ(e.kind, EventKind::counter);
        out.push_back(static_cast<std::uint64_t>(e.value()));
    }
    return out;
}

// Records value 0, waits until the drain thread holds exactly that event
// inside the stalled sink, then records 1..n into the now empty ring.
void stall_then_record(StallingSink& sink) {
    record_counter(0);
    ASSERT_TRUE(sink.wait_until_stalled()) << "the drain thread never delivered the first event";
    for (std::uint64_t i = 1; i <= n; ++i) {
        record_counter(i);
    }
}

TEST(Overflow, DropNewestCountsEveryRefusedEvent) {
    Session<NativeZones> session(tiny(OverflowPolicy::drop_newest));
    auto sink = session.add_sink<StallingSink>();
    StallingSink::ReleaseOnExit guard{*sink};
    session.start();
    std::thread producer([&] { stall_then_record(*sink); });
    producer.join();
    sink->release();
    const auto summary = session.stop();

    // Delivered: the stalled event, then the first `capacity` after it.
    std::vector<std::uint64_t> expected{0};
    for (std::uint64_t i = 1; i <= capacity; ++i) {
        expected.push_back(i);
    }
    EXPECT_EQ(values(sink->all_events()), expected);
    ASSERT_EQ(summary.threads.size(), 1u);
    EXPECT_EQ(summary.threads[0].events, 1 + capacity);
    EXPECT_EQ(summary.threads[0].lost, n - capacity);
    EXPECT_EQ(summary.total_events, 1 + capacity);
    EXPECT_EQ(summary.total_lost, n - capacity);
    EXPECT_EQ(summary.total_events + summary.total_lost, n + 1); // recorded
    EXPECT_TRUE(summary.threads[0].exited);
}

TEST(Overflow, OverwriteOldestKeepsTheNewest) {
    Session<NativeZones> session(tiny(OverflowPolicy::overwrite_oldest));
    auto sink = session.add_sink<StallingSink>();
    StallingSink::ReleaseOnExit guard{*sink};
    session.start();
    std::thread producer([&] { stall_then_record(*sink); });
    producer.join();
    sink->release();
    const auto summary = session.stop();

    // Delivered: the stalled event, then the last `capacity` events, in order.
    std::vector<std::uint64_t> expected{0};
    for (std::uint64_t i = n - capacity + 1; i <= n; ++i) {
        expected.push_back(i);
    }
    EXPECT_EQ(values(sink->all_events()), expected);
    ASSERT_EQ(summary.threads.size(), 1u);
    EXPECT_EQ(summary.threads[0].events, 1 + capacity);
    EXPECT_EQ(summary.threads[0].lost, n - capacity);
    EXPECT_EQ(summary.total_events + summary.total_lost, n + 1);
}

TEST(Overflow, BlockWaitsForTheStalledSinkAndLosesNothing) {
    Session<NativeZones> session(tiny(OverflowPolicy::block));
    auto sink = session.add_sink<StallingSink>();
    StallingSink::ReleaseOnExit guard{*sink};
    session.start();
    std::atomic<bool> done{false};
    std::thread producer([&] {
        stall_then_record(*sink);
        done.store(true);
    });
    EXPECT_TRUE(sink->wait_until_stalled()); // EXPECT: the producer must still be joined
    // n events cannot fit in `capacity` slots while the drain is stalled.
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    EXPECT_FALSE(done.load()) << "the producer finished although its buffer could not hold its events";
    sink->release();
    producer.join();
    EXPECT_TRUE(done.load());
    const auto summary = session.stop();

    std::vector<std::uint64_t> expected;
    for (std::uint64_t i = 0; i <= n; ++i) {
        expected.push_back(i);
    }
    EXPECT_EQ(values(sink->all_events()), expected);
    EXPECT_EQ(summary.total_events, n + 1);
    EXPECT_EQ(summary.total_lost, 0u);
}

// stop() while a producer is blocked on a full buffer: the producer is let go
// (its pending events are counted as dropped) instead of deadlocking.
TEST(Overflow, StopReleasesABlockedProducer) {
    Session<NativeZones> session(tiny(OverflowPolicy::block));
    auto sink = session.add_sink<StallingSink>();
    StallingSink::ReleaseOnExit guard{*sink};
    session.start();
    std::atomic<std::uint64_t> attempted{0};
    std::atomic<bool> stop_now{false};
    std::thread producer([&] {
        record_counter(0);
        attempted.store(1);
        if (!sink->wait_until_stalled()) {
            return;
        }
        // Keeps recording until told to stop; blocks once the ring is full.
        while (!stop_now.load()) {
            record_counter(attempted.load());
            attempted.fetch_add(1);
        }
    });
    EXPECT_TRUE(sink->wait_until_stalled()); // EXPECT: the producer must still be joined
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    // Full and blocked: 1 delivered-to-be + capacity stored + one waiting.
    EXPECT_EQ(attempted.load(), 1 + capacity);

    // stop() must close the rings before it waits for the stalled drain, so
    // release the sink from another thread while stop() runs.
    std::thread releaser([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        sink->release();
    });
    const auto summary = session.stop();
    stop_now.store(true);
    producer.join();
    releaser.join();

    // Everything attempted is delivered or counted lost: the producer's
    // push that was blocked during stop is counted dropped, and once the
    // session is gone nothing more is recorded.
    EXPECT_EQ(summary.total_events, 1 + capacity);
    EXPECT_EQ(summary.total_lost, 1u);
    EXPECT_EQ(sink->event_count(), 1 + capacity);
}

} // namespace
} // namespace overflow_test
