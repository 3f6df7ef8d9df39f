// Drain throughput of the built-in sinks: how many events per second each
// consume() turns into output, fed the way the drain thread feeds it (runs of
// up to 4096 events of one thread, threads in turn). items_per_second is
// events per second.
//
//   BM_Drain_*    a pre-generated stream: 4 threads, zones nested 4 to 8 deep
//                 over 50 source locations, about 5% counter samples.
//   BM_Session_*  end to end: start a Session<NativeZones> with the sink,
//                 record zones and counters on this thread, stop (drain,
//                 write, fsync, rename). Real time.
//
// Output goes to files under the system temp directory, removed at the end.

#include <pycroscope/core/session.hpp>
#include <pycroscope/core/zone.hpp>
#include <pycroscope/sinks/chrome_trace_sink.hpp>
#include <pycroscope/sinks/folded_stack_sink.hpp>
#include <pycroscope/sinks/json_summary_sink.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

using pycroscope::Event;
using pycroscope::EventKind;
using pycroscope::LocationKind;
using pycroscope::SourceLocation;

constexpr std::size_t batch_size = 4096; // as SessionCore's drain thread
constexpr int thread_count = 4;
constexpr std::size_t events_per_thread = 1u << 18;
constexpr int zone_locations = 50;
constexpr int counter_locations = 3;

std::string output_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("pycroscope_drain_bench_" + name)).string();
}

// A recorded session's worth of events, balanced (every zone that begins ends
// within the stream) so that it can be replayed any number of times.
class Stream {
public:
    Stream() {
        for (int i = 0; i < zone_locations; ++i) {
            names_.push_back("subsystem::function_" + std::to_string(i));
        }
        for (int i = 0; i < counter_locations; ++i) {
            names_.push_back("counter_" + std::to_string(i));
        }
        for (int i = 0; i < zone_locations; ++i) {
            locations_.push_back(SourceLocation{names_[static_cast<std::size_t>(i)].c_str(), "function",
                                                "src/engine.cpp", static_cast<std::uint32_t>(100 + i),
                                                LocationKind::native_zone});
        }
        for (int i = 0; i < counter_locations; ++i) {
            locations_.push_back(SourceLocation{names_[static_cast<std::size_t>(zone_locations + i)].c_str(),
                                                "function", "src/engine.cpp", 10, LocationKind::counter});
        }

        info.process_name = "drain-bench";
        info.pid = 1;
        info.start_ticks = 0;
        info.calibration.ns_per_tick = 1.0;
        info.buffer_capacity = 1u << 16;

        std::uint64_t stop = 0;
        for (int t = 0; t < thread_count; ++t) {
            threads.push_back(generate(t));
            stop = std::max(stop, threads.back().events.back().timestamp);
            total_events += threads.back().events.size();
        }
        summary.info = info;
        summary.stop_ticks = stop + 1;
        summary.duration_ns = static_cast<std::int64_t>(stop + 1);
        summary.total_events = total_events;
        for (const auto& t : threads) {
            summary.threads.push_back(t.info);
        }
    }

    // One pass over every event, in drain order: up to batch_size events of
    // one thread, then the next thread.
    void feed(pycroscope::Sink& sink) const {
        std::size_t offsets[thread_count] = {};
        bool more = true;
        while (more) {
            more = false;
            for (int t = 0; t < thread_count; ++t) {
                const auto& thread = threads[static_cast<std::size_t>(t)];
                std::size_t& at = offsets[t];
                if (at < thread.events.size()) {
                    const std::size_t n = std::min(batch_size, thread.events.size() - at);
                    sink.consume(thread.info, thread.events.data() + at, n);
                    at += n;
                    more = more || at < thread.events.size();
                }
            }
        }
    }

    struct Thread {
        pycroscope::ThreadInfo info;
        std::vector<Event> events;
    };

    pycroscope::SessionInfo info;
    pycroscope::SessionSummary summary;
    std::vector<Thread> threads;
    std::size_t total_events = 0;

private:
    Thread generate(int t) {
        Thread thread;
        thread.info.index = static_cast<std::uint32_t>(t + 1);
        thread.info.name = "worker-" + std::to_string(t + 1);
        std::mt19937_64 rng(0x9e3779b97f4a7c15ull + static_cast<std::uint64_t>(t));
        std::vector<int> stack;
        std::uint64_t ts = 1000;
        auto& out = thread.events;
        out.reserve(events_per_thread + 16);
        auto zone = [&](EventKind kind, int location) {
            out.push_back(Event{ts, pycroscope::location_id(&locations_[static_cast<std::size_t>(location)]), 0, 0,
                                kind, 0, 0});
        };
        while (out.size() < events_per_thread) {
            ts += 5 + rng() % 200;
            const auto depth = static_cast<int>(stack.size());
            const auto roll = static_cast<int>(rng() % 100);
            if (roll < 5) {
                const auto c = static_cast<int>(rng() % counter_locations);
                const double value = static_cast<double>(rng() % 100000) / 8.0;
                out.push_back(Event{ts,
                                    pycroscope::location_id(&locations_[static_cast<std::size_t>(zone_locations + c)]),
                                    pycroscope::double_bits(value), 0, EventKind::counter, 0, 0});
            } else if (depth < 4 || (depth < 8 && roll < 55)) {
                // A small fan-out per parent, as in real call trees.
                const int parent = stack.empty() ? t : stack.back();
                const int location = (parent * 7 + depth * 3 + static_cast<int>(rng() % 3)) % zone_locations;
                stack.push_back(location);
                zone(EventKind::zone_begin, location);
            } else {
                zone(EventKind::zone_end, stack.back());
                stack.pop_back();
            }
        }
        while (!stack.empty()) {
            ts += 5 + rng() % 200;
            zone(EventKind::zone_end, stack.back());
            stack.pop_back();
        }
        thread.info.events = out.size();
        return thread;
    }

