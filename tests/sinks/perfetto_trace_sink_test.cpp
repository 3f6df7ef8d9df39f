// PerfettoTraceSink: the file decoded by the real protoc against Perfetto's
// field numbers (tests/sinks/perfetto_trace.proto), then checked the way
// trace_processor reads it: interned names resolved per sequence, incremental
// state cleared before use, tracks described before use, begin/end balanced
// per track, and the slices equal to the spans that were recorded.

#include "sinks/export_tools.hpp"
#include "sinks/sink_test_helpers.hpp"

#include <pycroscope/sinks/chrome_trace_sink.hpp>
#include <pycroscope/sinks/perfetto_trace_sink.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace perfetto_trace_sink_test {
namespace {

using export_test::TextNode;
using pycroscope::sinks::PerfettoTraceSink;
using sink_test::TempDir;

struct Slice {
    std::string name;
    std::uint64_t begin;
    std::uint64_t end;
    bool operator<(const Slice& o) const { return std::tie(begin, end, name) < std::tie(o.begin, o.end, o.name); }
    bool operator==(const Slice& o) const { return std::tie(begin, end, name) == std::tie(o.begin, o.end, o.name); }
};

std::ostream& operator<<(std::ostream& os, const Slice& s) {
    return os << "{'" << s.name << "' " << s.begin << ".." << s.end << "}";
}

struct Instant {
    std::uint64_t track;
    std::string name;
    std::uint64_t ts;
};

// The trace as trace_processor would see it; every rule broken is a failure.
struct DecodedTrace {
    std::map<std::uint64_t, const TextNode*> tracks; // uuid -> descriptor (the last one)
    std::map<std::uint64_t, std::vector<Slice>> slices;
    std::vector<Instant> instants;
    std::map<std::uint64_t, std::vector<double>> counters;
    std::size_t packets = 0;
    TextNode root;
};

void decode(const std::string& path, DecodedTrace& trace) {
    trace.root = export_test::protoc_decode("perfetto.protos.Trace", export_test::tests_dir() / "perfetto_trace.proto",
                                            path);
    struct SequenceState {
        bool cleared = false;
        bool incremental = false;     // timestamps are deltas on clock 64
        std::uint64_t clock = 0;      // the incremental clock's value
        std::uint64_t default_track = 0;
        std::map<std::uint64_t, std::string> names;
        std::set<std::uint64_t> categories, sources;
    };
    std::map<std::uint64_t, SequenceState> sequences;
    std::map<std::uint64_t, std::vector<std::pair<std::string, std::uint64_t>>> open;
    std::map<std::pair<std::uint64_t, std::uint64_t>, std::uint64_t> last_ts; // (sequence, track)
    for (const TextNode* packet : trace.root.all("packet")) {
        ++trace.packets;
        if (packet->has("track_descriptor")) {
            const TextNode& d = packet->at("track_descriptor");
            const std::uint64_t uuid = d.u("uuid");
            if (d.has("parent_uuid")) {
                EXPECT_TRUE(trace.tracks.count(d.u("parent_uuid"))) << "parent of track " << uuid << " undescribed";
            }
            trace.tracks[uuid] = &d;
            continue;
        }
        ASSERT_TRUE(packet->has("trusted_packet_sequence_id"));
        ASSERT_TRUE(packet->has("timestamp"));
        SequenceState& seq = sequences[packet->u("trusted_packet_sequence_id")];
        const std::uint64_t flags = packet->has("sequence_flags") ? packet->u("sequence_flags") : 0;
        if ((flags & 1) != 0) {
            seq = SequenceState{};
            seq.cleared = true;
        }
        if (packet->has("trace_packet_defaults")) {
            const TextNode& defaults = packet->at("trace_packet_defaults");
            EXPECT_EQ(defaults.u("timestamp_clock_id"), 64u);
            if (defaults.has("track_event_defaults")) {
                seq.default_track = defaults.at("track_event_defaults").u("track_uuid");
            }
        }
        if (packet->has("clock_snapshot")) {
            // Clock 64 (sequence-scoped, incremental) starts at the snapshot's
            // value, which BOOTTIME (6) shares.
            std::map<std::uint64_t, const TextNode*> clocks;
            for (const TextNode* c : packet->at("clock_snapshot").all("clocks")) {
                clocks[c->u("clock_id")] = c;
            }
            ASSERT_TRUE(clocks.count(64) && clocks.count(6));
            EXPECT_EQ(clocks[64]->s("is_incremental"), "true");
            EXPECT_EQ(clocks[64]->u("timestamp"), clocks[6]->u("timestamp"));
            EXPECT_EQ(packet->u("timestamp_clock_id"), 6u);
            EXPECT_EQ(packet->u("timestamp"), clocks[6]->u("timestamp"));
            seq.incremental = true;
            seq.clock = clocks[64]->u("timestamp");
            continue;
        }
        ASSERT_TRUE(packet->has("track_event"));
        EXPECT_TRUE(seq.incremental) << "event before its sequence's clock snapshot";
        seq.clock += packet->u("timestamp");
        const std::uint64_t ts = seq.clock;
        EXPECT_TRUE((flags & 2) != 0) << "packet without SEQ_NEEDS_INCREMENTAL_STATE on an incremental clock";
        if (packet->has("interned_data")) {
            EXPECT_TRUE(seq.cleared) << "interned data before the sequence's state was cleared";
            const TextNode& interned = packet->at("interned_data");
            for (const TextNode* n : interned.all("event_names")) {
                EXPECT_TRUE(seq.names.emplace(n->u("iid"), n->s("name")).second) << "iid interned twice";
            }
            for (const TextNode* c : interned.all("event_categories")) {
                seq.categories.insert(c->u("iid"));
            }
            for (const TextNode* l : interned.all("source_locations")) {
                seq.sources.insert(l->u("iid"));
                EXPECT_TRUE(l->has("file_name") && l->has("function_name") && l->has("line_number"));
            }
        }
        const TextNode& e = packet->at("track_event");
        const std::uint64_t track = e.has("track_uuid") ? e.u("track_uuid") : seq.default_track;
        EXPECT_TRUE(trace.tracks.count(track)) << "track " << track << " used before it was described";
        std::string name;
        if (e.has("name_iid")) {
            const auto found = seq.names.find(e.u("name_iid"));
            EXPECT_NE(found, seq.names.end()) << "name_iid " << e.u("name_iid") << " not interned on its sequence";
            if (found != seq.names.end()) {
                name = found->second;
            }
        } else if (e.has("name")) {
            name = e.s("name");
        }
        for (const TextNode* c : e.all("category_iids")) {
            EXPECT_TRUE(seq.categories.count(std::stoull(c->value))) << "category iid unresolved";
        }
        if (e.has("source_location_iid")) {
            EXPECT_TRUE(seq.sources.count(e.u("source_location_iid"))) << "source location iid unresolved";
        }
        const std::string& type = e.s("type");
        // A counter track may be fed by several sequences: time order holds per sequence.
        const auto key = std::make_pair(packet->u("trusted_packet_sequence_id"), track);
        EXPECT_GE(ts, last_ts[key]) << "time goes back on track " << track;
        last_ts[key] = ts;
        if (type == "TYPE_SLICE_BEGIN") {
            EXPECT_FALSE(name.empty());
            open[track].emplace_back(name, ts);
        } else if (type == "TYPE_SLICE_END") {
            ASSERT_FALSE(open[track].empty()) << "slice end without a begin on track " << track;
            trace.slices[track].push_back(Slice{open[track].back().first, open[track].back().second, ts});
            open[track].pop_back();
        } else if (type == "TYPE_INSTANT") {
            trace.instants.push_back(Instant{track, name, ts});
        } else if (type == "TYPE_COUNTER") {
            trace.counters[track].push_back(e.has("double_counter_value") ? std::stod(e.s("double_counter_value"))
                                                                           : std::stod(e.s("counter_value")));
        } else {
            ADD_FAILURE() << "unexpected event type " << type;
        }
    }
    for (const auto& entry : open) {
        EXPECT_TRUE(entry.second.empty()) << "track " << entry.first << " has " << entry.second.size()
                                          << " slices left open";
    }
    for (auto& entry : trace.slices) {
        std::sort(entry.second.begin(), entry.second.end());
    }
}

// The track whose descriptor has this thread name (or track name).
std::uint64_t track_named(const DecodedTrace& trace, const std::string& name) {
    for (const auto& entry : trace.tracks) {
        const TextNode& d = *entry.second;
        if ((d.has("thread") && d.at("thread").s("thread_name") == name) || (d.has("name") && d.s("name") == name)) {
            return entry.first;
        }
    }
    ADD_FAILURE() << "no track named '" << name << "'";
    return 0;
}

std::vector<Slice> reference(sink_test::Synthetic& s, std::uint32_t thread) {
    std::vector<Slice> out;
    for (const auto& span : sink_test::reference_spans(s.events(thread), export_test::rich_stop)) {
        out.push_back(Slice{span.location->display_name(), span.begin, span.end});
    }
    std::sort(out.begin(), out.end());
    return out;
}

TEST(PerfettoTraceSink, ProtocDecodesEveryPacketAndSlicesEqualTheRecordedSpans) {
    EXPORT_TEST_REQUIRE_PROTOC();
    TempDir dir;
    auto s = export_test::rich_stream();
    PerfettoTraceSink sink(dir.file("trace.perfetto-trace"));
    s.play(sink, export_test::rich_stop);
    DecodedTrace trace;
    ASSERT_NO_FATAL_FAILURE(decode(dir.file("trace.perfetto-trace"), trace));

    const std::uint64_t main = track_named(trace, "main");
    const std::uint64_t worker = track_named(trace, "worker");
    EXPECT_EQ(trace.slices[main], reference(s, 1));
    EXPECT_EQ(trace.slices[worker], reference(s, 2));
    EXPECT_EQ(trace.slices[main].size(), 8u); // main, fib x3, len, helper, gc, odd name
    const TextNode& thread = trace.tracks.at(main)->at("thread");
    EXPECT_EQ(thread.u("pid"), 4242u);
    EXPECT_EQ(thread.u("tid"), 10001u);
    const TextNode& process = *trace.tracks.at(1);
    EXPECT_EQ(process.at("process").s("process_name"), "rich \"stream\"");
}

TEST(PerfettoTraceSink, MarksCountersMemoryAndLostEventsHaveTheirTracks) {
    EXPORT_TEST_REQUIRE_PROTOC();
    TempDir dir;
    auto s = export_test::rich_stream();
    PerfettoTraceSink sink(dir.file("t.pftrace"));
    s.play(sink, export_test::rich_stop);
    DecodedTrace trace;
    ASSERT_NO_FATAL_FAILURE(decode(dir.file("t.pftrace"), trace));
    const std::uint64_t main = track_named(trace, "main");
    const std::uint64_t worker = track_named(trace, "worker");
    std::vector<std::tuple<std::uint64_t, std::string, std::uint64_t>> instants;
    for (const auto& i : trace.instants) {
        instants.emplace_back(i.track, i.name, i.ts);
    }
    std::sort(instants.begin(), instants.end());
    const std::vector<std::tuple<std::uint64_t, std::string, std::uint64_t>> expected_instants = [&] {
        std::vector<std::tuple<std::uint64_t, std::string, std::uint64_t>> v{
            {main, "checkpoint", 210}, {main, "frame", 215}, {main, "frame", 290},
            {worker, "pycroscope: 3 events lost", export_test::rich_stop}};
        std::sort(v.begin(), v.end());
        return v;
    }();
    EXPECT_EQ(instants, expected_instants);

    const std::uint64_t queue = track_named(trace, "queue depth");
    EXPECT_TRUE(trace.tracks.at(queue)->has("counter"));
    EXPECT_EQ(trace.counters[queue], (std::vector<double>{3.5, -1.25}));

    const std::uint64_t memory = track_named(trace, "python memory (live bytes)");
    EXPECT_EQ(trace.tracks.at(memory)->at("counter").s("unit"), "UNIT_SIZE_BYTES");
    // 64, +128, -64 (freed), +1000; the born-freed block never counts; a final point at stop.
    EXPECT_EQ(trace.counters[memory], (std::vector<double>{64, 192, 128, 1128, 1128}));
}

TEST(PerfettoTraceSink, SamplesBecomeNestedSlicesOnATrackPerSampledThread) {
    EXPORT_TEST_REQUIRE_PROTOC();
    TempDir dir;
    auto s = export_test::rich_stream();
    PerfettoTraceSink sink(dir.file("t.pftrace"));
    s.play(sink, export_test::rich_stop);
    DecodedTrace trace;
    ASSERT_NO_FATAL_FAILURE(decode(dir.file("t.pftrace"), trace));
    const std::uint64_t sampled = track_named(trace, "samples: sampled-main");
    // Samples at 100, 200, 300: fib in all three, helper in the first two;
    // the last slice lasts one gap (100) past the last sample.
    EXPECT_EQ(trace.slices[sampled], (std::vector<Slice>{{"helper", 100, 300}, {"fib", 100, 400}}));
}

TEST(PerfettoTraceSink, EachSequenceInternsANameOnce) {
    EXPORT_TEST_REQUIRE_PROTOC();
    TempDir dir;
    sink_test::Synthetic s;
    s.thread(3, ""); // unnamed: described once all the same
    for (std::uint64_t i = 0; i < 100; ++i) {
        s.span(1, &export_test::loc_fib, 10 * i, 10 * i + 5);
        s.span(2, &export_test::loc_fib, 10 * i, 10 * i + 5);
        s.span(3, &export_test::loc_fib, 10 * i, 10 * i + 5);
    }
    PerfettoTraceSink sink(dir.file("t.pftrace"));
    s.play(sink, 2000, 7);
    DecodedTrace trace;
    ASSERT_NO_FATAL_FAILURE(decode(dir.file("t.pftrace"), trace));
    std::map<std::uint64_t, int> names_per_sequence;
    for (const TextNode* packet : trace.root.all("packet")) {
        if (packet->has("interned_data")) {
            names_per_sequence[packet->u("trusted_packet_sequence_id")] +=
                static_cast<int>(packet->at("interned_data").all("event_names").size());
        }
    }
    EXPECT_EQ(names_per_sequence, (std::map<std::uint64_t, int>{{2, 1}, {3, 1}, {4, 1}}));
    int thread_descriptors = 0;
    for (const TextNode* packet : trace.root.all("packet")) {
        thread_descriptors += packet->has("track_descriptor") && packet->at("track_descriptor").has("thread");
    }
    EXPECT_EQ(thread_descriptors, 3);
    EXPECT_EQ(trace.slices[track_named(trace, "thread-3")].size(), 100u);
    EXPECT_EQ(trace.slices[track_named(trace, "thread-1")].size(), 100u);
    EXPECT_EQ(trace.slices[track_named(trace, "thread-2")].size(), 100u);
}

// Python-like spans with long names and paths, as a traced script makes them.
TEST(PerfettoTraceSink, IsSeveralTimesSmallerThanTheChromeTraceOfTheSameEvents) {
    TempDir dir;
    sink_test::Synthetic s;
    static const pycroscope::SourceLocation functions[] = {
        {"compute_statistics", "analysis.compute_statistics", "/home/user/project/analysis.py", 120,
         pycroscope::LocationKind::python_function},
        {"normalize", "analysis.normalize", "/home/user/project/analysis.py", 80,
         pycroscope::LocationKind::python_function},
        {"len", "builtins.len", "", 0, pycroscope::LocationKind::c_function}};
    std::uint64_t t = 0;
    for (int i = 0; i < 20000; ++i) {
        s.add(1, export_test::span_event(pycroscope::EventKind::py_call, &functions[0], t += 1500));
        s.add(1, export_test::span_event(pycroscope::EventKind::py_call, &functions[1], t += 700));
        s.add(1, export_test::span_event(pycroscope::EventKind::c_call, &functions[2], t += 90));
        s.add(1, export_test::span_event(pycroscope::EventKind::c_return, &functions[2], t += 40));
        s.add(1, export_test::span_event(pycroscope::EventKind::py_return, &functions[1], t += 300));
        s.add(1, export_test::span_event(pycroscope::EventKind::py_return, &functions[0], t += 2000));
    }
    PerfettoTraceSink perfetto(dir.file("t.pftrace"));
    pycroscope::sinks::ChromeTraceSink chrome(dir.file("t.json"));
    s.play(perfetto, t + 10, 4096);
    s.play(chrome, t + 10, 4096);
    const auto perfetto_size = export_test::fs::file_size(dir.file("t.pftrace"));
    const auto chrome_size = export_test::fs::file_size(dir.file("t.json"));
    EXPECT_LT(perfetto_size * 4, chrome_size) << perfetto_size << " bytes against " << chrome_size;
}

TEST(PerfettoTraceSink, AnUnwritablePathFailsAtOpen) {
    PerfettoTraceSink sink("/nonexistent-dir/for/sure/t.pftrace");
    sink_test::Synthetic s;
    EXPECT_THROW(sink.open(s.info), pycroscope::ConfigError);
}

} // namespace
} // namespace perfetto_trace_sink_test
