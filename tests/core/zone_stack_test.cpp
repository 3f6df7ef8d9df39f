// The live zone stack a sampler reads: exact entries under nesting, overflow
// counted, balance across sessions, a racing reader (run under TSan in CI),
// and no stack at all while nothing reads it.

#include <pycroscope/core/session.hpp>
#include <pycroscope/core/zone.hpp>
#include <pycroscope/core/zone_stack.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace zone_stack_test {
namespace {

using pycroscope::SourceLocation;
using pycroscope::ZoneStack;

constexpr SourceLocation outer_site{"outer", "f", "zone_stack_test.cpp", 1, pycroscope::LocationKind::native_zone};
constexpr SourceLocation middle_site{"middle", "f", "zone_stack_test.cpp", 2, pycroscope::LocationKind::native_zone};
constexpr SourceLocation inner_site{"inner", "f", "zone_stack_test.cpp", 3, pycroscope::LocationKind::native_zone};
constexpr SourceLocation deep_site{"deep", "f", "zone_stack_test.cpp", 4, pycroscope::LocationKind::native_zone};

ZoneStack& own_stack() { return pycroscope::detail::tls_slot.buffer->zones; }

std::vector<ZoneStack::Entry> read_own() {
    std::vector<ZoneStack::Entry> entries(ZoneStack::capacity);
    entries.resize(own_stack().read(entries.data(), entries.size()));
    return entries;
}

// Each level in its own (not inlined) frame: deeper zones sit at lower addresses.
__attribute__((noinline)) void innermost(std::vector<ZoneStack::Entry>& seen) {
    pycroscope::Zone zone(&inner_site);
    seen = read_own();
}
__attribute__((noinline)) void middle(std::vector<ZoneStack::Entry>& seen) {
    pycroscope::Zone zone(&middle_site);
    innermost(seen);
    EXPECT_EQ(own_stack().depth(), 2u);
}
__attribute__((noinline)) void outer(std::vector<ZoneStack::Entry>& seen) {
    pycroscope::Zone zone(&outer_site);
    middle(seen);
    EXPECT_EQ(own_stack().depth(), 1u);
}

__attribute__((noinline)) void nest(int levels, std::uint32_t& depth_at_bottom, std::size_t& read_at_bottom) {
    pycroscope::Zone zone(&deep_site);
    if (levels > 1) {
        nest(levels - 1, depth_at_bottom, read_at_bottom);
    } else {
        depth_at_bottom = own_stack().depth();
        read_at_bottom = read_own().size();
    }
}

TEST(ZoneStack, ExactEntriesUnderNesting) {
    pycroscope::ZoneStackReader reader;
    pycroscope::Session<pycroscope::NativeZones> session;
    session.start();
    { pycroscope::Zone warm(&deep_site); } // attach this thread
    ASSERT_EQ(own_stack().depth(), 0u);
    std::vector<ZoneStack::Entry> seen;
    outer(seen);
    EXPECT_EQ(own_stack().depth(), 0u);
    ASSERT_EQ(seen.size(), 3u);
    EXPECT_EQ(seen[0].location, &outer_site);
    EXPECT_EQ(seen[1].location, &middle_site);
    EXPECT_EQ(seen[2].location, &inner_site);
    // C-stack positions, untagged, outermost at the highest address.
    for (const auto& entry : seen) {
        EXPECT_EQ(entry.position & ZoneStack::python_frame_tag, 0u);
    }
    EXPECT_GT(seen[0].position, seen[1].position);
    EXPECT_GT(seen[1].position, seen[2].position);
    EXPECT_EQ(own_stack().overflowed(), 0u);
    session.stop();
}

TEST(ZoneStack, OverflowIsCountedAndStaysBalanced) {
    pycroscope::ZoneStackReader reader;
    pycroscope::Session<pycroscope::NativeZones> session;
    session.start();
    { pycroscope::Zone warm(&deep_site); }
    std::uint32_t depth = 0;
    std::size_t read = 0;
    nest(static_cast<int>(ZoneStack::capacity) + 6, depth, read);
    EXPECT_EQ(depth, ZoneStack::capacity + 6);
    EXPECT_EQ(read, ZoneStack::capacity);
    EXPECT_EQ(own_stack().overflowed(), 6u);
    EXPECT_EQ(own_stack().depth(), 0u);
    // Still usable after the overflow.
    std::vector<ZoneStack::Entry> seen;
    outer(seen);
    ASSERT_EQ(seen.size(), 3u);
    EXPECT_EQ(seen[2].location, &inner_site);
    session.stop();
}

TEST(ZoneStack, OnlyRecordedZonesArePushed) {
    pycroscope::ZoneStackReader reader;
    {
        pycroscope::Zone before(&outer_site); // no session: records nothing, pushes nothing
        pycroscope::Session<pycroscope::NativeZones> session;
        session.start();
        { pycroscope::Zone warm(&deep_site); }
        EXPECT_EQ(own_stack().depth(), 0u);
        {
            pycroscope::Zone inside(&middle_site);
            EXPECT_EQ(own_stack().depth(), 1u);
        }
        EXPECT_EQ(own_stack().depth(), 0u);
        session.stop();
    } // `before` ends after the session: no pop of a stack it never pushed
    // A session without native zones leaves the stack alone.
    pycroscope::Session<> quiet;
    quiet.start();
    pycroscope::Zone zone(&outer_site);
    EXPECT_FALSE(zone.recording());
    quiet.stop();
}

TEST(ZoneStack, ExplicitPythonFramePositionIsKept) {
    pycroscope::ZoneStackReader reader;
    pycroscope::Session<pycroscope::NativeZones> session;
    session.start();
    const std::uintptr_t anchor = 0x1000 | ZoneStack::python_frame_tag;
    const std::uint64_t epoch = pycroscope::begin_zone(&outer_site, anchor);
    ASSERT_NE(epoch, 0u);
    const auto seen = read_own();
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].position, anchor);
    pycroscope::end_zone(&outer_site, epoch);
    EXPECT_EQ(own_stack().depth(), 0u);
    session.stop();
}

