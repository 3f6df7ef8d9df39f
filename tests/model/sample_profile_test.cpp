// SampleDecoder, SampleProfile and SampleSliceBuilder: samples decoded from
// synthetic event streams cut at every possible batch boundary, exact counts
// and shares per stack, function, line and thread, and samples recorded
// through a real session.

#include "support/sample_events.hpp"

#include <pycroscope/model/sample_decoder.hpp>
#include <pycroscope/model/sample_profile.hpp>
#include <pycroscope/model/sample_slices.hpp>
#include <pycroscope/core/session.hpp>

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace sample_profile_test {
namespace {

using pycroscope::Event;
using pycroscope::LocationKind;
using pycroscope::SourceLocation;
using pycroscope::model::SampleDecoder;
using pycroscope::model::SampleProfile;
using pycroscope::model::SampleSlice;
using pycroscope::model::SampleSliceBuilder;
using pycroscope::model::SampleView;
using sample_test::append_sample;
using sample_test::Frame;

namespace flags = pycroscope::sample_flags;

constexpr SourceLocation py_f{"f", "f", "app.py", 10, LocationKind::python_function};
constexpr SourceLocation py_g{"g", "g", "app.py", 20, LocationKind::python_function};
constexpr SourceLocation py_r{"r", "r", "rec.py", 5, LocationKind::python_function};
constexpr SourceLocation zone_z{"Z", "void z()", "z.cpp", 7, LocationKind::native_zone};
constexpr SourceLocation name_main{"main", "main", "", 0, LocationKind::other};
constexpr SourceLocation name_worker{"worker", "worker", "", 0, LocationKind::other};

// A decoded sample, copied out of the callback.
struct Decoded {
    std::uint64_t timestamp, os_tid;
    const SourceLocation* name;
    std::uint8_t flags;
    std::vector<std::pair<const SourceLocation*, std::uint32_t>> frames;
    bool operator==(const Decoded& o) const {
        return std::tie(timestamp, os_tid, name, flags, frames) ==
               std::tie(o.timestamp, o.os_tid, o.name, o.flags, o.frames);
    }
};

Decoded copy(const SampleView& s) {
    Decoded d{s.timestamp, s.os_tid, s.thread_name, s.flags, {}};
    for (std::size_t i = 0; i < s.depth; ++i) {
        d.frames.emplace_back(s.frames[i].location, s.frames[i].line);
    }
    return d;
}

std::vector<Event> three_samples() {
    std::vector<Event> events;
    append_sample(events, 100, 7, &name_main, flags::running, {{&py_f, 11}, {&zone_z}, {&py_g, 22}});
    append_sample(events, 200, 7, nullptr, 0, {});
    append_sample(events, 300, 8, &name_worker, flags::running | flags::manual, {{&py_r, 6}});
    return events;
}

std::vector<Decoded> decode(const std::vector<Event>& events, std::vector<std::size_t> cuts) {
    SampleDecoder decoder;
    std::vector<Decoded> out;
    cuts.push_back(events.size());
    std::size_t from = 0;
    for (const std::size_t to : cuts) {
        decoder.feed(events.data() + from, to - from, [&](const SampleView& s) { out.push_back(copy(s)); });
        from = to;
    }
    EXPECT_FALSE(decoder.pending());
    EXPECT_EQ(decoder.incomplete(), 0u);
    return out;
}

TEST(SampleDecoder, DecodesHeadersAndFramesInOrder) {
    const auto samples = decode(three_samples(), {});
    ASSERT_EQ(samples.size(), 3u);
    EXPECT_EQ(samples[0].timestamp, 100u);
    EXPECT_EQ(samples[0].os_tid, 7u);
    EXPECT_EQ(samples[0].name, &name_main);
    EXPECT_EQ(samples[0].flags, flags::running);
    const std::vector<std::pair<const SourceLocation*, std::uint32_t>> first{{&py_f, 11}, {&zone_z, 0}, {&py_g, 22}};
    EXPECT_EQ(samples[0].frames, first);
    EXPECT_TRUE(samples[1].frames.empty()); // an empty stack is a sample too
    EXPECT_EQ(samples[1].name, nullptr);
    EXPECT_EQ(samples[2].os_tid, 8u);
    EXPECT_EQ(samples[2].flags, flags::running | flags::manual);
}

TEST(SampleDecoder, EveryBatchBoundaryDecodesTheSameSamples) {
    const auto events = three_samples();
    const auto whole = decode(events, {});
    for (std::size_t cut = 0; cut <= events.size(); ++cut) {
        SCOPED_TRACE(cut);
        EXPECT_EQ(decode(events, {cut}), whole);
    }
    std::vector<std::size_t> every;
    for (std::size_t i = 1; i < events.size(); ++i) {
        every.push_back(i);
    }
    EXPECT_EQ(decode(events, every), whole); // one event per batch
}

TEST(SampleDecoder, SamplesWithLostFramesAreDroppedAndCounted) {
    std::vector<Event> events;
    append_sample(events, 100, 7, nullptr, flags::running, {{&py_f}, {&py_g}});
    events.pop_back(); // the second frame was lost: the next header arrives instead
    append_sample(events, 200, 7, nullptr, flags::running, {{&py_f}});
    // A header lost: its frames are orphans.
    std::vector<Event> lost_header;
    append_sample(lost_header, 300, 7, nullptr, flags::running, {{&py_g}, {&py_g}});
    events.insert(events.end(), lost_header.begin() + 1, lost_header.end());
    // Frames of another timestamp end a sample that misses frames.
    append_sample(events, 400, 7, nullptr, flags::running, {{&py_f}, {&py_g}});
    events.pop_back();
    append_sample(lost_header, 500, 7, nullptr, flags::running, {{&py_r}});
    events.push_back(lost_header.back());
    append_sample(events, 600, 7, nullptr, 0, {{&zone_z}});

    SampleDecoder decoder;
    std::vector<Decoded> out;
    decoder.feed(events.data(), events.size(), [&](const SampleView& s) { out.push_back(copy(s)); });
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0].timestamp, 200u);
    EXPECT_EQ(out[1].timestamp, 600u);
    EXPECT_EQ(decoder.incomplete(), 2u);
    EXPECT_EQ(decoder.orphan_frames(), 3u);
}

