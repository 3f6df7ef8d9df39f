// Cost of one SystemMonitor sample, so the README can state the overhead at
// the default interval: BM_SystemSampleInSession / interval is the share of
// one core the monitor thread uses (e.g. 20 us every 100 ms = 0.02%).
//
//   ./pycroscope_core_benchmarks --benchmark_filter='Proc|System'

#include "pycroscope/system/proc_stats.hpp"
#include "pycroscope/core/session.hpp"
#include "pycroscope/system/system_monitor.hpp"

#include <benchmark/benchmark.h>

namespace {

// The /proc reads alone (stat, statm, io, net/dev), files kept open: four
// pread() calls and the parsing.
void BM_ProcReaderRead(benchmark::State& state) {
    pycroscope::proc::ProcReader reader;
    pycroscope::proc::ProcSample sample;
    for (auto _ : state) {
        reader.read(sample);
        benchmark::DoNotOptimize(sample);
    }
    state.counters["has_io"] = sample.has_io ? 1 : 0;
    state.counters["has_net"] = sample.has_net ? 1 : 0;
}
BENCHMARK(BM_ProcReaderRead);

// For comparison: opening and closing the four files on every sample.
void BM_ProcReaderOpenAndRead(benchmark::State& state) {
    pycroscope::proc::ProcSample sample;
    for (auto _ : state) {
        pycroscope::proc::ProcReader reader;
        reader.read(sample);
        benchmark::DoNotOptimize(sample);
    }
}
BENCHMARK(BM_ProcReaderOpenAndRead);

// A whole sample with no session recording: reads, CPU %, statistics, alerts.
void BM_SystemSampleNoSession(benchmark::State& state) {
    pycroscope::SystemMonitorOptions options;
    options.alerts.push_back(pycroscope::parse_system_alert("rss_mb=100000"));
    pycroscope::SystemMetricsRecorder sampler(options, pycroscope::SessionInfo{});
    for (auto _ : state) {
        sampler.sample();
    }
}
BENCHMARK(BM_SystemSampleNoSession);

// A whole sample recorded into a running session: plus nine counter events
// written to this thread's ring (the drain thread discards them: no sinks).
void BM_SystemSampleInSession(benchmark::State& state) {
    pycroscope::Session<> session;
    session.start();
    pycroscope::SystemMonitorOptions options;
    options.alerts.push_back(pycroscope::parse_system_alert("rss_mb=100000"));
    pycroscope::SystemMetricsRecorder sampler(options, session.core().info());
    sampler.sample(); // attach this thread outside the timed loop
    for (auto _ : state) {
        sampler.sample();
    }
    const pycroscope::SessionSummary summary = session.stop();
    state.counters["events"] = static_cast<double>(summary.total_events);
    state.counters["lost"] = static_cast<double>(summary.total_lost);
}
BENCHMARK(BM_SystemSampleInSession);

} // namespace
