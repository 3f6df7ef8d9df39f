// Drain-side cost of stack samples: decoding the sample/sample_frame events
// and aggregating them, fed as the drain thread feeds a sink (runs of 4096
// events of the sampler's ring). items_per_second is samples per second.
//
//   BM_SampleDecode        SampleDecoder alone
//   BM_SampleProfile       decode + SampleProfile::add (what SampledStackSink
//                          and SampleProfileSink do per batch)
//   BM_SampleSlices        decode + SampleSliceBuilder (the Chrome trace's
//                          slice rebuilding, without writing JSON)
//
// Stream: 8 sampled threads, 20-frame stacks (Python frames and native
// zones interleaved) over 60 locations. Consecutive samples of a thread
// share their outer 12 frames and differ below in one of 16 ways, as a loop
// calling a few functions does; lines vary per sample.

#include <pycroscope/model/sample_decoder.hpp>
#include <pycroscope/model/sample_profile.hpp>
#include <pycroscope/model/sample_slices.hpp>
#include <pycroscope/core/event.hpp>
#include <pycroscope/core/name_table.hpp>

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
constexpr std::size_t depth = 20;
constexpr std::size_t sample_count = 1u << 16;
constexpr int sampled_threads = 8;

struct Stream {
    std::vector<Event> events;
    std::size_t samples = 0;
};

const Stream& stream() {
    static const Stream s = [] {
        std::vector<const SourceLocation*> locations;
        for (int i = 0; i < 60; ++i) {
            const bool python = i % 3 != 0;
            const std::string name = std::string(python ? "module.func_" : "zone_").append(std::to_string(i));
            locations.push_back(pycroscope::names().intern(
                python ? LocationKind::python_function : LocationKind::native_zone, name, name,
                python ? "app/module.py" : "native.cpp", static_cast<std::uint32_t>(10 * i)));
        }
        std::mt19937 random(42);
        Stream out;
        for (std::size_t n = 0; n < sample_count; ++n) {
            const auto thread = static_cast<std::uint64_t>(n % sampled_threads);
            const std::uint64_t ts = 1000 + n * 10;
            const std::uint32_t variant = random() % 16;
            out.events.push_back(Event{ts, 5000 + thread, 0, static_cast<std::uint32_t>(depth), EventKind::sample,
                                       static_cast<std::uint8_t>(random() % 4 == 0 ? 0 : 1), 0});
            for (std::size_t d = 0; d < depth; ++d) {
                const std::size_t which = d < 12 ? (thread * 3 + d) % 60 : (variant * 7 + d * 3) % 60;
                const std::uint64_t line = locations[which]->line + random() % 8;
                out.events.push_back(Event{ts, pycroscope::location_id(locations[which]),
                                           locations[which]->kind == LocationKind::python_function ? line : 0,
                                           static_cast<std::uint32_t>(d), EventKind::sample_frame, 0, 0});
            }
            ++out.samples;
        }
        return out;
    }();
    return s;
}

template <class Consume>
void run(benchmark::State& state, Consume consume) {
    const Stream& s = stream();
    for (auto _ : state) {
        for (std::size_t at = 0; at < s.events.size(); at += batch_size) {
            consume(s.events.data() + at, std::min(batch_size, s.events.size() - at));
        }
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * s.samples));
}

void BM_SampleDecode(benchmark::State& state) {
    pycroscope::model::SampleDecoder decoder;
    std::uint64_t frames = 0;
    run(state, [&](const Event* events, std::size_t count) {
        decoder.feed(events, count, [&](const pycroscope::model::SampleView& sample) { frames += sample.depth; });
    });
    benchmark::DoNotOptimize(frames);
}
BENCHMARK(BM_SampleDecode);

void BM_SampleProfile(benchmark::State& state) {
    // One profile across iterations, like a long session: the tables stay warm.
    pycroscope::model::SampleProfile profile;
    run(state, [&](const Event* events, std::size_t count) { profile.consume(1, events, count); });
    benchmark::DoNotOptimize(profile.samples().all());
}
BENCHMARK(BM_SampleProfile);

void BM_SampleSlices(benchmark::State& state) {
    pycroscope::model::SampleDecoder decoder;
    pycroscope::model::SampleSliceBuilder builder;
    std::uint64_t slices = 0;
    const auto count_slice = [&](const pycroscope::model::SampleSlice&) { ++slices; };
    run(state, [&](const Event* events, std::size_t count) {
        decoder.feed(events, count,
                     [&](const pycroscope::model::SampleView& sample) { builder.add(sample, count_slice); });
    });
    benchmark::DoNotOptimize(slices);
}
BENCHMARK(BM_SampleSlices);

} // namespace