// A frame lost in the middle (drop_newest freed room again before the next
// frame): the frame that follows has the header's timestamp but the wrong
// index, so the sample is dropped, not delivered one frame short.
TEST(SampleDecoder, AFrameLostInTheMiddleDropsTheSample) {
    std::vector<Event> events;
    append_sample(events, 100, 7, nullptr, flags::running, {{&py_f}, {&zone_z}, {&py_g}});
    events.erase(events.begin() + 2); // frame 1 of 3
    append_sample(events, 200, 7, nullptr, flags::running, {{&py_r}});

    SampleDecoder decoder;
    std::vector<Decoded> out;
    decoder.feed(events.data(), events.size(), [&](const SampleView& s) { out.push_back(copy(s)); });
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].timestamp, 200u);
    EXPECT_EQ(decoder.incomplete(), 1u);
    EXPECT_EQ(decoder.orphan_frames(), 1u);
}

// The synthetic profile of the profile tests: 6 samples.
//   main (7):   f:10 > g:20        running
//               f:10 > g:21        running
//               f:11               idle
//               r:5 > r:6 > r:5    running (recursion)
//               (no frames)        idle
//   worker (8): Z > f:12           running
std::vector<Event> profile_stream() {
    std::vector<Event> events;
    append_sample(events, 100, 7, &name_main, flags::running, {{&py_f, 10}, {&py_g, 20}});
    append_sample(events, 200, 7, &name_main, flags::running, {{&py_f, 10}, {&py_g, 21}});
    append_sample(events, 300, 7, &name_main, 0, {{&py_f, 11}});
    append_sample(events, 400, 7, &name_main, flags::running, {{&py_r, 5}, {&py_r, 6}, {&py_r, 5}});
    append_sample(events, 500, 7, &name_main, 0, {});
    append_sample(events, 150, 8, nullptr, flags::running, {{&zone_z}, {&py_f, 12}});
    return events;
}