// Without a reader zones are recorded but never pushed; a reader that comes
// while a zone is open sees only the zones begun after it, and the earlier
// zone's end pops nothing of theirs.
TEST(ZoneStack, KeptOnlyWhileAReaderLives) {
    pycroscope::Session<pycroscope::NativeZones> session;
    session.start();
    {
        pycroscope::Zone unread(&outer_site);
        EXPECT_TRUE(unread.recording());
        EXPECT_FALSE(pycroscope::zone_stacks_kept());
        EXPECT_EQ(own_stack().depth(), 0u);
        pycroscope::ZoneStackReader reader;
        EXPECT_TRUE(pycroscope::zone_stacks_kept());
        {
            pycroscope::Zone read(&middle_site);
            const auto seen = read_own();
            ASSERT_EQ(seen.size(), 1u);
            EXPECT_EQ(seen[0].location, &middle_site);
        }
        EXPECT_EQ(own_stack().depth(), 0u);
    } // `unread` ends after the reader went: pops nothing
    EXPECT_EQ(own_stack().depth(), 0u);
    {
        pycroscope::ZoneStackReader first;
        pycroscope::ZoneStackReader second;
        pycroscope::Zone zone(&inner_site);
        EXPECT_EQ(own_stack().depth(), 1u);
    }
    EXPECT_FALSE(pycroscope::zone_stacks_kept());
    const pycroscope::SessionSummary summary = session.stop();
    EXPECT_EQ(summary.total_events, 6u); // three zones, begin and end each: all recorded
}

// A reader on another thread sees only locations that were pushed and never
// more entries than capacity, while the owner pushes and pops at full speed.
TEST(ZoneStack, RacyReaderIsMemorySafe) {
    pycroscope::ZoneStackReader reader;
    pycroscope::Session<pycroscope::NativeZones> session;
    session.start();
    std::atomic<ZoneStack*> stack{nullptr};
    std::atomic<bool> done{false};
    std::atomic<bool> reader_done{false};
    std::thread owner([&] {
        { pycroscope::Zone warm(&deep_site); }
        stack.store(&own_stack(), std::memory_order_release);
        for (int i = 0; i < 20000; ++i) {
            std::vector<ZoneStack::Entry> ignored;
            outer(ignored);
        }
        done.store(true, std::memory_order_release);
        // The buffer goes away once this thread exits: outlive the reader.
        while (!reader_done.load(std::memory_order_acquire)) {
            std::this_thread::yield();
        }
    });
    ZoneStack* target = nullptr;
    while ((target = stack.load(std::memory_order_acquire)) == nullptr) {
        std::this_thread::yield();
    }
    std::uint64_t reads = 0;
    std::uint64_t nonempty = 0;
    std::vector<ZoneStack::Entry> entries(ZoneStack::capacity);
    bool valid = true;
    while (!done.load(std::memory_order_acquire) || reads < 1000) {
        const std::size_t n = target->read(entries.data(), entries.size());
        valid = valid && n <= 3;
        for (std::size_t i = 0; i < n; ++i) {
            const SourceLocation* l = entries[i].location;
            valid = valid && (l == &outer_site || l == &middle_site || l == &inner_site || l == &deep_site);
        }
        nonempty += n != 0;
        ++reads;
    }
    reader_done.store(true, std::memory_order_release);
    owner.join();
    EXPECT_TRUE(valid);
    EXPECT_GT(reads, 0u);
    (void)nonempty; // how many reads overlapped a zone depends on scheduling
    session.stop();
}

} // namespace
} // namespace zone_stack_test
