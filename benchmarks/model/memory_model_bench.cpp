// Drain-side cost of full-mode memory tracking: events per second through the
// memory model (and the memory.folded sink after it), fed as the drain thread
// feeds them (runs of 4096 events of one thread). items_per_second is events
// per second.
//
// The stream imitates an allocation-heavy script: about 400k live blocks at
// 16-byte-aligned addresses spread over 64 MiB (so the model's address map
// does not fit in cache), every step allocating one block at a free address
// and freeing a random live one, at 40 Python lines under a few calls.

#include <pycroscope/model/memory_model.hpp>
#include <pycroscope/sinks/memory_folded_sink.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace {

using pycroscope::Event;
using pycroscope::EventKind;
using pycroscope::LocationKind;
using pycroscope::SourceLocation;

constexpr std::size_t batch_size = 4096; // as SessionCore's drain thread
constexpr std::size_t live_blocks = 400'000;
constexpr std::size_t steps = 1u << 20;
constexpr std::uint64_t arena_base = 0x7f0000000000ull;
constexpr std::uint64_t arena_slots = (64u << 20) / 16;

class MemoryStream {
public:
    MemoryStream() {
        for (int i = 0; i < 40; ++i) {
            lines_.push_back(SourceLocation{"alloc_heavy.py:make_records", "make_records", "alloc_heavy.py",
                                            static_cast<std::uint32_t>(i + 1), LocationKind::python_line});
        }
        function_ = SourceLocation{"make_records", "make_records", "alloc_heavy.py", 1, LocationKind::python_function};
        std::mt19937_64 rng(42);
        std::vector<std::uint64_t> live;
        std::vector<bool> used(arena_slots, false);
        auto fresh_address = [&] {
            for (;;) {
                const std::uint64_t slot = rng() % arena_slots;
                if (!used[slot]) {
                    used[slot] = true;
                    return arena_base + slot * 16;
                }
            }
        };
        Event enter{};
        enter.kind = EventKind::py_call;
        enter.id = pycroscope::location_id(&function_);
        events_.push_back(enter);
        std::uint64_t ticks = 1;
        for (std::size_t i = 0; i < live_blocks + steps; ++i) {
            const std::uint64_t address = fresh_address();
            events_.push_back(alloc(address, 16 + 16 * (rng() % 8), &lines_[rng() % lines_.size()], ticks++));
            live.push_back(address);
            if (i >= live_blocks) {
                const std::size_t victim = rng() % live.size();
                events_.push_back(free(live[victim], ticks++));
                used[(live[victim] - arena_base) / 16] = false;
                live[victim] = live.back();
                live.pop_back();
            }
        }
        Event leave{};
        leave.kind = EventKind::py_return;
        leave.id = pycroscope::location_id(&function_);
        leave.timestamp = ticks;
        events_.push_back(leave);
    }

    const std::vector<Event>& events() const noexcept { return events_; }

private:
    static Event alloc(std::uint64_t address, std::uint64_t bytes, const SourceLocation* line, std::uint64_t ticks) {
        Event e{};
        e.kind = EventKind::mem_alloc;
        e.id = pycroscope::location_id(line);
        e.payload = address;
        e.timestamp = ticks;
        e.flags = 2;
        pycroscope::set_memory_bytes(e, bytes);
        return e;
    }
    static Event free(std::uint64_t address, std::uint64_t ticks) {
        Event e{};
        e.kind = EventKind::mem_free;
        e.payload = address;
        e.timestamp = ticks;
        e.flags = 2;
        return e;
    }

    std::vector<SourceLocation> lines_;
    SourceLocation function_{};
    std::vector<Event> events_;
};

const MemoryStream& stream() {
    static const MemoryStream s;
    return s;
}

pycroscope::SessionInfo session_info() {
    pycroscope::SessionInfo info;
    info.calibration.ns_per_tick = 1.0;
    return info;
}

void BM_MemoryModel(benchmark::State& state) {
    const std::vector<Event>& source = stream().events();
    std::vector<Event> batch(batch_size);
    pycroscope::ThreadInfo thread;
    for (auto _ : state) {
        pycroscope::model::MemoryModel model;
        model.open(session_info());
        for (std::size_t at = 0; at < source.size(); at += batch_size) {
            // As the drain thread, which pops each batch out of a ring (the model rewrites it).
            const std::size_t n = std::min(batch_size, source.size() - at);
            std::copy(source.begin() + static_cast<std::ptrdiff_t>(at),
                      source.begin() + static_cast<std::ptrdiff_t>(at + n), batch.begin());
            model.process(thread, batch.data(), n);
        }
        benchmark::DoNotOptimize(model.live_bytes());
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * source.size()));
}
BENCHMARK(BM_MemoryModel)->Unit(benchmark::kMillisecond);

void BM_MemoryFoldedSink(benchmark::State& state) {
    const std::vector<Event>& source = stream().events();
    const std::string path =
        (std::filesystem::temp_directory_path() / "pycroscope_memory_model_bench.folded").string();
    pycroscope::ThreadInfo thread;
    pycroscope::SessionSummary summary;
    summary.info = session_info();
    for (auto _ : state) {
        pycroscope::sinks::MemoryFoldedSink sink(path);
        sink.open(summary.info);
        for (std::size_t at = 0; at < source.size(); at += batch_size) {
            sink.consume(thread, source.data() + at, std::min(batch_size, source.size() - at));
        }
        state.PauseTiming();
        sink.close(summary);
        state.ResumeTiming();
    }
    std::filesystem::remove(path);
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * source.size()));
}
BENCHMARK(BM_MemoryFoldedSink)->Unit(benchmark::kMillisecond);

} // namespace