SampleProfile profile_of(const std::vector<Event>& events, std::size_t batch) {
    SampleProfile profile;
    for (std::size_t at = 0; at < events.size(); at += batch) {
        profile.consume(1, events.data() + at, std::min(batch, events.size() - at));
    }
    return profile;
}

const pycroscope::model::FunctionSamples& function(const std::vector<pycroscope::model::FunctionSamples>& all,
                                                      const SourceLocation* location) {
    for (const auto& f : all) {
        if (f.location == location) {
            return f;
        }
    }
    throw std::runtime_error("function not found");
}

TEST(SampleProfile, ExactCountsPerFunctionLineAndThread) {
    for (const std::size_t batch : {1u, 2u, 3u, 5u, 1000u}) {
        SCOPED_TRACE(batch);
        const SampleProfile profile = profile_of(profile_stream(), batch);
        EXPECT_EQ(profile.samples().all(), 6u);
        EXPECT_EQ(profile.samples().running, 4u);
        EXPECT_EQ(profile.samples().idle, 2u);
        EXPECT_EQ(profile.incomplete_samples(), 0u);

        const auto functions = profile.functions();
        ASSERT_EQ(functions.size(), 4u);
        const auto& f = function(functions, &py_f);
        EXPECT_EQ(f.self.running, 1u); // worker's leaf
        EXPECT_EQ(f.self.idle, 1u);
        EXPECT_EQ(f.total.running, 3u);
        EXPECT_EQ(f.total.idle, 1u);
        const auto& g = function(functions, &py_g);
        EXPECT_EQ(g.self.all(), 2u);
        EXPECT_EQ(g.total.all(), 2u);
        const auto& r = function(functions, &py_r); // three frames, one sample
        EXPECT_EQ(r.self.all(), 1u);
        EXPECT_EQ(r.total.all(), 1u);
        const auto& z = function(functions, &zone_z);
        EXPECT_EQ(z.self.all(), 0u);
        EXPECT_EQ(z.total.running, 1u);

        // Lines: (function, line) -> self, total.
        std::map<std::pair<const SourceLocation*, std::uint32_t>, std::pair<std::uint64_t, std::uint64_t>> lines;
        for (const auto& l : profile.lines()) {
            lines[{l.function, l.line}] = {l.self.all(), l.total.all()};
        }
        const std::map<std::pair<const SourceLocation*, std::uint32_t>, std::pair<std::uint64_t, std::uint64_t>>
            expected{{{&py_f, 10}, {0, 2}}, {{&py_g, 20}, {1, 1}}, {{&py_g, 21}, {1, 1}}, {{&py_f, 11}, {1, 1}},
                     {{&py_r, 5}, {1, 1}},  {{&py_r, 6}, {0, 1}},  {{&py_f, 12}, {1, 1}}};
        EXPECT_EQ(lines, expected);

        const auto& threads = profile.threads();
        ASSERT_EQ(threads.size(), 2u);
        EXPECT_EQ(threads[0].os_tid, 7u);
        EXPECT_EQ(threads[0].name, "main");
        EXPECT_EQ(threads[0].samples.running, 3u);
        EXPECT_EQ(threads[0].samples.idle, 2u);
        EXPECT_EQ(threads[0].first_timestamp, 100u);
        EXPECT_EQ(threads[0].last_timestamp, 500u);
        EXPECT_EQ(threads[1].os_tid, 8u);
        EXPECT_EQ(threads[1].name, "thread 8");
        EXPECT_EQ(threads[1].samples.running, 1u);

        // Stacks, with their self samples.
        std::map<std::pair<std::string, std::vector<const SourceLocation*>>, std::uint64_t> stacks;
        profile.for_each_stack([&](const pycroscope::model::SampledThread& t,
                                   const std::vector<const SourceLocation*>& frames,
                                   const pycroscope::model::SampleCounts& self) {
            stacks[{t.name, frames}] += self.all();
        });
        const std::map<std::pair<std::string, std::vector<const SourceLocation*>>, std::uint64_t> expected_stacks{
            {{"main", {&py_f, &py_g}}, 2},     {{"main", {&py_f}}, 1},    {{"main", {&py_r, &py_r, &py_r}}, 1},
            {{"main", {}}, 1},                 {{"thread 8", {&zone_z, &py_f}}, 1}};
        EXPECT_EQ(stacks, expected_stacks);
    }
}

