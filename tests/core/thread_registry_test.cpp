// Recording threads: attach on first event, thread indexes, names, and the
// flush of a thread's buffer when it exits (short-lived threads lose nothing).

#include "pycroscope/core/session.hpp"
#include "pycroscope/core/thread_registry.hpp"
#include "pycroscope/core/zone.hpp"
#include "support/recording_sink.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace thread_registry_test {
namespace {

using pycroscope::Event;
using pycroscope::EventKind;
using pycroscope::NativeZones;
using pycroscope::Session;
using pycroscope_test::RecordingSink;

constexpr int thread_count = 200;
constexpr int zones_per_thread = 25;

pycroscope::Config config_for_threads() {
    pycroscope::Config config;
    config.buffer_capacity = 256; // more than one thread's events: no thread ever blocks
    config.drain_interval = std::chrono::microseconds(200);
    return config;
}

void record_k_zones() {
    for (int i = 0; i < zones_per_thread; ++i) {
        PYCRO_SCOPE_N("thread_registry_test.zone");
    }
}

// Every thread's events, as the sink saw them: K begin/end pairs, in order.
void expect_k_pairs_per_thread(const RecordingSink& sink) {
    const auto by_thread = sink.events_by_thread();
    ASSERT_EQ(by_thread.size(), static_cast<std::size_t>(thread_count));
    std::uint32_t expected_index = 1;
    for (const auto& entry : by_thread) {
        EXPECT_EQ(entry.first, expected_index++) << "thread indexes are 1..N without gaps";
        const auto& events = entry.second;
        ASSERT_EQ(events.size(), static_cast<std::size_t>(2 * zones_per_thread)) << "thread " << entry.first;
        for (std::size_t i = 0; i < events.size(); ++i) {
            ASSERT_EQ(events[i].kind, i % 2 == 0 ? EventKind::zone_begin : EventKind::zone_end);
            if (i > 0) {
                ASSERT_GE(events[i].timestamp, events[i - 1].timestamp);
            }
        }
    }
}

void expect_summary_all_exited(const pycroscope::SessionSummary& summary) {
    ASSERT_EQ(summary.threads.size(), static_cast<std::size_t>(thread_count));
    std::set<std::uint64_t> tids;
    for (std::size_t i = 0; i < summary.threads.size(); ++i) {
        const auto& t = summary.threads[i];
        EXPECT_EQ(t.index, static_cast<std::uint32_t>(i + 1));
        EXPECT_TRUE(t.exited) << "thread " << t.index;
        EXPECT_EQ(t.lost, 0u) << "thread " << t.index;
        EXPECT_EQ(t.events, static_cast<std::uint64_t>(2 * zones_per_thread)) << "thread " << t.index;
        EXPECT_EQ(t.name, "thread-" + std::to_string(t.index));
        tids.insert(t.os_tid);
    }
    EXPECT_EQ(summary.total_events, static_cast<std::uint64_t>(thread_count * 2 * zones_per_thread));
    EXPECT_EQ(summary.total_lost, 0u);
#if defined(__linux__)
    // Joined threads' kernel ids can be reused, so only check they are real.
    EXPECT_EQ(tids.count(0), 0u);
#endif
}

std::size_t live_buffers() {
    std::lock_guard<std::mutex> lock(pycroscope::detail::active_registry_mutex());
    auto* registry = pycroscope::detail::active_registry();
    if (registry == nullptr) {
        return 0;
    }
    std::vector<std::shared_ptr<pycroscope::ThreadBuffer>> live;
    registry->snapshot(live);
    return live.size();
}

// 200 threads record K zones each and exit before stop(): every event of every
// thread reaches the sink, and every thread is reported as exited.
TEST(ThreadRegistry, ShortLivedThreadsAreDrainedOnExit) {
    Session<NativeZones> session(config_for_threads());
    auto sink = session.add_sink<RecordingSink>();
    session.start();
    std::vector<std::thread> threads;
    threads.reserve(thread_count);
    for (int i = 0; i < thread_count; ++i) {
        threads.emplace_back(record_k_zones);
    }
    for (auto& t : threads) {
        t.join();
    }
    const auto summary = session.stop();

    EXPECT_EQ(sink->event_count(), static_cast<std::size_t>(thread_count * 2 * zones_per_thread));
    expect_k_pairs_per_thread(*sink);
    expect_summary_all_exited(summary);
    EXPECT_EQ(sink->closes(), 1);
}

// Threads exit in waves while the session runs; the drain thread delivers
// and retires their buffers during the run, long before stop().
TEST(ThreadRegistry, ExitedThreadsAreDrainedAndRetiredDuringTheRun) {
    Session<NativeZones> session(config_for_threads());
    auto sink = session.add_sink<RecordingSink>();
    session.start();
    constexpr int waves = 4;
    for (int wave = 0; wave < waves; ++wave) {
        std::vector<std::thread> threads;
        for (int i = 0; i < thread_count / waves; ++i) {
            threads.emplace_back(record_k_zones);
        }
        for (auto& t : threads) {
            t.join();
        }
        const std::size_t so_far = static_cast<std::size_t>((wave + 1) * (thread_count / waves) * 2 * zones_per_thread);
        ASSERT_TRUE(sink->wait_for_events(so_far)) << "wave " << wave << " not delivered during the run";
    }
    EXPECT_EQ(sink->event_count(), static_cast<std::size_t>(thread_count * 2 * zones_per_thread));

    // Retirement follows delivery on a later drain pass: wait for it, bounded.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (live_buffers() != 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_EQ(live_buffers(), 0u) << "exited threads' buffers were not retired during the run";
    EXPECT_TRUE(session.running());

    std::this_thread::sleep_for(std::chrono::milliseconds(5)); // stop comes later
    const auto summary = session.stop();
    expect_k_pairs_per_thread(*sink);
    expect_summary_all_exited(summary);
}

// A thread gets its index at its first event, in order, and keeps it.
TEST(ThreadRegistry, IndexesFollowFirstEventOrder) {
    Session<NativeZones> session(config_for_threads());
    auto sink = session.add_sink<RecordingSink>();
    session.start();
    std::uint64_t tid_a = 0, tid_b = 0;
    std::thread a([&] {
        tid_a = pycroscope::detail::current_os_tid();
        PYCRO_MARK("a");
    });
    a.join();
    { PYCRO_SCOPE_N("main"); }
    std::thread b([&] {
        tid_b = pycroscope::detail::current_os_tid();
        PYCRO_MARK("b");
        PYCRO_MARK("b");
    });
    b.join();
    { PYCRO_SCOPE_N("main again"); }
    const auto summary = session.stop();

    ASSERT_EQ(summary.threads.size(), 3u);
    EXPECT_EQ(summary.threads[0].os_tid, tid_a);
    EXPECT_EQ(summary.threads[0].events, 1u);
    EXPECT_TRUE(summary.threads[0].exited);
    EXPECT_EQ(summary.threads[1].os_tid, pycroscope::detail::current_os_tid());
    EXPECT_EQ(summary.threads[1].events, 4u);
    EXPECT_FALSE(summary.threads[1].exited);
    EXPECT_EQ(summary.threads[2].os_tid, tid_b);
    EXPECT_EQ(summary.threads[2].events, 2u);
    EXPECT_EQ(sink->events_of(2).size(), 4u);
    const auto infos = sink->threads();
    ASSERT_EQ(infos.size(), 3u);
    EXPECT_EQ(infos.at(3).os_tid, tid_b);
    EXPECT_EQ(infos.at(3).index, 3u);
}

TEST(ThreadRegistry, ThreadNamesBeforeAndDuringTheSession) {
    Session<NativeZones> session(config_for_threads());
    auto sink = session.add_sink<RecordingSink>();
    std::atomic<bool> named{false}, go{false};

    // Named before the session starts.
    std::thread early([&] {
        pycroscope::set_thread_name("early-bird");
        named.store(true);
        while (!go.load()) {
            std::this_thread::yield();
        }
        PYCRO_MARK("early");
    });
    while (!named.load()) {
        std::this_thread::yield();
    }
    session.start();
    go.store(true);
    early.join();

    // Named during the session, after its first event: renamed in place.
    std::thread late([&] {
        PYCRO_MARK("late.before");
        EXPECT_TRUE(sink->wait_for_events(2)); // the default name was delivered once
        pycroscope::set_thread_name("late-riser");
        PYCRO_MARK("late.after");
    });
    late.join();

    // Never named.
    std::thread anonymous([] { PYCRO_MARK("anonymous"); });
    anonymous.join();

    // Names longer than the buffer are cut, not overrun.
    const std::string long_name(200, 'x');
    std::thread verbose([&] {
        pycroscope::set_thread_name(long_name);
        PYCRO_MARK("verbose");
    });
    verbose.join();

    const auto summary = session.stop();
    ASSERT_EQ(summary.threads.size(), 4u);
    EXPECT_EQ(summary.threads[0].name, "early-bird");
    EXPECT_EQ(summary.threads[1].name, "late-riser");
    EXPECT_EQ(summary.threads[2].name, "thread-3");
    EXPECT_EQ(summary.threads[3].name, std::string(63, 'x'));
    const auto infos = sink->threads();
    EXPECT_EQ(infos.at(1).name, "early-bird");
    EXPECT_EQ(infos.at(2).name, "late-riser"); // the latest consume() saw the new name
    EXPECT_EQ(infos.at(3).name, "thread-3");
}

// A thread's name is remembered for sessions that start later.
TEST(ThreadRegistry, ThreadNameCarriesIntoTheNextSession) {
    Session<NativeZones> session(config_for_threads());
    session.add_sink<RecordingSink>();
    std::atomic<int> phase{0};
    session.start();
    std::thread worker([&] {
        pycroscope::set_thread_name("worker");
        PYCRO_MARK("first");
        PYCRO_MARK("first");
        phase.store(1);
        while (phase.load() != 2) {
            std::this_thread::yield();
        }
        PYCRO_MARK("second");
        phase.store(3);
        while (phase.load() != 4) {
            std::this_thread::yield();
        }
    });
    while (phase.load() != 1) {
        std::this_thread::yield();
    }
    const auto first = session.stop();
    session.start();
    phase.store(2);
    while (phase.load() != 3) {
        std::this_thread::yield();
    }
    const auto second = session.stop();
    phase.store(4);
    worker.join();
    ASSERT_EQ(first.threads.size(), 1u);
    EXPECT_EQ(first.threads[0].name, "worker");
    EXPECT_EQ(first.threads[0].events, 2u);
    ASSERT_EQ(second.threads.size(), 1u);
    EXPECT_EQ(second.threads[0].index, 1u);
    EXPECT_EQ(second.threads[0].name, "worker");
    EXPECT_EQ(second.threads[0].events, 1u);
    EXPECT_FALSE(second.threads[0].exited);
}

// Thread-local destructors may record while the thread exits. One destroyed
// before the thread's exit handler is still recorded; one destroyed after it
// must not re-attach the dying thread (and must not crash).
struct RecordsOnThreadExit {
    ~RecordsOnThreadExit() { PYCRO_MARK("thread_registry_test.exiting"); }
};

TEST(ThreadRegistry, RecordingDuringThreadExit) {
    Session<NativeZones> session(config_for_threads());
    auto sink = session.add_sink<RecordingSink>();
    session.start();
    std::thread before_guard([] {
        PYCRO_MARK("thread_registry_test.alive"); // attaches: the exit handler exists from here
        static thread_local RecordsOnThreadExit destroyed_first;
        (void)destroyed_first;
    });
    before_guard.join();
    std::thread after_guard([] {
        static thread_local RecordsOnThreadExit destroyed_last;
        (void)destroyed_last;
        PYCRO_MARK("thread_registry_test.alive");
    });
    after_guard.join();
    const auto summary = session.stop();
    ASSERT_EQ(summary.threads.size(), 2u);
    EXPECT_TRUE(summary.threads[0].exited);
    EXPECT_EQ(summary.threads[0].events, 2u);
    EXPECT_TRUE(summary.threads[1].exited);
    EXPECT_EQ(summary.threads[1].events, 1u);
    EXPECT_EQ(sink->event_count(), 3u);
}

} // namespace
} // namespace thread_registry_test
