// Cost of one native zone (begin + end) against the floor: two bare rdtsc
// reads. BM_ZoneWithSession / BM_TwoRdtsc is the figure the README quotes.
//
// Run all core benchmarks together (ring_buffer_bench.cpp links into the
// same binary), e.g.
//   g++ -std=c++17 -O2 -Iinclude benchmarks/core/*_bench.cpp
//       -lbenchmark -lbenchmark_main -pthread -o core_bench && ./core_bench

#include "pycroscope/core/clock.hpp"
#include "pycroscope/core/session.hpp"
#include "pycroscope/core/zone.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

namespace {

// The reference: what a zone cannot get below (two timestamps).
void BM_TwoRdtsc(benchmark::State& state) {
#if PYCROSCOPE_HAS_RDTSC
    for (auto _ : state) {
        benchmark::DoNotOptimize(__rdtsc());
        benchmark::DoNotOptimize(__rdtsc());
    }
#else
    state.SkipWithError("no rdtsc on this architecture");
#endif
}
BENCHMARK(BM_TwoRdtsc);

// A zone while nothing records: one relaxed load and a branch.
void BM_ZoneNoSession(benchmark::State& state) {
    for (auto _ : state) {
        PYCRO_SCOPE_N("x");
        benchmark::ClobberMemory();
    }
}
BENCHMARK(BM_ZoneNoSession);

// A zone recorded into a running session: two timestamps and two 32-byte
// ring writes. No sinks: the drain thread pops and discards. The policy is
// block, so nothing is lost; "lost" proves it, and any time the
// producer spent waiting for the drain is in the figure. capacity is the
// per-thread capacity in events; 1<<16 is the default.
void zones_with_session(benchmark::State& state, std::size_t capacity) {
    pycroscope::Config config;
    config.buffer_capacity = capacity;
    config.overflow = pycroscope::OverflowPolicy::block;
    pycroscope::Session<pycroscope::NativeZones> session(config);
    session.start();
    { PYCRO_SCOPE_N("warm-up"); } // attach this thread outside the timed loop
    for (auto _ : state) {
        PYCRO_SCOPE_N("x");
        benchmark::ClobberMemory();
    }
    const pycroscope::SessionSummary summary = session.stop();
    state.counters["lost"] = static_cast<double>(summary.total_lost);
    state.counters["events"] = static_cast<double>(summary.total_events);
    state.SetLabel(pycroscope::clock::to_string(summary.info.calibration.source));
    state.SetItemsProcessed(state.iterations());
}

void BM_ZoneWithSession(benchmark::State& state) { zones_with_session(state, static_cast<std::size_t>(state.range(0))); }
BENCHMARK(BM_ZoneWithSession)->Arg(1 << 12)->Arg(1 << 16)->Arg(1 << 20);

// The ratio the README quotes, with both sides measured under the same
// conditions: blocks of 4096 zones alternate with blocks of 4096 rdtsc pairs
// in one loop while a session runs (its drain thread working as in
// BM_ZoneWithSession). On a shared VM the machine's speed drifts between
// separate benchmarks; here a slow moment hits both sides alike, or, when
// it hits one block only, moves the median of the per-block ratios little.
// Counters: zone_ns and rdtsc_pair_ns per operation over the whole run,
// ratio = their quotient, median_block_ratio.
void BM_ZoneAgainstTwoRdtsc(benchmark::State& state) {
#if PYCROSCOPE_HAS_RDTSC
    constexpr int block = 4096;
    pycroscope::Config config;
    config.overflow = pycroscope::OverflowPolicy::block;
    pycroscope::Session<pycroscope::NativeZones> session(config);
    session.start();
    { PYCRO_SCOPE_N("warm-up"); }
    std::vector<double> block_ratios;
    block_ratios.reserve(1 << 16);
    std::chrono::steady_clock::duration zone_time{}, rdtsc_time{};
    for (auto _ : state) {
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < block; ++i) {
            PYCRO_SCOPE_N("x");
            benchmark::ClobberMemory();
        }
        const auto t1 = std::chrono::steady_clock::now();
        for (int i = 0; i < block; ++i) {
            benchmark::DoNotOptimize(__rdtsc());
            benchmark::DoNotOptimize(__rdtsc());
        }
        const auto t2 = std::chrono::steady_clock::now();
        zone_time += t1 - t0;
        rdtsc_time += t2 - t1;
        block_ratios.push_back(std::chrono::duration<double>(t1 - t0).count() /
                               std::chrono::duration<double>(t2 - t1).count());
    }
    const pycroscope::SessionSummary summary = session.stop();
    const double operations = static_cast<double>(state.iterations()) * block;
    std::sort(block_ratios.begin(), block_ratios.end());
    state.counters["zone_ns"] = std::chrono::duration<double, std::nano>(zone_time).count() / operations;
    state.counters["rdtsc_pair_ns"] = std::chrono::duration<double, std::nano>(rdtsc_time).count() / operations;
    state.counters["ratio"] = std::chrono::duration<double>(zone_time).count() /
                              std::chrono::duration<double>(rdtsc_time).count();
    state.counters["median_block_ratio"] = block_ratios.empty() ? 0.0 : block_ratios[block_ratios.size() / 2];
    state.counters["lost"] = static_cast<double>(summary.total_lost);
#else
    state.SkipWithError("no rdtsc on this architecture");
#endif
}
BENCHMARK(BM_ZoneAgainstTwoRdtsc);

// The same zone while a sampler reads the threads' open zones (a
// ZoneStackReader lives): each zone also pushes and pops its ZoneStack entry.
void BM_ZoneWithSessionAndZoneStack(benchmark::State& state) {
    pycroscope::ZoneStackReader reader;
    zones_with_session(state, pycroscope::Config{}.buffer_capacity);
}
BENCHMARK(BM_ZoneWithSessionAndZoneStack);

// The hot-path clock as the session selects it (automatic: TSC when invariant).
void BM_ClockNow(benchmark::State& state) {
    const pycroscope::clock::Calibration calibration = pycroscope::clock::select(pycroscope::ClockSource::automatic);
    for (auto _ : state) {
        benchmark::DoNotOptimize(pycroscope::clock::now());
    }
    state.SetLabel(pycroscope::clock::to_string(calibration.source));
}
BENCHMARK(BM_ClockNow);

// For comparison: the steady_clock fallback.
void BM_ClockNowSteady(benchmark::State& state) {
    pycroscope::clock::select(pycroscope::ClockSource::steady);
    for (auto _ : state) {
        benchmark::DoNotOptimize(pycroscope::clock::now());
    }
    pycroscope::clock::select(pycroscope::ClockSource::automatic);
}
BENCHMARK(BM_ClockNowSteady);

} // namespace
