// Custom sinks built on BaseSinkSt / BaseSinkMt: they see every event the
// session delivers, through the underscore hooks; a sink that throws is cut
// off without costing the others their output; PerThreadState.

#include "sinks/sink_test_helpers.hpp"
#include "support/json.hpp"
#include "support/recording_sink.hpp"

#include <pycroscope/core/error.hpp>
#include <pycroscope/core/session.hpp>
#include <pycroscope/core/zone.hpp>
#include <pycroscope/sinks/base_sink.hpp>
#include <pycroscope/sinks/chrome_trace_sink.hpp>
#include <pycroscope/sinks/folded_stack_sink.hpp>
#include <pycroscope/sinks/json_summary_sink.hpp>
#include <pycroscope/sinks/per_thread_state.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace base_sink_test {
namespace {

using pycroscope::Event;
using pycroscope::SessionInfo;
using pycroscope::SessionSummary;
using pycroscope::ThreadInfo;
using sink_test::TempDir;

bool same_events(const std::vector<Event>& a, const std::vector<Event>& b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(Event)) == 0);
}

// Keeps everything it is given, through the hooks only.
template <class Base>
class CollectingSink : public Base {
public:
    std::string describe() const override { return "collecting sink"; }

    std::size_t events_seen() {
        return this->with_lock([this] {
            std::size_t n = 0;
            for (const auto& entry : events) {
                n += entry.second.size();
            }
            return n;
        });
    }

    int opens = 0, closes = 0, aborts = 0, batches = 0;
    SessionInfo info;
    SessionSummary summary;
    std::map<std::uint32_t, std::vector<Event>> events;
    std::map<std::uint32_t, ThreadInfo> threads;

protected:
    void open_(const SessionInfo& i) override {
        ++opens;
        info = i;
    }
    void sink_it_(const ThreadInfo& thread, const Event* e, std::size_t count) override {
        ++batches;
        events[thread.index].insert(events[thread.index].end(), e, e + count);
        threads[thread.index] = thread;
    }
    void close_(const SessionSummary& s) override {
        ++closes;
        summary = s;
    }
    void abort_() noexcept override { ++aborts; }
};

// Implements only the one required hook.
class MinimalSink : public pycroscope::sinks::BaseSinkSt {
public:
    std::string describe() const override { return "minimal"; }
    std::size_t count = 0;

protected:
    void sink_it_(const ThreadInfo&, const Event*, std::size_t n) override { count += n; }
};

template <class Base>
void check_custom_sink_sees_every_event() {
    pycroscope::Config config;
    config.process_name = "custom-sink-test";
    pycroscope::Session<pycroscope::NativeZones> session(config);
    auto custom = session.template add_sink<CollectingSink<Base>>();
    auto minimal = session.template add_sink<MinimalSink>();
    auto recording = session.template add_sink<pycroscope_test::RecordingSink>();
    session.start();
    sink_test::run_workers(3, [](int k) { sink_test::workload(30 * k); });
    pycroscope::set_thread_name("main");
    sink_test::workload(7);
    const SessionSummary summary = session.stop();

    EXPECT_EQ(custom->opens, 1);
    EXPECT_EQ(custom->closes, 1);
    EXPECT_EQ(custom->aborts, 0);
    EXPECT_GE(custom->batches, 4);
    EXPECT_EQ(custom->info.process_name, "custom-sink-test");
    EXPECT_EQ(custom->summary.total_events, summary.total_events);
    const std::size_t expected = (30 + 60 + 90 + 7) * sink_test::events_per_iteration;
    EXPECT_EQ(summary.total_events, expected);
    EXPECT_EQ(custom->events_seen(), expected);
    EXPECT_EQ(minimal->count, expected);
    // The same events, byte for byte and in the same order, per thread.
    const auto recorded = recording->events_by_thread();
    ASSERT_EQ(custom->events.size(), recorded.size());
    for (const auto& entry : recorded) {
        EXPECT_TRUE(same_events(custom->events[entry.first], entry.second)) << "thread " << entry.first;
        EXPECT_EQ(custom->threads[entry.first].name, summary.thread(entry.first)->name);
    }
}

TEST(BaseSink, SingleThreadedBaseSeesEveryEvent) { check_custom_sink_sees_every_event<pycroscope::sinks::BaseSinkSt>(); }

TEST(BaseSink, MultiThreadedBaseSeesEveryEvent) { check_custom_sink_sees_every_event<pycroscope::sinks::BaseSinkMt>(); }

TEST(BaseSink, WithLockReadsStateWhileTheSessionDrains) {
    pycroscope::Config config;
    config.drain_interval = std::chrono::microseconds(100);
    pycroscope::Session<pycroscope::NativeZones> session(config);
    auto sink = session.add_sink<CollectingSink<pycroscope::sinks::BaseSinkMt>>();
    session.start();
    sink_test::workload(100);
    // The drain thread delivers concurrently; with_lock() serialises the reads.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (sink->events_seen() < 700 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_EQ(sink->events_seen(), 700u);
    EXPECT_EQ(sink->with_lock([&] { return sink->closes; }), 0);
    session.stop();
    EXPECT_EQ(sink->closes, 1);
}

