// The memory model on synthetic event streams: exact live bytes and counts,
// peak and its stack, lifetimes, realloc, unknown frees, cross-thread order,
// growth and the leak verdict, and the rewrite of every mem_free.

#include "pycroscope/model/memory_model.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace memory_model_test {
namespace {

using namespace pycroscope;
using model::MemoryModel;

constexpr SourceLocation line_a{"a.py:10", "f", "a.py", 10, LocationKind::python_line};
constexpr SourceLocation line_b{"a.py:20", "g", "a.py", 20, LocationKind::python_line};
constexpr SourceLocation func_f{"f", "f", "a.py", 9, LocationKind::python_function};
constexpr SourceLocation zone_z{"load", "load", "host.cpp", 5, LocationKind::native_zone};

Event alloc(std::uint64_t t, std::uint64_t address, std::uint64_t bytes, const SourceLocation* site,
            std::uint8_t domain = 1) {
    Event e{t, location_id(site), address, 0, EventKind::mem_alloc, domain, 0};
    set_memory_bytes(e, bytes);
    return e;
}
Event release(std::uint64_t t, std::uint64_t address, std::uint8_t domain = 1) {
    return Event{t, 0, address, 0, EventKind::mem_free, domain, 0};
}
Event span(EventKind kind, std::uint64_t t, const SourceLocation* location) {
    return Event{t, location_id(location), 0, 0, kind, 0, 0};
}

struct ModelHarness {
    explicit ModelHarness(model::MemoryModelOptions options = {}) : model(options) {
        info.start_ticks = 0;
        info.calibration.ns_per_tick = 1.0; // one tick = one ns
        model.open(info);
    }
    void feed(std::uint32_t thread, std::vector<Event>& events) {
        ThreadInfo t;
        t.index = thread;
        model.process(t, events.data(), events.size());
    }
    void close(std::uint64_t stop) {
        SessionSummary summary;
        summary.info = info;
        summary.stop_ticks = stop;
        model.close(summary);
    }
    const model::MemorySite* site(const SourceLocation* line) const {
        for (const auto& s : model.sites()) {
            if (s.line == line) {
                return &s;
            }
        }
        return nullptr;
    }
    SessionInfo info;
    MemoryModel model;
};

TEST(MemoryModel, LiveBytesCountsAndPeakAreExact) {
    ModelHarness h;
    std::vector<Event> events{alloc(10, 0x1000, 100, &line_a), alloc(20, 0x2000, 50, &line_a),
                              alloc(30, 0x3000, 7, &line_b),   release(40, 0x1000),
                              alloc(50, 0x4000, 30, &line_b),  release(60, 0x3000)};
    h.feed(0, events);
    h.close(100);
    const auto* a = h.site(&line_a);
    const auto* b = h.site(&line_b);
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(a->alloc_bytes, 150u);
    EXPECT_EQ(a->alloc_count, 2u);
    EXPECT_EQ(a->live_bytes(), 50);
    EXPECT_EQ(a->live_count(), 1);
    EXPECT_EQ(b->alloc_bytes, 37u);
    EXPECT_EQ(b->live_bytes(), 30);
    EXPECT_EQ(h.model.live_bytes(), 80u);
    EXPECT_EQ(h.model.live_count(), 2u);
    // 100 + 50 + 7 = 157 before the first free; later 50 + 7 + 30 = 87.
    EXPECT_EQ(h.model.peak().bytes, 157u);
    EXPECT_EQ(h.model.peak().ticks, 30u);
    EXPECT_EQ(h.model.allocations(), 4u);
    EXPECT_EQ(h.model.frees(), 2u);
    EXPECT_EQ(h.model.unknown_frees(), 0u);
}

TEST(MemoryModel, FreesAreRewrittenWithSizeSiteAndLifetime) {
    ModelHarness h;
    std::vector<Event> events{alloc(1000, 0x10, 64, &line_a), release(1000 + 300, 0x10)};
    h.feed(0, events);
    const Event& freed = events[1];
    EXPECT_EQ(memory_bytes(freed), 64u);
    EXPECT_EQ(freed.location(), &line_a);
    EXPECT_EQ(freed.payload, 300u); // lifetime in ticks
    EXPECT_NE(freed.flags & memory_flags::known, 0);
    EXPECT_EQ(freed.flags & memory_flags::domain_mask, 1);
    h.close(2000);
    // 300 ns lies in [256, 512): bucket 8.
    const auto* a = h.site(&line_a);
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->lifetimes[8], 1u);
    std::uint64_t total = 0;
    for (auto count : a->lifetimes) {
        total += count;
    }
    EXPECT_EQ(total, 1u);
}