TEST(SampleProfile, HotspotsGiveExactSharesSortedBySelf) {
    const SampleProfile profile = profile_of(profile_stream(), 4);
    const auto all = profile.hotspots();
    EXPECT_EQ(all.samples, 6u);
    ASSERT_EQ(all.functions.size(), 4u);
    // f and g tie on self (2); f wins on total (4 vs 2).
    EXPECT_EQ(all.functions[0].location, &py_f);
    EXPECT_EQ(all.functions[0].self_samples, 2u);
    EXPECT_EQ(all.functions[0].total_samples, 4u);
    EXPECT_DOUBLE_EQ(all.functions[0].self_pct, 100.0 * 2 / 6);
    EXPECT_DOUBLE_EQ(all.functions[0].total_pct, 100.0 * 4 / 6);
    EXPECT_EQ(all.functions[1].location, &py_g);
    EXPECT_EQ(all.functions[2].location, &py_r);
    EXPECT_DOUBLE_EQ(all.functions[2].self_pct, 100.0 / 6);
    EXPECT_EQ(all.functions[3].location, &zone_z);
    EXPECT_EQ(all.functions[3].self_samples, 0u);
    EXPECT_DOUBLE_EQ(all.functions[3].total_pct, 100.0 / 6);
    ASSERT_EQ(all.lines.size(), 7u);
    // Five lines with one self sample, ordered by total, then file, function and line.
    EXPECT_EQ(all.lines[0].function, &py_f);
    EXPECT_EQ(all.lines[0].line, 11u);
    EXPECT_EQ(all.lines[1].line, 12u);
    EXPECT_EQ(all.lines[2].function, &py_g);
    EXPECT_EQ(all.lines[2].line, 20u);
    EXPECT_EQ(all.lines[4].function, &py_r);
    EXPECT_EQ(all.lines[4].line, 5u);
    EXPECT_EQ(all.lines[5].function, &py_f); // f:10, self 0, total 2
    EXPECT_EQ(all.lines[5].total_samples, 2u);
    EXPECT_DOUBLE_EQ(all.lines[5].total_pct, 100.0 * 2 / 6);

    // CPU view: running samples only; f loses its idle sample.
    const auto running = profile.hotspots(pycroscope::model::HotspotQuery{false, 2});
    EXPECT_EQ(running.samples, 4u);
    ASSERT_EQ(running.functions.size(), 2u);
    EXPECT_EQ(running.functions[0].location, &py_g);
    EXPECT_DOUBLE_EQ(running.functions[0].self_pct, 50.0);
    EXPECT_EQ(running.functions[1].location, &py_f);
    EXPECT_EQ(running.functions[1].self_samples, 1u);
    EXPECT_EQ(running.functions[1].total_samples, 3u);
    EXPECT_DOUBLE_EQ(running.functions[1].total_pct, 75.0);
    EXPECT_EQ(running.lines.size(), 2u);
}

TEST(SampleProfile, EmptyProfileHasNoShares) {
    SampleProfile profile;
    const auto h = profile.hotspots();
    EXPECT_EQ(h.samples, 0u);
    EXPECT_TRUE(h.functions.empty());
    EXPECT_TRUE(h.lines.empty());
}

