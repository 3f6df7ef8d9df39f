// Write and read rates of the binary capture, against the Chrome trace sink on
// the same streams. items_per_second is events per second; bytes_per_event is
// the capture's size over its events.
//
//   BM_CaptureWrite/<stream>   CaptureSink::consume() as the drain calls it
//                              (runs of up to 4096 events per thread, threads
//                              in turn), chunks written to a file in the temp
//                              directory.
//   BM_CaptureRead/<stream>    CaptureReader over the same capture held in
//                              memory: every batch decoded.
//   BM_ChromeTrace/<stream>    ChromeTraceSink::consume() on the same stream.
//
// Streams: zones (the drain benchmark's: zones nested 4-8 deep over 50
// locations, 5% counters) and python (calls, returns and generator resumes
// over 400 functions with a few children each, lines, allocations and frees,
// C calls with the calling line).

#include <pycroscope/capture/capture_reader.hpp>
#include <pycroscope/capture/capture_sink.hpp>
#include <pycroscope/sinks/chrome_trace_sink.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace {

using pycroscope::Event;
using pycroscope::EventKind;
using pycroscope::LocationKind;
using pycroscope::SourceLocation;

constexpr std::size_t batch_size = 4096;
constexpr int thread_count = 4;
constexpr std::size_t events_per_thread = 1u << 18;

std::string output_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("pycroscope_capture_bench_" + name)).string();
}

class Stream {
public:
    explicit Stream(bool python) {
        info.process_name = "capture-bench";
        info.pid = 1;
        info.start_ticks = 1000;
        info.calibration.ns_per_tick = 0.4;
        info.buffer_capacity = 1u << 16;
        for (int i = 0; i < 400; ++i) {
            add_location("module.function_" + std::to_string(i),
                         python ? LocationKind::python_function : LocationKind::native_zone);
        }
        for (int i = 0; i < 20; ++i) {
            add_location("builtin_" + std::to_string(i), LocationKind::c_function);
        }
        add_location("counter", LocationKind::counter);
        for (int t = 0; t < thread_count; ++t) {
            threads.push_back(python ? generate_python(t) : generate_zones(t));
            total_events += threads.back().events.size();
        }
        summary.info = info;
        summary.stop_ticks = ~std::uint64_t{0} >> 8;
        for (const auto& t : threads) {
            summary.threads.push_back(t.info);
        }
    }

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
    void add_location(std::string name, LocationKind kind) {
        names_.push_back(std::move(name));
        locations_.push_back(SourceLocation{names_.back().c_str(), "function", "module.py", 10, kind});
    }
    std::uint64_t loc(std::size_t i) const { return pycroscope::location_id(&locations_[i]); }

    Thread start_thread(int t) {
        Thread thread;
        thread.info.index = static_cast<std::uint32_t>(t + 1);
        thread.info.os_tid = 1000 + static_cast<std::uint64_t>(t);
        thread.info.name = "worker-" + std::to_string(t + 1);
        thread.events.reserve(events_per_thread + 64);
        return thread;
    }

    Thread generate_zones(int t) {
        Thread thread = start_thread(t);
        std::mt19937_64 rng(0x9e3779b97f4a7c15ull + static_cast<std::uint64_t>(t));
        std::vector<std::size_t> stack;
        std::uint64_t ts = 1000;
        auto& out = thread.events;
        while (out.size() < events_per_thread) {
            ts += 5 + rng() % 200;
            const auto roll = rng() % 100;
            if (roll < 5) {
                out.push_back(Event{ts, loc(420), pycroscope::double_bits(static_cast<double>(rng() % 100000) / 8.0),
                                    0, EventKind::counter, 0, 0});
            } else if (stack.size() < 4 || (stack.size() < 8 && roll < 55)) {
                const std::size_t parent = stack.empty() ? static_cast<std::size_t>(t) : stack.back();
                const std::size_t l = (parent * 7 + stack.size() * 3 + rng() % 3) % 50;
                stack.push_back(l);
                out.push_back(Event{ts, loc(l), 0, 0, EventKind::zone_begin, 0, 0});
            } else {
                out.push_back(Event{ts, loc(stack.back()), 0, 0, EventKind::zone_end, 0, 0});
                stack.pop_back();
            }
        }
        thread.info.events = out.size();
        return thread;
    }