    std::vector<std::string> names_;
    std::vector<SourceLocation> locations_; // sized once: addresses stay valid
};

const Stream& stream() {
    static const Stream s;
    return s;
}

// Feeds whole passes of the stream until the benchmark has enough samples.
// A file sink that writes as it goes (Chrome) is committed and reopened,
// untimed, every reopen_every passes, so no file grows past a few hundred MB.
template <class SinkType, class... Args>
void drain_benchmark(benchmark::State& state, std::size_t reopen_every, Args... args) {
    const Stream& s = stream();
    SinkType sink(args...);
    sink.open(s.info);
    std::size_t passes = 0;
    for (auto _ : state) {
        s.feed(sink);
        if (++passes % reopen_every == 0) {
            state.PauseTiming();
            sink.close(s.summary);
            sink.open(s.info);
            state.ResumeTiming();
        }
    }
    sink.close(s.summary);
    state.SetItemsProcessed(static_cast<std::int64_t>(passes * s.total_events));
    state.counters["events_per_pass"] = static_cast<double>(s.total_events);
    std::remove(sink.path().c_str());
}

void BM_Drain_ChromeTrace(benchmark::State& state) {
    drain_benchmark<pycroscope::sinks::ChromeTraceSink>(state, 2, output_path("trace.json"));
}
void BM_Drain_FoldedStack(benchmark::State& state) {
    drain_benchmark<pycroscope::sinks::FoldedStackSink>(state, 1000000, output_path("stacks.folded"));
}
void BM_Drain_JsonSummary(benchmark::State& state) {
    drain_benchmark<pycroscope::sinks::JsonSummarySink>(state, 1000000, output_path("session.json"));
}

BENCHMARK(BM_Drain_ChromeTrace)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Drain_FoldedStack)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Drain_JsonSummary)->Unit(benchmark::kMillisecond);

// --- end to end -----------------------------------------------------------

// 4 zones, 8 events, per call; a counter sample every 4th call.
void record_frame(int i) {
    PYCRO_SCOPE_N("frame");
    {
        PYCRO_SCOPE_N("update");
        {
            PYCRO_SCOPE_N("physics");
        }
    }
    {
        PYCRO_SCOPE_N("render");
    }
    if ((i & 3) == 0) {
        PYCRO_COUNTER("entities", i);
    }
}

class NullSink : public pycroscope::sinks::BaseSinkSt {
public:
    std::string describe() const override { return "null sink"; }

protected:
    void sink_it_(const pycroscope::ThreadInfo&, const Event*, std::size_t) override {}
};

template <class SinkType>
void session_benchmark(benchmark::State& state, const char* file) {
    const int frames = static_cast<int>(state.range(0));
    const std::string path = output_path(file);
    std::uint64_t events = 0;
    for (auto _ : state) {
        pycroscope::Session<pycroscope::NativeZones> session;
        if constexpr (std::is_same<SinkType, NullSink>::value) {
            session.add_sink<NullSink>();
        } else {
            session.add_sink<SinkType>(path);
        }
        session.start();
        for (int i = 0; i < frames; ++i) {
            record_frame(i);
        }
        events += session.stop().total_events;
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(events));
    std::remove(path.c_str());
}

void BM_Session_Null(benchmark::State& state) { session_benchmark<NullSink>(state, ""); }
void BM_Session_ChromeTrace(benchmark::State& state) {
    session_benchmark<pycroscope::sinks::ChromeTraceSink>(state, "e2e_trace.json");
}
void BM_Session_FoldedStack(benchmark::State& state) {
    session_benchmark<pycroscope::sinks::FoldedStackSink>(state, "e2e_stacks.folded");
}
void BM_Session_JsonSummary(benchmark::State& state) {
    session_benchmark<pycroscope::sinks::JsonSummarySink>(state, "e2e_session.json");
}

BENCHMARK(BM_Session_Null)->Arg(250000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Session_ChromeTrace)->Arg(250000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Session_FoldedStack)->Arg(250000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Session_JsonSummary)->Arg(250000)->Unit(benchmark::kMillisecond)->UseRealTime();

} // namespace
