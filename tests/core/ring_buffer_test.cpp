// RingBuffer: single producer, single consumer, three overflow policies.
// Every event carries its sequence number in every field, so a consumer can
// check order, completeness and that no copy was torn.

#include "pycroscope/core/config.hpp"
#include "pycroscope/core/event.hpp"
#include "pycroscope/core/ring_buffer.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

namespace ring_buffer_test {
namespace {

using pycroscope::Event;
using pycroscope::EventKind;
using pycroscope::OverflowPolicy;
using pycroscope::RingBuffer;

Event make_event(std::uint64_t seq) {
    Event e{};
    e.timestamp = seq;
    e.id = ~seq;
    e.payload = seq * 0x9E3779B97F4A7C15ull;
    e.aux = static_cast<std::uint32_t>(seq ^ 0xA5A5A5A5u);
    e.kind = EventKind::counter;
    e.flags = static_cast<std::uint8_t>(seq & 0xff);
    e.aux_high = static_cast<std::uint16_t>((seq >> 8) & 0xffff);
    return e;
}

// True when every field of e was derived from the same sequence number.
::testing::AssertionResult consistent(const Event& e) {
    const std::uint64_t seq = e.timestamp;
    const Event want = make_event(seq);
    if (e.id == want.id && e.payload == want.payload && e.aux == want.aux && e.kind == want.kind &&
        e.flags == want.flags && e.aux_high == want.aux_high) {
        return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "torn event: timestamp " << seq << " id " << e.id << " payload "
                                         << e.payload << " aux " << e.aux;
}

TEST(RingBuffer, CapacityAndPolicyAreReported) {
    RingBuffer ring(8, OverflowPolicy::drop_newest);
    EXPECT_EQ(ring.capacity(), 8u);
    EXPECT_EQ(ring.policy(), OverflowPolicy::drop_newest);
    EXPECT_TRUE(ring.empty());
    EXPECT_EQ(ring.pushed(), 0u);
    EXPECT_EQ(ring.lost(), 0u);
}

TEST(RingBuffer, EffectiveCapacityRoundsUpToPowerOfTwo) {
    pycroscope::Config config;
    const std::pair<std::size_t, std::size_t> cases[] = {
        {2, 2}, {3, 4}, {4, 4}, {5, 8}, {1000, 1024}, {65536, 65536}, {65537, 131072}};
    for (const auto& c : cases) {
        config.buffer_capacity = c.first;
        EXPECT_EQ(config.effective_capacity(), c.second) << "buffer_capacity " << c.first;
    }
}

TEST(RingBuffer, RoundTripsEveryField) {
    RingBuffer ring(4, OverflowPolicy::block);
    Event e = make_event(0x123456789abcdefull);
    e.kind = EventKind::py_resume;
    e.flags = 0xfe;
    e.aux_high = 0xbeef;
    e.aux = 0xfedcba98u;
    ASSERT_TRUE(ring.push(e));
    EXPECT_FALSE(ring.empty());
    EXPECT_EQ(ring.pushed(), 1u);
    Event out[4] = {};
    ASSERT_EQ(ring.pop(out, 4), 1u);
    EXPECT_EQ(out[0].timestamp, e.timestamp);
    EXPECT_EQ(out[0].id, e.id);
    EXPECT_EQ(out[0].payload, e.payload);
    EXPECT_EQ(out[0].aux, e.aux);
    EXPECT_EQ(out[0].kind, e.kind);
    EXPECT_EQ(out[0].flags, e.flags);
    EXPECT_EQ(out[0].aux_high, e.aux_high);
    EXPECT_TRUE(ring.empty());
    EXPECT_EQ(ring.pop(out, 4), 0u);
}

TEST(RingBuffer, PopRespectsMaxAndWrapsAround) {
    RingBuffer ring(4, OverflowPolicy::block);
    std::uint64_t next_in = 0, next_out = 0;
    Event out[4];
    for (int round = 0; round < 10; ++round) {
        for (int i = 0; i < 3; ++i) {
            ASSERT_TRUE(ring.push(make_event(next_in++)));
        }
        ASSERT_EQ(ring.pop(out, 2), 2u);
        ASSERT_EQ(out[0].timestamp, next_out++);
        ASSERT_EQ(out[1].timestamp, next_out++);
        ASSERT_EQ(ring.pop(out, 4), 1u);
        ASSERT_EQ(out[0].timestamp, next_out++);
    }
    EXPECT_EQ(ring.pushed(), 30u);
    EXPECT_EQ(ring.lost(), 0u);
}

// block: a concurrent producer and consumer through a small ring. Everything
// arrives, once, in order, untorn; nothing is counted lost.
TEST(RingBuffer, BlockConcurrentDeliversEverythingInOrder) {
    constexpr std::uint64_t n = 200000;
    RingBuffer ring(64, OverflowPolicy::block);
    std::uint64_t refused = 0;
    std::thread producer([&] {
        for (std::uint64_t i = 0; i < n; ++i) {
            refused += ring.push(make_event(i)) ? 0 : 1;
        }
    });
    std::vector<Event> batch(48);
    std::uint64_t expected = 0;
    bool ordered = true, intact = true;
    std::size_t max_sizes[] = {1, 7, 48, 13};
    std::size_t turn = 0;
    while (expected < n) {
        const std::size_t got = ring.pop(batch.data(), max_sizes[turn++ % 4]);
        for (std::size_t i = 0; i < got; ++i) {
            ordered = ordered && batch[i].timestamp == expected;
            intact = intact && consistent(batch[i]);
            ++expected;
        }
        if (got == 0) {
            std::this_thread::yield();
        }
    }
    producer.join();
    EXPECT_TRUE(ordered);
    EXPECT_TRUE(intact);
    EXPECT_EQ(refused, 0u);
    EXPECT_EQ(expected, n);
    EXPECT_EQ(ring.pushed(), n);
    EXPECT_EQ(ring.dropped(), 0u);
    EXPECT_EQ(ring.overwritten(), 0u);
    EXPECT_TRUE(ring.empty());
}

// block: a full ring holds its producer until the consumer makes room.
TEST(RingBuffer, BlockWaitsForRoomThenContinues) {
    RingBuffer ring(4, OverflowPolicy::block);
    for (std::uint64_t i = 0; i < 4; ++i) {
        ASSERT_TRUE(ring.push(make_event(i)));
    }
    std::atomic<bool> returned{false};
    bool stored = false;
    std::thread producer([&] {
        stored = ring.push(make_event(4));
        returned.store(true);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_FALSE(returned.load()) << "push into a full block ring returned without room";
    Event out[4];
    EXPECT_EQ(ring.pop(out, 1), 1u); // EXPECT: the producer must still be joined
    EXPECT_EQ(out[0].timestamp, 0u);
    producer.join();
    EXPECT_TRUE(stored);
    ASSERT_EQ(ring.pop(out, 4), 4u);
    for (std::uint64_t i = 0; i < 4; ++i) {
        EXPECT_EQ(out[i].timestamp, i + 1);
    }
    EXPECT_EQ(ring.lost(), 0u);
}

// close(): the blocked producer gives up, and the event counts as dropped.
TEST(RingBuffer, CloseReleasesBlockedProducerAndCountsDrop) {
    RingBuffer ring(4, OverflowPolicy::block);
    for (std::uint64_t i = 0; i < 4; ++i) {
        ASSERT_TRUE(ring.push(make_event(i)));
    }
    std::atomic<bool> returned{false};
    bool stored = true;
    std::thread producer([&] {
        stored = ring.push(make_event(4));
        returned.store(true);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_FALSE(returned.load());
    ring.close();
    producer.join();
    EXPECT_FALSE(stored);
    EXPECT_EQ(ring.dropped(), 1u);
    EXPECT_EQ(ring.lost(), 1u);
    EXPECT_EQ(ring.pushed(), 4u);

    // Once closed, a full ring refuses at once instead of waiting.
    EXPECT_FALSE(ring.push(make_event(5)));
    EXPECT_EQ(ring.dropped(), 2u);

    // The stored events are still there for the final drain, in order.
    Event out[8];
    ASSERT_EQ(ring.pop(out, 8), 4u);
    for (std::uint64_t i = 0; i < 4; ++i) {
        EXPECT_EQ(out[i].timestamp, i);
    }
    // With room, a closed ring still stores: only waiting is given up.
    EXPECT_TRUE(ring.push(make_event(6)));
    EXPECT_EQ(ring.dropped(), 2u);
}

// drop_newest with the consumer stopped: the first `capacity` events are
// kept, every later one is refused and counted.
TEST(RingBuffer, DropNewestKeepsOldestAndCountsExactly) {
    constexpr std::uint64_t capacity = 16, n = 100;
    RingBuffer ring(capacity, OverflowPolicy::drop_newest);
    std::uint64_t accepted = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
        const bool ok = ring.push(make_event(i));
        EXPECT_EQ(ok, i < capacity) << "event " << i;
        accepted += ok ? 1 : 0;
    }
    EXPECT_EQ(accepted, capacity);
    EXPECT_EQ(ring.pushed(), capacity);
    EXPECT_EQ(ring.dropped(), n - capacity);
    EXPECT_EQ(ring.overwritten(), 0u);
    EXPECT_EQ(ring.lost(), n - capacity);

    std::vector<Event> out(2 * capacity);
    ASSERT_EQ(ring.pop(out.data(), out.size()), capacity);
    for (std::uint64_t i = 0; i < capacity; ++i) {
        EXPECT_EQ(out[i].timestamp, i);
        EXPECT_TRUE(consistent(out[i]));
    }
    // Room again: the next event is stored, the count does not move.
    EXPECT_TRUE(ring.push(make_event(n)));
    EXPECT_EQ(ring.dropped(), n - capacity);
    ASSERT_EQ(ring.pop(out.data(), out.size()), 1u);
    EXPECT_EQ(out[0].timestamp, n);
}

// push_all under drop_newest: a group that does not fit is dropped whole
// (counted), never stored in part; one that fits is stored in order.
TEST(RingBuffer, PushAllStoresAWholeGroupOrNone) {
    constexpr std::uint64_t capacity = 16;
    RingBuffer ring(capacity, OverflowPolicy::drop_newest);
    std::vector<Event> group;
    for (std::uint64_t i = 0; i < 10; ++i) {
        group.push_back(make_event(i));
    }
    EXPECT_TRUE(ring.push_all(group.data(), group.size()));
    EXPECT_EQ(ring.pushed(), 10u);
    EXPECT_FALSE(ring.push_all(group.data(), group.size())); // 6 free, 10 wanted
    EXPECT_EQ(ring.pushed(), 10u);
    EXPECT_EQ(ring.dropped(), 10u);
    EXPECT_TRUE(ring.push_all(group.data(), 6)); // exactly fills the ring
    EXPECT_EQ(ring.pushed(), capacity);
    EXPECT_TRUE(ring.push_all(group.data(), 0));

    std::vector<Event> out(2 * capacity);
    ASSERT_EQ(ring.pop(out.data(), out.size()), capacity);
    for (std::uint64_t i = 0; i < capacity; ++i) {
        EXPECT_EQ(out[i].timestamp, i < 10 ? i : i - 10);
        EXPECT_TRUE(consistent(out[i]));
    }
    EXPECT_TRUE(ring.push_all(group.data(), group.size())); // room again
    EXPECT_EQ(ring.dropped(), 10u);
}

// push_all under block waits for room for the whole group; a group larger
// than the ring goes through one event at a time. Nothing is lost.
TEST(RingBuffer, PushAllBlocksUntilTheGroupFits) {
    constexpr std::uint64_t capacity = 16, groups = 2000;
    RingBuffer ring(capacity, OverflowPolicy::block);
    std::atomic<bool> done{false};
    std::vector<Event> received;
    std::thread consumer([&] {
        std::vector<Event> out(8);
        for (;;) {
            const bool finished = done.load(std::memory_order_acquire);
            const std::size_t n = ring.pop(out.data(), out.size());
            received.insert(received.end(), out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n));
            if (n == 0 && finished) {
                break;
            }
        }
    });
    std::uint64_t seq = 0;
    for (std::uint64_t g = 0; g < groups; ++g) {
        const std::size_t size = g % 50 == 0 ? capacity + 5 : 1 + g % 13;
        std::vector<Event> group;
        for (std::size_t i = 0; i < size; ++i) {
            group.push_back(make_event(seq++));
        }
        EXPECT_TRUE(ring.push_all(group.data(), group.size()));
    }
    done.store(true, std::memory_order_release);
    consumer.join();
    ASSERT_EQ(received.size(), seq);
    for (std::uint64_t i = 0; i < seq; ++i) {
        ASSERT_EQ(received[i].timestamp, i);
        ASSERT_TRUE(consistent(received[i]));
    }
    EXPECT_EQ(ring.lost(), 0u);
}

// drop_newest with a concurrent consumer: what push() accepted is exactly
// what arrives, in order; what it refused is exactly dropped().
TEST(RingBuffer, DropNewestConcurrentAccountsForEveryEvent) {
    constexpr std::uint64_t n = 200000;
    RingBuffer ring(32, OverflowPolicy::drop_newest);
    std::atomic<bool> done{false};
    std::uint64_t accepted = 0;
    std::thread producer([&] {
        for (std::uint64_t i = 0; i < n; ++i) {
            accepted += ring.push(make_event(i)) ? 1 : 0;
        }
        done.store(true, std::memory_order_release);
    });
    std::vector<Event> batch(32);
    std::uint64_t delivered = 0;
    std::uint64_t last = 0;
    bool increasing = true, intact = true;
    for (;;) {
        const bool finished = done.load(std::memory_order_acquire);
        const std::size_t got = ring.pop(batch.data(), batch.size());
        for (std::size_t i = 0; i < got; ++i) {
            increasing = increasing && (delivered == 0 || batch[i].timestamp > last);
            intact = intact && consistent(batch[i]);
            last = batch[i].timestamp;
            ++delivered;
        }
        if (finished && got == 0) {
            break;
        }
    }
    producer.join();
    EXPECT_TRUE(increasing);
    EXPECT_TRUE(intact);
    EXPECT_EQ(delivered, accepted);
    EXPECT_EQ(ring.pushed(), accepted);
    EXPECT_EQ(delivered + ring.dropped(), n);
    EXPECT_EQ(ring.overwritten(), 0u);
}

// overwrite_oldest with the consumer idle: the reader skips what was
// overwritten and gets exactly the newest `capacity` events, in order.
TEST(RingBuffer, OverwriteOldestIdleConsumerGetsNewest) {
    constexpr std::uint64_t capacity = 16, n = 1000;
    RingBuffer ring(capacity, OverflowPolicy::overwrite_oldest);
    for (std::uint64_t i = 0; i < n; ++i) {
        ASSERT_TRUE(ring.push(make_event(i)));
    }
    EXPECT_EQ(ring.pushed(), n);
    EXPECT_EQ(ring.dropped(), 0u);
    EXPECT_EQ(ring.overwritten(), 0u) << "overwrites are counted by the reader";

    std::vector<Event> out(4 * capacity);
    ASSERT_EQ(ring.pop(out.data(), out.size()), capacity);
    for (std::uint64_t i = 0; i < capacity; ++i) {
        EXPECT_EQ(out[i].timestamp, n - capacity + i);
        EXPECT_TRUE(consistent(out[i]));
    }
    EXPECT_EQ(ring.overwritten(), n - capacity);
    EXPECT_EQ(ring.lost(), n - capacity);
    EXPECT_TRUE(ring.empty());
    EXPECT_EQ(ring.pop(out.data(), out.size()), 0u);
}

// Same, read in chunks smaller than the ring: still the newest `capacity`.
TEST(RingBuffer, OverwriteOldestIdleConsumerChunkedPop) {
    constexpr std::uint64_t capacity = 16, n = 1000;
    RingBuffer ring(capacity, OverflowPolicy::overwrite_oldest);
    for (std::uint64_t i = 0; i < n; ++i) {
        ring.push(make_event(i));
    }
    std::vector<Event> got;
    Event out[5];
    for (std::size_t k; (k = ring.pop(out, 5)) != 0;) {
        got.insert(got.end(), out, out + k);
    }
    ASSERT_EQ(got.size(), capacity);
    for (std::uint64_t i = 0; i < capacity; ++i) {
        EXPECT_EQ(got[i].timestamp, n - capacity + i);
    }
    EXPECT_EQ(got.size() + ring.overwritten(), n);
}

// Exactly full is not an overwrite.
TEST(RingBuffer, OverwriteOldestExactlyFullLosesNothing) {
    constexpr std::uint64_t capacity = 8;
    RingBuffer ring(capacity, OverflowPolicy::overwrite_oldest);
    for (std::uint64_t i = 0; i < capacity; ++i) {
        ring.push(make_event(i));
    }
    Event out[capacity];
    ASSERT_EQ(ring.pop(out, capacity), capacity);
    for (std::uint64_t i = 0; i < capacity; ++i) {
        EXPECT_EQ(out[i].timestamp, i);
    }
    EXPECT_EQ(ring.overwritten(), 0u);
    // One more than capacity since the last read: exactly one overwritten.
    for (std::uint64_t i = capacity; i < 2 * capacity + 1; ++i) {
        ring.push(make_event(i));
    }
    ASSERT_EQ(ring.pop(out, capacity), capacity);
    EXPECT_EQ(out[0].timestamp, capacity + 1);
    EXPECT_EQ(out[capacity - 1].timestamp, 2 * capacity);
    EXPECT_EQ(ring.overwritten(), 1u);
}

// overwrite_oldest with a concurrent consumer: the reader may lose events to
// the writer but never delivers a torn or repeated one, and every event is
// either delivered or counted overwritten.
TEST(RingBuffer, OverwriteOldestConcurrentNeverTornAndAccountsExactly) {
    constexpr std::uint64_t n = 300000;
    RingBuffer ring(16, OverflowPolicy::overwrite_oldest);
    std::atomic<bool> go{false}, done{false};
    std::thread producer([&] {
        while (!go.load(std::memory_order_acquire)) {
            std::this_thread::yield();
        }
        for (std::uint64_t i = 0; i < n; ++i) {
            ring.push(make_event(i));
            // Bursts and pauses of varying length: the reader sees both a
            // ring it can read intact and one lapped under its feet.
            if ((i & 31) == 0) {
                for (std::uint64_t spin = 0; spin < ((i >> 5) & 63); ++spin) {
                    pycroscope::detail::cpu_relax();
                }
            }
        }
        done.store(true, std::memory_order_release);
    });
    std::vector<Event> batch(16);
    std::uint64_t delivered = 0, last = 0;
    bool increasing = true, intact = true;
    const std::size_t max_sizes[] = {16, 3, 9, 1};
    std::size_t turn = 0;
    go.store(true, std::memory_order_release);
    for (;;) {
        const bool finished = done.load(std::memory_order_acquire);
        const std::size_t got = ring.pop(batch.data(), max_sizes[turn++ % 4]);
        for (std::size_t i = 0; i < got; ++i) {
            increasing = increasing && (delivered == 0 || batch[i].timestamp > last);
            intact = intact && consistent(batch[i]);
            last = batch[i].timestamp;
            ++delivered;
        }
        if (finished && ring.empty()) {
            break;
        }
    }
    producer.join();
    EXPECT_TRUE(increasing);
    EXPECT_TRUE(intact);
    EXPECT_EQ(ring.pushed(), n);
    EXPECT_EQ(ring.dropped(), 0u);
    EXPECT_EQ(delivered + ring.overwritten(), n);
    EXPECT_GT(delivered, 0u);
    // The newest event can never be overwritten: it is always delivered last.
    EXPECT_EQ(last, n - 1);
}

} // namespace
} // namespace ring_buffer_test
