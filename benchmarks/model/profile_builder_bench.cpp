// Drain rate of model::ProfileBuilder: events per second turned into the
// Profile, fed as the drain thread feeds processors (runs of 4096 events of
// one thread, threads in turn). items_per_second is events per second.
//
//   BM_ProfileBuilder_Calls      4 threads of py_call/c_call spans nested 4 to
//                                12 deep over 200 functions, 1 in 8 calls
//                                recursive, with py_line events between
//   BM_ProfileBuilder_Recursion  one thread recursing 50,000 deep and back
//   BM_ProfileBuilder_Finish     close(): turning the state into the Profile

#include <pycroscope/model/profile_builder.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace {

using pycroscope::Event;
using pycroscope::EventKind;
using pycroscope::LocationKind;
using pycroscope::SourceLocation;

constexpr std::size_t batch_size = 4096;

struct Thread {
    pycroscope::ThreadInfo info;
    std::vector<Event> events;
};

class Stream {
public:
    static constexpr int functions = 200;

    explicit Stream(int thread_count, std::size_t events_per_thread) {
        for (int i = 0; i < functions; ++i) {
            names_.push_back("module.function_" + std::to_string(i));
        }
        for (int i = 0; i < functions; ++i) {
            locations_.push_back(SourceLocation{names_[static_cast<std::size_t>(i)].c_str(), "f", "app.py",
                                                static_cast<std::uint32_t>(i * 10),
                                                i % 5 == 4 ? LocationKind::c_function
                                                           : LocationKind::python_function});
        }
        summary.info.calibration.ns_per_tick = 1.0;
        for (int t = 0; t < thread_count; ++t) {
            threads.push_back(generate(t, events_per_thread));
            total += threads.back().events.size();
            summary.threads.push_back(threads.back().info);
        }
    }

    void feed(pycroscope::model::ProfileBuilder& builder) {
        std::vector<std::size_t> at(threads.size(), 0);
        bool more = true;
        while (more) {
            more = false;
            for (std::size_t t = 0; t < threads.size(); ++t) {
                Thread& thread = threads[t];
                if (at[t] < thread.events.size()) {
                    const std::size_t n = std::min(batch_size, thread.events.size() - at[t]);
                    builder.process(thread.info, thread.events.data() + at[t], n);
                    at[t] += n;
                    more = more || at[t] < thread.events.size();
                }
            }
        }
    }

    std::vector<Thread> threads;
    pycroscope::SessionSummary summary;
    std::size_t total = 0;

private:
    Thread generate(int t, std::size_t count) {
        Thread thread;
        thread.info.index = static_cast<std::uint32_t>(t + 1);
        thread.info.name = "thread-" + std::to_string(t + 1);
        std::mt19937_64 rng(42 + static_cast<std::uint64_t>(t));
        std::vector<int> stack;
        std::uint64_t ts = 0;
        auto& out = thread.events;
        const auto push = [&](EventKind kind, int f, std::uint64_t payload = 0) {
            out.push_back(Event{ts, pycroscope::location_id(&locations_[static_cast<std::size_t>(f)]), payload, 0,
                                kind, 0, 0});
        };
        while (out.size() < count) {
            ts += 20 + rng() % 200;
            const auto depth = static_cast<int>(stack.size());
            const auto roll = static_cast<int>(rng() % 100);
            const bool in_c = !stack.empty() && stack.back() % 5 == 4;
            if (!in_c && (depth < 4 || (depth < 12 && roll < 50))) {
                const int parent = stack.empty() ? t : stack.back();
                int f = (parent * 7 + depth * 3 + static_cast<int>(rng() % 4)) % functions;
                if (roll % 8 == 0 && !stack.empty()) {
                    f = stack.back(); // recursion
                }
                stack.push_back(f);
                push(f % 5 == 4 ? EventKind::c_call : EventKind::py_call, f);
            } else if (!in_c && roll < 70 && !stack.empty()) {
                push(EventKind::py_line, stack.back(), static_cast<std::uint64_t>(roll));
            } else if (!stack.empty()) {
                push(stack.back() % 5 == 4 ? EventKind::c_return : EventKind::py_return, stack.back());
                stack.pop_back();
            }
        }
        while (!stack.empty()) {
            ts += 10;
            push(stack.back() % 5 == 4 ? EventKind::c_return : EventKind::py_return, stack.back());
            stack.pop_back();
        }
        return thread;
    }

    std::vector<std::string> names_;
    std::vector<SourceLocation> locations_;
};

void BM_ProfileBuilder_Calls(benchmark::State& state) {
    static Stream stream(4, 1u << 18);
    pycroscope::model::ProfileBuilder builder;
    builder.open(stream.summary.info);
    std::size_t passes = 0;
    for (auto _ : state) {
        stream.feed(builder);
        ++passes;
    }
    builder.close(stream.summary);
    benchmark::DoNotOptimize(builder.profile().total);
    state.SetItemsProcessed(static_cast<std::int64_t>(passes * stream.total));
    state.counters["tree_nodes"] = static_cast<double>(builder.profile().tree.size());
    state.counters["edges"] = static_cast<double>(builder.profile().edges.size());
}
BENCHMARK(BM_ProfileBuilder_Calls)->Unit(benchmark::kMillisecond);

void BM_ProfileBuilder_Recursion(benchmark::State& state) {
    static const SourceLocation fact{"fact", "fact", "app.py", 1, LocationKind::python_function};
    constexpr std::uint64_t depth = 50000;
    std::vector<Event> events;
    for (std::uint64_t i = 0; i < depth; ++i) {
        events.push_back(Event{i, pycroscope::location_id(&fact), 0, 0, EventKind::py_call, 0, 0});
    }
    for (std::uint64_t i = 0; i < depth; ++i) {
        events.push_back(Event{depth + i, pycroscope::location_id(&fact), 0, 0, EventKind::py_return, 0, 0});
    }
    pycroscope::ThreadInfo thread;
    thread.index = 1;
    pycroscope::SessionSummary summary;
    summary.info.calibration.ns_per_tick = 1.0;
    pycroscope::model::ProfileBuilder builder;
    builder.open(summary.info);
    for (auto _ : state) {
        for (std::size_t at = 0; at < events.size(); at += batch_size) {
            builder.process(thread, events.data() + at, std::min(batch_size, events.size() - at));
        }
    }
    builder.close(summary);
    benchmark::DoNotOptimize(builder.profile().total);
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) *
                            static_cast<std::int64_t>(events.size()));
}
BENCHMARK(BM_ProfileBuilder_Recursion)->Unit(benchmark::kMillisecond);

void BM_ProfileBuilder_Finish(benchmark::State& state) {
    static Stream stream(4, 1u << 16);
    pycroscope::model::ProfileBuilder builder;
    for (auto _ : state) {
        state.PauseTiming();
        builder.open(stream.summary.info);
        stream.feed(builder);
        state.ResumeTiming();
        builder.close(stream.summary);
        benchmark::DoNotOptimize(builder.profile().functions.size());
    }
}
BENCHMARK(BM_ProfileBuilder_Finish)->Unit(benchmark::kMillisecond);

} // namespace