TEST(MemoryModel, LifetimeBucketsAreLog2OfNanoseconds) {
    EXPECT_EQ(model::lifetime_bucket(0), 0u);
    EXPECT_EQ(model::lifetime_bucket(1), 0u);
    EXPECT_EQ(model::lifetime_bucket(2), 1u);
    EXPECT_EQ(model::lifetime_bucket(1023), 9u);
    EXPECT_EQ(model::lifetime_bucket(1024), 10u);
    EXPECT_EQ(model::lifetime_bucket(1e30), model::lifetime_buckets - 1);
}

TEST(MemoryModel, UnknownFreesAreFlaggedAndIgnored) {
    ModelHarness h;
    std::vector<Event> events{alloc(10, 0x1000, 100, &line_a), release(20, 0xdead0), release(30, 0xbeef0)};
    h.feed(0, events);
    EXPECT_NE(events[1].flags & memory_flags::unknown, 0);
    EXPECT_EQ(memory_bytes(events[1]), 0u);
    EXPECT_EQ(events[1].id, 0u);
    h.close(100);
    EXPECT_EQ(h.model.unknown_frees(), 2u);
    EXPECT_EQ(h.model.frees(), 0u);
    EXPECT_EQ(h.model.live_bytes(), 100u);
    EXPECT_EQ(h.model.peak().bytes, 100u);
}

TEST(MemoryModel, ReallocIsFreePlusAlloc) {
    ModelHarness h;
    // realloc(0x1000, 300) -> 0x5000, then an in-place realloc to 500.
    std::vector<Event> events{alloc(10, 0x1000, 100, &line_a), release(20, 0x1000), alloc(21, 0x5000, 300, &line_b),
                              release(30, 0x5000), alloc(31, 0x5000, 500, &line_b)};
    h.feed(0, events);
    h.close(100);
    EXPECT_EQ(h.model.live_bytes(), 500u);
    EXPECT_EQ(h.model.live_count(), 1u);
    EXPECT_EQ(h.model.peak().bytes, 500u);
    EXPECT_EQ(h.site(&line_a)->live_bytes(), 0);
    EXPECT_EQ(h.site(&line_b)->alloc_bytes, 800u);
    EXPECT_EQ(h.site(&line_b)->live_bytes(), 500);
    EXPECT_EQ(memory_bytes(events[3]), 300u);
}

TEST(MemoryModel, FreeDrainedBeforeItsAllocationFromAnotherThread) {
    ModelHarness h;
    // Thread 1 freed at t=50 a block thread 0 allocated at t=40; thread 1 is drained first.
    std::vector<Event> first{release(50, 0x7000)};
    h.feed(1, first);
    std::vector<Event> second{alloc(40, 0x7000, 64, &line_a)};
    h.feed(0, second);
    EXPECT_NE(second[0].flags & memory_flags::born_freed, 0);
    h.close(100);
    EXPECT_EQ(h.model.live_bytes(), 0u);
    EXPECT_EQ(h.site(&line_a)->live_count(), 0);
    EXPECT_EQ(h.model.born_freed(), 1u);
}

TEST(MemoryModel, AddressReusedBeforeTheOldFreeWasDrained) {
    ModelHarness h;
    // t=10 thread 0 allocates A at 0x8000; t=20 thread 1 frees it; t=30 thread 0
    // gets 0x8000 again. Thread 0 is drained first.
    std::vector<Event> first{alloc(10, 0x8000, 100, &line_a), alloc(30, 0x8000, 40, &line_b)};
    h.feed(0, first);
    std::vector<Event> second{release(20, 0x8000)};
    h.feed(1, second);
    EXPECT_EQ(second[0].location(), &line_a);
    EXPECT_EQ(memory_bytes(second[0]), 100u);
    h.close(100);
    EXPECT_EQ(h.model.live_bytes(), 40u);
    EXPECT_EQ(h.site(&line_a)->live_bytes(), 0);
    EXPECT_EQ(h.site(&line_b)->live_bytes(), 40);
    EXPECT_EQ(h.model.displaced(), 1u);
}

