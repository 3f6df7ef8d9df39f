// Export formats on one large synthetic trace: output size and speed of each
// exporter against the Chrome JSON, fed as the drain thread feeds a sink
// (runs of 4096 events of one ring), from open() to the committed file.
// items_per_second is events per second; bytes_per_event the file's size
// divided by the events.
//
//   ./build-bench/pycroscope_sinks_benchmarks --benchmark_filter=BM_Export --benchmark_counters_tabular=true
//
// Stream (PYCROSCOPE_EXPORT_BENCH_EVENTS events, default 30 M): 4 threads
// taking turns in runs of 4096 events; each thread walks a call graph over 40
// Python functions (qualified names and paths as a project has them), each
// calling two fixed Python callees and one of 8 builtins, and a native zone
// 1 call in 50; call depth 2..16, 50-450 ns between events. Events are
// generated on the fly (the generator's time is included), so memory holds
// only what the exporter keeps.

#include <pycroscope/core/event.hpp>
#include <pycroscope/core/session_info.hpp>
#include <pycroscope/core/source_location.hpp>
#include <pycroscope/sinks/export_sink.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
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

constexpr std::size_t batch_size = 4096;
constexpr std::uint32_t thread_count = 4;

std::uint64_t event_count() {
    const char* text = std::getenv("PYCROSCOPE_EXPORT_BENCH_EVENTS");
    return text != nullptr ? std::strtoull(text, nullptr, 10) : 30000000ull;
}

struct Locations {
    std::deque<std::string> text;
    std::vector<SourceLocation> python, c;
    SourceLocation zone{"frame update", "update", "engine/frame.cpp", 88, LocationKind::native_zone};

    Locations() {
        const char* modules[] = {"analysis", "io/readers", "models/linear", "util/strings", "pipeline/stages"};
        const char* verbs[] = {"compute", "normalize", "load", "parse", "transform", "validate", "merge", "emit"};
        for (int i = 0; i < 40; ++i) {
            const std::string module = modules[i % 5];
            const std::string name = std::string(verbs[i % 8]) + "_" + std::to_string(i);
            text.push_back(name);
            const char* n = text.back().c_str();
            text.push_back(module + "." + name);
            const char* q = text.back().c_str();
            text.push_back("/home/user/project/" + module + ".py");
            python.push_back(SourceLocation{n, q, text.back().c_str(), static_cast<std::uint32_t>(10 + 17 * i),
                                            LocationKind::python_function});
        }
        const char* builtins[] = {"len", "isinstance", "append", "join", "get", "sorted", "sum", "min"};
        for (const char* b : builtins) {
            c.push_back(SourceLocation{b, b, "", 0, LocationKind::c_function});
        }
    }
};

// One thread's walk through a call tree: calls while shallow, returns when deep.
class Walker {
public:
    Walker(const Locations& locations, unsigned seed) : locations_(&locations), rng_(seed) {}

    Event next() {
        now_ += 50 + rng_() % 400;
        const std::size_t depth = stack_.size();
        const bool call = depth < 2 || (depth < 16 && rng_() % 100 < 52);
        Event e{};
        e.timestamp = now_;
        if (call) {
            // As in a program: each function calls a few fixed callees (two
            // Python functions, one builtin), so stacks repeat.
            const std::size_t caller = depth == 0 ? 0 : callee_index_.back();
            const unsigned r = rng_() % 50;
            std::size_t index = 0;
            const SourceLocation* l;
            if (r == 0) {
                l = &locations_->zone;
            } else if (r < 12) {
                l = &locations_->c[(caller * 5 + 1) % locations_->c.size()];
            } else {
                index = (caller * 7 + 1 + (r & 1) * 13) % locations_->python.size();
                l = &locations_->python[index];
            }
            e.kind = l->kind == LocationKind::native_zone  ? EventKind::zone_begin
                     : l->kind == LocationKind::c_function ? EventKind::c_call
                                                           : EventKind::py_call;
            e.id = pycroscope::location_id(l);
            stack_.push_back(l);
            callee_index_.push_back(index);
        } else {
            const SourceLocation* l = stack_.back();
            stack_.pop_back();
            callee_index_.pop_back();
            e.kind = l->kind == LocationKind::native_zone  ? EventKind::zone_end
                     : l->kind == LocationKind::c_function ? EventKind::c_return
                                                           : EventKind::py_return;
            e.id = pycroscope::location_id(l);
        }
        return e;
    }
    std::uint64_t now() const noexcept { return now_; }

private:
    const Locations* locations_;
    std::mt19937 rng_;
    std::vector<const SourceLocation*> stack_;
    std::vector<std::size_t> callee_index_;
    std::uint64_t now_ = 0;
};

void export_stream(benchmark::State& state, const char* format) {
    static const Locations locations;
    const std::uint64_t total = event_count();
    const std::string path =
        (std::filesystem::temp_directory_path() / ("pycroscope_export_bench." + std::string(format))).string();
    std::uint64_t bytes = 0;
    for (auto _ : state) {
        pycroscope::SessionInfo info;
        info.process_name = "bench";
        info.pid = 1234;
        info.calibration.ns_per_tick = 1.0;
        auto sink = pycroscope::sinks::make_export_sink(format, path);
        sink->open(info);
        std::vector<Walker> walkers;
        std::vector<pycroscope::ThreadInfo> threads(thread_count);
        for (std::uint32_t t = 0; t < thread_count; ++t) {
            walkers.emplace_back(locations, 17 + t);
            threads[t].index = t + 1;
            threads[t].os_tid = 5000 + t;
            threads[t].name = "worker-" + std::to_string(t + 1);
        }
        std::vector<Event> batch(batch_size);
        std::uint64_t done = 0;
        for (std::uint32_t turn = 0; done < total; turn = (turn + 1) % thread_count) {
            const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(batch_size, total - done));
            for (std::size_t i = 0; i < n; ++i) {
                batch[i] = walkers[turn].next();
            }
            threads[turn].events += n;
            sink->consume(threads[turn], batch.data(), n);
            done += n;
        }
        pycroscope::SessionSummary summary;
        summary.info = info;
        for (const auto& w : walkers) {
            summary.stop_ticks = std::max(summary.stop_ticks, w.now() + 1);
        }
        summary.duration_ns = static_cast<std::int64_t>(summary.stop_ticks);
        summary.threads = threads;
        summary.total_events = total;
        sink->close(summary);
        bytes = std::filesystem::file_size(path);
    }
    std::filesystem::remove(path);
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * total));
    state.counters["events"] = static_cast<double>(total);
    state.counters["file_MB"] = static_cast<double>(bytes) / 1e6;
    state.counters["bytes_per_event"] = static_cast<double>(bytes) / static_cast<double>(total);
}

void BM_Export(benchmark::State& state, const char* format) { export_stream(state, format); }

BENCHMARK_CAPTURE(BM_Export, chrome, "chrome")->Unit(benchmark::kSecond)->Iterations(1);
BENCHMARK_CAPTURE(BM_Export, perfetto, "perfetto")->Unit(benchmark::kSecond)->Iterations(1);
BENCHMARK_CAPTURE(BM_Export, speedscope, "speedscope")->Unit(benchmark::kSecond)->Iterations(1);
BENCHMARK_CAPTURE(BM_Export, pprof, "pprof")->Unit(benchmark::kSecond)->Iterations(1);
BENCHMARK_CAPTURE(BM_Export, callgrind, "callgrind")->Unit(benchmark::kSecond)->Iterations(1);
BENCHMARK_CAPTURE(BM_Export, folded, "folded")->Unit(benchmark::kSecond)->Iterations(1);

} // namespace
