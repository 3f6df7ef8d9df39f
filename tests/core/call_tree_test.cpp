// SpanStack and CallTree: exact aggregation of hand-made event sequences, and
// nesting recorded by several threads through a session.

#include "pycroscope/core/call_tree.hpp"
#include "pycroscope/core/event.hpp"
#include "pycroscope/core/session.hpp"
#include "pycroscope/core/span_stack.hpp"
#include "pycroscope/core/zone.hpp"
#include "support/recording_sink.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace call_tree_test {
namespace {

using pycroscope::CallTree;
using pycroscope::Event;
using pycroscope::EventKind;
using pycroscope::LocationKind;
using pycroscope::SourceLocation;

constexpr SourceLocation loc_a{"a", "a", "t.cpp", 1, LocationKind::native_zone};
constexpr SourceLocation loc_b{"b", "b", "t.cpp", 2, LocationKind::native_zone};
constexpr SourceLocation loc_c{"c", "c", "t.cpp", 3, LocationKind::native_zone};

Event ev(EventKind kind, const SourceLocation* loc, std::uint64_t ts) {
    return Event{ts, pycroscope::location_id(loc), 0, 0, kind, 0, 0};
}
Event begin(const SourceLocation* loc, std::uint64_t ts) { return ev(EventKind::zone_begin, loc, ts); }
Event end(const SourceLocation* loc, std::uint64_t ts) { return ev(EventKind::zone_end, loc, ts); }

// Node of tree at a path of locations from the root; null when absent.
const CallTree::Node* find(const CallTree& tree, std::vector<const SourceLocation*> path) {
    const CallTree::Node* found = nullptr;
    tree.for_each_node([&](const std::vector<const SourceLocation*>& p, const CallTree::Node& node) {
        if (p == path) {
            found = &node;
        }
    });
    return found;
}

TEST(CallTree, ExactTicksForAHandMadeRun) {
    CallTree tree;
    // a [0,100): b [10,40), b [50,60) with c [52,58), instant ignored
    for (const Event& e : {begin(&loc_a, 0), begin(&loc_b, 10), end(&loc_b, 40), begin(&loc_b, 50),
                           begin(&loc_c, 52), ev(EventKind::instant, &loc_c, 53), end(&loc_c, 58),
                           end(&loc_b, 60), end(&loc_a, 100)}) {
        tree.add(e);
    }
    EXPECT_EQ(tree.open_depth(), 0u);
    EXPECT_EQ(tree.unmatched_ends(), 0u);
    ASSERT_EQ(tree.nodes().size(), 4u); // root, a, a/b, a/b/c
    const auto* a = find(tree, {&loc_a});
    const auto* b = find(tree, {&loc_a, &loc_b});
    const auto* c = find(tree, {&loc_a, &loc_b, &loc_c});
    ASSERT_TRUE(a && b && c);
    EXPECT_EQ(a->count, 1u);
    EXPECT_EQ(a->inclusive_ticks, 100u);
    EXPECT_EQ(a->self_ticks, 60u);
    EXPECT_EQ(b->count, 2u);
    EXPECT_EQ(b->inclusive_ticks, 40u);
    EXPECT_EQ(b->self_ticks, 34u);
    EXPECT_EQ(c->count, 1u);
    EXPECT_EQ(c->inclusive_ticks, 6u);
    EXPECT_EQ(c->self_ticks, 6u);
    EXPECT_EQ(tree.nodes()[0].location, nullptr);
}

TEST(CallTree, LostEventsAreToleratedAndCounted) {
    CallTree tree;
    tree.add(end(&loc_c, 1)); // its begin was lost
    tree.add(begin(&loc_a, 10));
    tree.add(begin(&loc_b, 20)); // its end was lost
    tree.add(end(&loc_a, 50));   // closes b at 50 too
    tree.add(begin(&loc_a, 60)); // still open at the end
    tree.finish(100);
    EXPECT_EQ(tree.unmatched_ends(), 1u);
    EXPECT_EQ(tree.open_depth(), 0u);
    const auto* a = find(tree, {&loc_a});
    const auto* b = find(tree, {&loc_a, &loc_b});
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->count, 2u);
    EXPECT_EQ(a->inclusive_ticks, 40u + 40u);
    EXPECT_EQ(b->inclusive_ticks, 30u);
    EXPECT_EQ(a->self_ticks, 10u + 40u);
}

TEST(CallTree, TotalsCountRecursionOnce) {
    CallTree tree;
    // a [0,100) calls a [10,50) which calls b [20,30)
    for (const Event& e : {begin(&loc_a, 0), begin(&loc_a, 10), begin(&loc_b, 20), end(&loc_b, 30), end(&loc_a, 50),
                           end(&loc_a, 100)}) {
        tree.add(e);
    }
    std::unordered_map<const SourceLocation*, pycroscope::LocationTotals> totals;
    pycroscope::accumulate_totals(tree, totals);
    EXPECT_EQ(totals[&loc_a].count, 2u);
    EXPECT_EQ(totals[&loc_a].inclusive_ticks, 100u); // outermost only
    EXPECT_EQ(totals[&loc_a].self_ticks, 60u + 30u);
    EXPECT_EQ(totals[&loc_b].count, 1u);
    EXPECT_EQ(totals[&loc_b].inclusive_ticks, 10u);
}