TEST(MemoryModel, PeakStackComesFromTheThreadsSpans) {
    ModelHarness h;
    std::vector<Event> events{span(EventKind::zone_begin, 1, &zone_z), span(EventKind::py_call, 2, &func_f),
                              alloc(3, 0x100, 1000, &line_a),       span(EventKind::py_return, 4, &func_f),
                              release(5, 0x100),                    alloc(6, 0x200, 10, &line_b),
                              span(EventKind::zone_end, 7, &zone_z)};
    h.feed(0, events);
    h.close(10);
    const model::MemoryPeak peak = h.model.peak();
    EXPECT_EQ(peak.bytes, 1000u);
    ASSERT_EQ(peak.stack.size(), 3u);
    EXPECT_EQ(peak.stack[0], &zone_z);
    EXPECT_EQ(peak.stack[1], &func_f);
    EXPECT_EQ(peak.stack[2], &line_a);
    // Sites carry the innermost native zone.
    EXPECT_EQ(h.site(&line_a)->zone, &zone_z);
    EXPECT_EQ(h.site(&line_b)->zone, &zone_z);
}

TEST(MemoryModel, SteadyGrowthIsALeakAndChurnIsNot) {
    model::MemoryModelOptions options;
    options.snapshot_interval_ns = 100;
    ModelHarness h(options);
    std::vector<Event> events;
    std::uint64_t t = 1;
    std::uint64_t address = 0x10000;
    for (int step = 0; step < 40; ++step) {
        // line_a keeps 1 KiB more per step; line_b allocates and frees 4 KiB.
        events.push_back(alloc(t++, address, 1024, &line_a));
        address += 0x1000;
        events.push_back(alloc(t++, 0x900000, 4096, &line_b));
        events.push_back(release(t++, 0x900000));
        t += 97;
    }
    h.feed(0, events);
    h.close(t);
    const model::SiteGrowth leak = h.model.growth(*h.site(&line_a));
    const model::SiteGrowth churn = h.model.growth(*h.site(&line_b));
    EXPECT_GE(leak.snapshots, 39u);
    EXPECT_TRUE(leak.steady);
    EXPECT_GT(leak.r2, 0.99);
    EXPECT_GT(leak.slope_bytes_per_s, 0);
    EXPECT_FALSE(churn.steady);
    EXPECT_EQ(churn.growth_bytes, 0);
}

TEST(MemoryModel, BuiltOnceThenKeptIsNotALeak) {
    model::MemoryModelOptions options;
    options.snapshot_interval_ns = 100;
    ModelHarness h(options);
    std::vector<Event> events;
    std::uint64_t t = 1;
    for (int step = 0; step < 40; ++step) {
        if (step < 20) {
            events.push_back(alloc(t, 0x10000 + 0x1000 * static_cast<std::uint64_t>(step), 1024, &line_a));
        }
        events.push_back(alloc(t + 1, 0x900000, 8, &line_b));
        events.push_back(release(t + 2, 0x900000));
        t += 100;
    }
    h.feed(0, events);
    h.close(t);
    const model::SiteGrowth built = h.model.growth(*h.site(&line_a));
    EXPECT_FALSE(built.still_growing);
    EXPECT_FALSE(built.steady);
}

TEST(MemoryModel, SnapshotsAreDownsampledPastTheLimit) {
    model::MemoryModelOptions options;
    options.snapshot_interval_ns = 10;
    options.max_snapshots = 16;
    ModelHarness h(options);
    std::vector<Event> events;
    for (std::uint64_t step = 0; step < 100; ++step) {
        events.push_back(alloc(step * 10 + 5, 0x1000 + step * 0x100, 8, &line_a));
    }
    h.feed(0, events);
    h.close(1000);
    EXPECT_LE(h.model.snapshots(), 16u);
    EXPECT_GT(h.model.snapshot_interval_ticks(), 10u);
    EXPECT_EQ(h.site(&line_a)->history.size(), h.model.snapshots());
    // Still a straight line after downsampling: 8 bytes per 10 ticks.
    const model::SiteGrowth growth = h.model.growth(*h.site(&line_a));
    EXPECT_GT(growth.r2, 0.99);
    EXPECT_NEAR(growth.slope_bytes_per_s, 0.8e9, 0.1e9);
}

TEST(AddressMap, InsertFindEraseUnderChurn) {
    model::AddressMap<std::uint64_t> map(16);
    for (std::uint64_t i = 1; i <= 5000; ++i) {
        map.put(i * 16, i);
    }
    EXPECT_EQ(map.size(), 5000u);
    for (std::uint64_t i = 1; i <= 5000; i += 2) {
        EXPECT_TRUE(map.erase(i * 16));
    }
    EXPECT_FALSE(map.erase(16));
    EXPECT_EQ(map.size(), 2500u);
    for (std::uint64_t i = 1; i <= 5000; ++i) {
        const std::uint64_t* value = map.find(i * 16);
        if (i % 2 == 1) {
            EXPECT_EQ(value, nullptr) << i;
        } else {
            ASSERT_NE(value, nullptr) << i;
            EXPECT_EQ(*value, i);
        }
    }
}

} // namespace
} // namespace memory_model_test
