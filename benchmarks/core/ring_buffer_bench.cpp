// Cost of RingBuffer::push, the core of every recorded event.
//
// BM_RingBufferPush: the producer pushes while a consumer thread drains
// concurrently in batches, as the session's drain thread does (so cache
// lines really move between cores). The argument is the overflow policy;
// "lost" reports events the policy dropped or overwrote because the
// consumer fell behind (always 0 under block, where waiting is in the time).
//
// BM_RingBufferPushInlineDrain: push only, single thread; every capacity/2
// pushes the same thread pops everything (outside the timed region), so the
// ring never fills. This is the uncontended floor of push().

#include "pycroscope/core/config.hpp"
#include "pycroscope/core/event.hpp"
#include "pycroscope/core/ring_buffer.hpp"

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace {

using pycroscope::Event;
using pycroscope::EventKind;
using pycroscope::OverflowPolicy;
using pycroscope::RingBuffer;

constexpr std::size_t ring_capacity = std::size_t{1} << 16;

Event make_event(std::uint64_t i) { return Event{i, 0x1234, i, 0, EventKind::zone_begin, 0, 0}; }

void BM_RingBufferPush(benchmark::State& state) {
    const auto policy = static_cast<OverflowPolicy>(state.range(0));
    RingBuffer ring(ring_capacity, policy);
    std::atomic<bool> stop{false};
    std::thread consumer([&] {
        std::vector<Event> batch(4096);
        while (!stop.load(std::memory_order_relaxed)) {
            if (ring.pop(batch.data(), batch.size()) == 0) {
                pycroscope::detail::cpu_relax();
            }
        }
        while (ring.pop(batch.data(), batch.size()) != 0) {
        }
    });
    std::uint64_t i = 0;
    for (auto _ : state) {
        benchmark::DoNotOptimize(ring.push(make_event(i++)));
    }
    stop.store(true);
    consumer.join();
    state.counters["lost"] = static_cast<double>(ring.lost());
    state.SetItemsProcessed(state.iterations());
    state.SetLabel(pycroscope::to_string(policy));
}
BENCHMARK(BM_RingBufferPush)
    ->Arg(static_cast<int>(OverflowPolicy::block))
    ->Arg(static_cast<int>(OverflowPolicy::drop_newest))
    ->Arg(static_cast<int>(OverflowPolicy::overwrite_oldest));

void BM_RingBufferPushInlineDrain(benchmark::State& state) {
    const auto policy = static_cast<OverflowPolicy>(state.range(0));
    RingBuffer ring(ring_capacity, policy);
    std::vector<Event> batch(ring_capacity);
    std::uint64_t i = 0;
    std::size_t since_drain = 0;
    for (auto _ : state) {
        benchmark::DoNotOptimize(ring.push(make_event(i++)));
        if (++since_drain == ring_capacity / 2) {
            state.PauseTiming();
            ring.pop(batch.data(), batch.size());
            since_drain = 0;
            state.ResumeTiming();
        }
    }
    state.counters["lost"] = static_cast<double>(ring.lost());
    state.SetItemsProcessed(state.iterations());
    state.SetLabel(pycroscope::to_string(policy));
}
BENCHMARK(BM_RingBufferPushInlineDrain)
    ->Arg(static_cast<int>(OverflowPolicy::block))
    ->Arg(static_cast<int>(OverflowPolicy::overwrite_oldest));

} // namespace