// Throws from the hook on its first batch.
class ThrowingSink : public pycroscope::sinks::BaseSinkMt {
public:
    std::string describe() const override { return "throwing test sink"; }
    std::atomic<int> calls{0}, closes{0}, aborts{0};

protected:
    void sink_it_(const ThreadInfo&, const Event*, std::size_t) override {
        ++calls;
        throw std::runtime_error("disk on fire");
    }
    void close_(const SessionSummary&) override { ++closes; }
    void abort_() noexcept override { ++aborts; }
};

TEST(BaseSink, ThrowingSinkDoesNotCostTheOthersTheirOutput) {
    TempDir dir;
    pycroscope::Session<pycroscope::NativeZones> session;
    auto trace = session.add_sink<pycroscope::sinks::ChromeTraceSink>(dir.file("trace.json"));
    auto thrower = session.add_sink<ThrowingSink>();
    auto summary_sink = session.add_sink<pycroscope::sinks::JsonSummarySink>(dir.file("session.json"));
    auto folded = session.add_sink<pycroscope::sinks::FoldedStackSink>(dir.file("stacks.folded"));
    auto recording = session.add_sink<pycroscope_test::RecordingSink>();
    session.start();
    sink_test::run_workers(2, [](int k) { sink_test::workload(25 * k); });
    try {
        session.stop();
        FAIL() << "stop() did not report the failing sink";
    } catch (const pycroscope::SinkError& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("throwing test sink"), std::string::npos) << what;
        EXPECT_NE(what.find("disk on fire"), std::string::npos) << what;
    }
    EXPECT_FALSE(session.running());
    EXPECT_EQ(thrower->calls.load(), 1);
    EXPECT_EQ(thrower->aborts.load(), 1);
    EXPECT_EQ(thrower->closes.load(), 0);

    const SessionSummary& summary = session.summary();
    ASSERT_EQ(summary.errors.size(), 1u);
    EXPECT_EQ(summary.errors[0], "throwing test sink: disk on fire");
    const std::size_t expected = 75 * sink_test::events_per_iteration;
    EXPECT_EQ(summary.total_events, expected);
    EXPECT_EQ(recording->event_count(), expected);

    // The others are complete, and the summary names the failure.
    const json::Value doc = json::parse_file(summary_sink->path());
    EXPECT_EQ(doc.at("events_total").as_uint(), expected);
    ASSERT_EQ(doc.at("errors").size(), 1u);
    EXPECT_EQ(doc.at("errors")[0].as_string(), "throwing test sink: disk on fire");
    std::int64_t outer = 0;
    for (const auto& z : doc.at("zones").items()) {
        if (z.at("name").as_string() == "outer") {
            outer = z.at("count").as_int();
        }
    }
    EXPECT_EQ(outer, 75);
    const json::Value chrome = json::parse_file(trace->path());
    std::size_t x_events = 0;
    for (const auto& e : chrome.at("traceEvents").items()) {
        x_events += e.at("ph").as_string() == "X" ? 1 : 0;
    }
    EXPECT_EQ(x_events, 150u);
    const auto lines = sink_test::lines_of(sink_test::read_file(folded->path()));
    EXPECT_EQ(lines.size(), 4u); // worker-k;outer and worker-k;outer;inner
}

TEST(BaseSink, DefaultHooksAndDirectCalls) {
    MinimalSink sink;
    sink_test::Synthetic s;
    constexpr static pycroscope::SourceLocation loc{"z", "f", "f.cpp", 1, pycroscope::LocationKind::native_zone};
    s.span(1, &loc, 1, 2);
    s.span(2, &loc, 1, 2);
    s.play(sink, 10, 1);
    EXPECT_EQ(sink.count, 4u);
    sink.abort();
    EXPECT_EQ(sink.describe(), "minimal");
}

TEST(PerThreadState, CreatesOnFirstUseAndVisitsInIndexOrder) {
    pycroscope::sinks::PerThreadState<std::vector<int>> states;
    states[5].push_back(50);
    states[2].push_back(20);
    states[5].push_back(51);
    states[0].push_back(0);
    std::vector<std::uint32_t> order;
    std::vector<std::size_t> sizes;
    states.for_each([&](std::uint32_t index, std::vector<int>& v) {
        order.push_back(index);
        sizes.push_back(v.size());
    });
    EXPECT_EQ(order, (std::vector<std::uint32_t>{0, 2, 5}));
    EXPECT_EQ(sizes, (std::vector<std::size_t>{1, 1, 2}));
    // References stay valid when later indices grow the table.
    std::vector<int>& two = states[2];
    states[1000].push_back(1);
    EXPECT_EQ(&two, &states[2]);
    states.clear();
    int visited = 0;
    states.for_each([&](std::uint32_t, std::vector<int>&) { ++visited; });
    EXPECT_EQ(visited, 0);
}

} // namespace
} // namespace base_sink_test