std::vector<SampleSlice> slices_of(const std::vector<Event>& events, std::uint64_t stop, std::uint64_t interval) {
    SampleDecoder decoder;
    SampleSliceBuilder builder;
    std::vector<SampleSlice> out;
    const auto keep = [&](const SampleSlice& s) { out.push_back(s); };
    decoder.feed(events.data(), events.size(), [&](const SampleView& s) { builder.add(s, keep); });
    builder.finish(stop, interval, keep);
    std::sort(out.begin(), out.end(), [](const SampleSlice& a, const SampleSlice& b) {
        return std::tie(a.os_tid, a.begin, a.depth) < std::tie(b.os_tid, b.begin, b.depth);
    });
    return out;
}

constexpr SourceLocation loc_a{"A", "A", "a.py", 1, LocationKind::python_function};
constexpr SourceLocation loc_b{"B", "B", "b.py", 2, LocationKind::python_function};
constexpr SourceLocation loc_c{"C", "C", "c.cpp", 3, LocationKind::native_zone};

TEST(SampleSliceBuilder, ConsecutiveSamplesContinueOneSlice) {
    std::vector<Event> events;
    append_sample(events, 1000, 7, &name_main, flags::running, {{&loc_a}, {&loc_b, 5}});
    append_sample(events, 1010, 7, &name_main, flags::running, {{&loc_a}, {&loc_b, 6}}); // line changes: same slice
    append_sample(events, 1020, 7, &name_main, 0, {{&loc_a}, {&loc_c}});
    append_sample(events, 1030, 7, &name_main, flags::running, {{&loc_a}});
    struct Expect {
        const SourceLocation* location;
        std::uint32_t depth;
        std::uint64_t begin, end, samples;
    };
    const auto check = [](const std::vector<SampleSlice>& got, const std::vector<Expect>& want) {
        ASSERT_EQ(got.size(), want.size());
        for (std::size_t i = 0; i < want.size(); ++i) {
            SCOPED_TRACE(i);
            EXPECT_EQ(got[i].os_tid, 7u);
            EXPECT_EQ(got[i].location, want[i].location);
            EXPECT_EQ(got[i].depth, want[i].depth);
            EXPECT_EQ(got[i].begin, want[i].begin);
            EXPECT_EQ(got[i].end, want[i].end);
            EXPECT_EQ(got[i].samples, want[i].samples);
        }
    };
    // Interval given: A ends one interval after the last sample.
    check(slices_of(events, 5000, 10),
          {{&loc_a, 0, 1000, 1040, 4}, {&loc_b, 1, 1000, 1020, 2}, {&loc_c, 1, 1020, 1030, 1}});
    // No interval: the last gap (10) stands in.
    check(slices_of(events, 5000, 0),
          {{&loc_a, 0, 1000, 1040, 4}, {&loc_b, 1, 1000, 1020, 2}, {&loc_c, 1, 1020, 1030, 1}});
    // Session stop comes first.
    check(slices_of(events, 1035, 10),
          {{&loc_a, 0, 1000, 1035, 4}, {&loc_b, 1, 1000, 1020, 2}, {&loc_c, 1, 1020, 1030, 1}});
}

TEST(SampleSliceBuilder, ThreadsAreIndependentAndADifferentParentOpensNewSlices) {
    std::vector<Event> events;
    append_sample(events, 100, 7, &name_main, flags::running, {{&loc_a}, {&loc_c}});
    append_sample(events, 105, 8, &name_worker, flags::running, {{&loc_c}});
    append_sample(events, 110, 7, &name_main, flags::running, {{&loc_b}, {&loc_c}}); // C under B: a new slice
    append_sample(events, 115, 8, &name_worker, flags::running, {{&loc_c}});
    const auto slices = slices_of(events, 200, 0);
    ASSERT_EQ(slices.size(), 5u);
    EXPECT_EQ(slices[0].location, &loc_a);
    EXPECT_EQ(slices[0].end, 110u);
    EXPECT_EQ(slices[1].location, &loc_c);
    EXPECT_EQ(slices[1].begin, 100u);
    EXPECT_EQ(slices[1].end, 110u);
    EXPECT_EQ(slices[2].location, &loc_b);
    EXPECT_EQ(slices[2].end, 120u);
    EXPECT_EQ(slices[3].location, &loc_c);
    EXPECT_EQ(slices[3].begin, 110u);
    EXPECT_EQ(slices[4].os_tid, 8u);
    EXPECT_EQ(slices[4].begin, 105u);
    EXPECT_EQ(slices[4].end, 125u);
    EXPECT_EQ(slices[4].samples, 2u);
}