// --- nesting recorded by several threads through a session ------------------

constexpr int worker_count = 4;
constexpr int outer_reps = 20, inner_reps = 3, innermost_reps = 2;

void nested_work(volatile std::uint64_t& sink) {
    for (int i = 0; i < outer_reps; ++i) {
        PYCRO_SCOPE_N("outer");
        for (int j = 0; j < inner_reps; ++j) {
            PYCRO_SCOPE_N("inner");
            for (int k = 0; k < innermost_reps; ++k) {
                PYCRO_SCOPE_N("innermost");
                for (int spin = 0; spin < 100; ++spin) {
                    sink = sink + static_cast<std::uint64_t>(spin);
                }
            }
        }
    }
}

TEST(CallTree, NestedZonesAcrossThreads) {
    pycroscope::Config config;
    config.buffer_capacity = 1024;
    // steady_clock is monotonic by contract on every thread, which the
    // inclusive-time checks below rely on.
    config.clock = pycroscope::ClockSource::steady;
    pycroscope::Session<pycroscope::NativeZones> session(config);
    auto sink = session.add_sink<pycroscope_test::RecordingSink>();
    session.start();
    std::vector<std::thread> workers;
    for (int t = 0; t < worker_count; ++t) {
        workers.emplace_back([] {
            volatile std::uint64_t work = 0;
            nested_work(work);
        });
    }
    for (auto& w : workers) {
        w.join();
    }
    const auto summary = session.stop();
    EXPECT_EQ(summary.total_lost, 0u);

    constexpr std::size_t zones_per_thread =
        outer_reps + outer_reps * inner_reps + outer_reps * inner_reps * innermost_reps;
    const auto by_thread = sink->events_by_thread();
    ASSERT_EQ(by_thread.size(), static_cast<std::size_t>(worker_count));
    for (const auto& entry : by_thread) {
        SCOPED_TRACE("thread " + std::to_string(entry.first));
        const auto& events = entry.second;
        ASSERT_EQ(events.size(), 2 * zones_per_thread);

        // Properly nested and balanced: every end closes the innermost open zone.
        std::vector<const SourceLocation*> stack;
        std::map<std::string, int> depth_of{{"outer", 0}, {"inner", 1}, {"innermost", 2}};
        for (const Event& e : events) {
            if (e.kind == EventKind::zone_begin) {
                ASSERT_EQ(static_cast<int>(stack.size()), depth_of.at(e.location()->name));
                stack.push_back(e.location());
            } else {
                ASSERT_EQ(e.kind, EventKind::zone_end);
                ASSERT_FALSE(stack.empty());
                ASSERT_EQ(stack.back(), e.location());
                stack.pop_back();
            }
        }
        EXPECT_TRUE(stack.empty());

        CallTree tree;
        for (const Event& e : events) {
            tree.add(e);
        }
        EXPECT_EQ(tree.open_depth(), 0u);
        EXPECT_EQ(tree.unmatched_ends(), 0u);
        ASSERT_EQ(tree.nodes().size(), 4u); // root + outer + inner + innermost
        const CallTree::Node* outer = nullptr;
        const CallTree::Node* inner = nullptr;
        const CallTree::Node* innermost = nullptr;
        tree.for_each_node([&](const std::vector<const SourceLocation*>& path, const CallTree::Node& node) {
            const std::string name = node.location->name;
            if (name == "outer" && path.size() == 1) outer = &node;
            if (name == "inner" && path.size() == 2) inner = &node;
            if (name == "innermost" && path.size() == 3) innermost = &node;
        });
        ASSERT_TRUE(outer && inner && innermost);
        EXPECT_EQ(outer->count, static_cast<std::uint64_t>(outer_reps));
        EXPECT_EQ(inner->count, static_cast<std::uint64_t>(outer_reps * inner_reps));
        EXPECT_EQ(innermost->count, static_cast<std::uint64_t>(outer_reps * inner_reps * innermost_reps));
        for (const auto& node : tree.nodes()) {
            EXPECT_GE(node.inclusive_ticks, node.self_ticks);
        }
        // A parent's inclusive time covers its children's, with self the rest.
        EXPECT_GE(outer->inclusive_ticks, inner->inclusive_ticks);
        EXPECT_GE(inner->inclusive_ticks, innermost->inclusive_ticks);
        EXPECT_EQ(outer->self_ticks + inner->inclusive_ticks, outer->inclusive_ticks);
        EXPECT_EQ(inner->self_ticks + innermost->inclusive_ticks, inner->inclusive_ticks);
        EXPECT_EQ(innermost->self_ticks, innermost->inclusive_ticks);
        EXPECT_GT(innermost->inclusive_ticks, 0u);
    }
}

} // namespace
} // namespace call_tree_test