    Thread generate_python(int t) {
        Thread thread = start_thread(t);
        std::mt19937_64 rng(0x51ed270b27a5d3c1ull + static_cast<std::uint64_t>(t));
        std::vector<std::size_t> stack;
        std::vector<std::uint64_t> live;
        std::uint64_t ts = 1000;
        std::uint64_t line = 10;
        auto& out = thread.events;
        while (out.size() < events_per_thread) {
            ts += 20 + rng() % 400;
            const auto roll = rng() % 100;
            if (roll < 8) {
                const std::uint64_t address = 0x7f1200000000ull + (rng() % 65536) * 32;
                Event e{ts, 0, address, 0, EventKind::mem_alloc, 1, 0};
                pycroscope::set_memory_bytes(e, 32 + 16 * (rng() % 4));
                out.push_back(e);
                live.push_back(address);
            } else if (roll < 14 && !live.empty()) {
                out.push_back(Event{ts, 0, live.back(), 0, EventKind::mem_free, 1, 0});
                live.pop_back();
            } else if (roll < 20 && !stack.empty()) {
                line += rng() % 3;
                out.push_back(Event{ts, loc(stack.back()), line, 0, EventKind::py_line, 0, 0});
            } else if (stack.size() < 3 || (stack.size() < 30 && roll < 60)) {
                const std::size_t parent = stack.empty() ? static_cast<std::size_t>(t) : stack.back();
                const bool builtin = parent < 400 && rng() % 5 == 0;
                const std::size_t l = builtin ? 400 + (parent + rng() % 2) % 20 : (parent * 13 + rng() % 4) % 400;
                stack.push_back(l);
                out.push_back(Event{ts, loc(l), builtin ? line : 0, 0,
                                    builtin ? EventKind::c_call : (rng() % 10 == 0 ? EventKind::py_resume : EventKind::py_call),
                                    0, 0});
            } else if (!stack.empty()) {
                const std::size_t l = stack.back();
                stack.pop_back();
                out.push_back(Event{ts, loc(l), 0, 0, l >= 400 ? EventKind::c_return : EventKind::py_return, 0, 0});
            }
        }
        thread.info.events = out.size();
        return thread;
    }

    std::deque<std::string> names_;
    std::deque<SourceLocation> locations_;
};

const Stream& stream(bool python) {
    static const Stream zones(false);
    static const Stream py(true);
    return python ? py : zones;
}

void BM_CaptureWrite(benchmark::State& state) {
    const Stream& s = stream(state.range(0) != 0);
    const std::string path = output_path("write.pycro");
    std::size_t passes = 0;
    std::uint64_t bytes = 0;
    for (auto _ : state) {
        pycroscope::capture::CaptureSink sink(path);
        sink.open(s.info);
        s.feed(sink);
        sink.close(s.summary);
        bytes = sink.bytes_written();
        ++passes;
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(passes * s.total_events));
    state.counters["bytes_per_event"] = static_cast<double>(bytes) / static_cast<double>(s.total_events);
    std::remove(path.c_str());
}

void BM_CaptureRead(benchmark::State& state) {
    const Stream& s = stream(state.range(0) != 0);
    const std::string path = output_path("read.pycro");
    {
        pycroscope::capture::CaptureSink sink(path);
        sink.open(s.info);
        s.feed(sink);
        sink.close(s.summary);
    }
    std::ifstream in(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::remove(path.c_str());
    std::size_t passes = 0;
    for (auto _ : state) {
        pycroscope::capture::CaptureReader reader("bench", bytes.data(), bytes.size());
        pycroscope::capture::CaptureBatch batch;
        std::uint64_t events = 0;
        while (reader.next(batch)) {
            events += batch.count;
            benchmark::DoNotOptimize(batch.events[batch.count - 1].timestamp);
        }
        if (events != s.total_events) {
            state.SkipWithError("the capture did not read back whole");
            break;
        }
        ++passes;
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(passes * s.total_events));
}

void BM_ChromeTrace(benchmark::State& state) {
    const Stream& s = stream(state.range(0) != 0);
    const std::string path = output_path("trace.json");
    std::size_t passes = 0;
    for (auto _ : state) {
        pycroscope::sinks::ChromeTraceSink sink(path);
        sink.open(s.info);
        s.feed(sink);
        sink.close(s.summary);
        ++passes;
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(passes * s.total_events));
    std::remove(path.c_str());
}

} // namespace

BENCHMARK(BM_CaptureWrite)->ArgName("python")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CaptureRead)->ArgName("python")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ChromeTrace)->ArgName("python")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);