// A sink that feeds a profile as the session delivers batches.
class ProfileSink : public pycroscope::Sink {
public:
    std::string describe() const override { return "profile"; }
    void open(const pycroscope::SessionInfo&) override { profile.clear(); }
    void consume(const pycroscope::ThreadInfo& thread, const Event* events, std::size_t count) override {
        std::lock_guard<std::mutex> lock(mutex);
        profile.consume(thread.index, events, count);
        ++batches;
    }
    void close(const pycroscope::SessionSummary&) override {}
    void abort() noexcept override {}

    std::mutex mutex;
    SampleProfile profile;
    std::size_t batches = 0;
};

TEST(SampleProfile, SamplesRecordedThroughASessionAcrossBatches) {
    // 20-frame stacks: 21 events per sample, so the session's batches cut
    // samples at arbitrary points. Two threads each record the samples of
    // a third, "sampled" thread 99 and of themselves.
    constexpr int samples_per_thread = 1500;
    std::vector<Frame> deep;
    for (int i = 0; i < 19; ++i) {
        deep.push_back(Frame{i % 2 == 0 ? &py_r : &zone_z, static_cast<std::uint32_t>(i)});
    }
    deep.push_back(Frame{&py_g, 21});
    const std::vector<Frame> shallow{{&py_f, 10}};

    pycroscope::Config config;
    config.buffer_capacity = 4096;
    pycroscope::Session<> session(config);
    auto sink = std::make_shared<ProfileSink>();
    session.add_sink(sink);
    session.start();
    std::vector<std::thread> producers;
    for (int p = 0; p < 2; ++p) {
        producers.emplace_back([&, p] {
            for (int i = 0; i < samples_per_thread; ++i) {
                const auto ts = static_cast<std::uint64_t>(p * samples_per_thread + i + 1);
                ASSERT_TRUE(sample_test::record_sample(ts, 99, &name_worker, flags::running, deep));
                ASSERT_TRUE(sample_test::record_sample(ts, 1000 + static_cast<std::uint64_t>(p), nullptr,
                                                       i % 3 == 0 ? 0 : flags::running, shallow));
            }
        });
    }
    for (auto& t : producers) {
        t.join();
    }
    const auto summary = session.stop();
    ASSERT_EQ(summary.total_lost, 0u);

    const SampleProfile& profile = sink->profile;
    EXPECT_GT(sink->batches, 2u);
    EXPECT_EQ(profile.incomplete_samples(), 0u);
    EXPECT_EQ(profile.samples().all(), 4u * samples_per_thread);
    EXPECT_EQ(profile.samples().idle, 2u * ((samples_per_thread + 2) / 3)); // i % 3 == 0
    const auto functions = profile.functions();
    EXPECT_EQ(function(functions, &py_g).self.all(), 2u * samples_per_thread);
    EXPECT_EQ(function(functions, &py_r).total.all(), 2u * samples_per_thread); // 10 frames, once per sample
    EXPECT_EQ(function(functions, &py_r).self.all(), 0u);
    EXPECT_EQ(function(functions, &py_f).self.all(), 2u * samples_per_thread);
    const auto& threads = profile.threads();
    ASSERT_EQ(threads.size(), 3u);
    std::map<std::uint64_t, std::uint64_t> per_thread;
    for (const auto& t : threads) {
        per_thread[t.os_tid] = t.samples.all();
    }
    const std::map<std::uint64_t, std::uint64_t> expected{
        {99, 2u * samples_per_thread}, {1000, samples_per_thread}, {1001, samples_per_thread}};
    EXPECT_EQ(per_thread, expected);
}

} // namespace
} // namespace sample_profile_test
