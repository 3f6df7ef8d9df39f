// FoldedStackSink: exact lines on synthetic input, and the file of a real
// session compared with the self time of every stack in the raw events.

#include "sinks/sink_test_helpers.hpp"
#include "support/recording_sink.hpp"

#include <pycroscope/core/session.hpp>
#include <pycroscope/core/zone.hpp>
#include <pycroscope/model/profile_builder.hpp>
#include <pycroscope/sinks/folded_stack_sink.hpp>

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace folded_stack_sink_test {
namespace {

using pycroscope::LocationKind;
using pycroscope::SourceLocation;
using pycroscope::sinks::FoldedStackOptions;
using pycroscope::sinks::FoldedStackSink;
using sink_test::Synthetic;
using sink_test::TempDir;

constexpr SourceLocation loc_a{"A", "fa", "a.cpp", 1, LocationKind::native_zone};
constexpr SourceLocation loc_b{"B", "fb", "b.cpp", 2, LocationKind::native_zone};
constexpr SourceLocation loc_c{"C", "fc", "c.cpp", 3, LocationKind::native_zone};
constexpr SourceLocation loc_x{"X", "fx", "x.cpp", 4, LocationKind::native_zone};
constexpr SourceLocation loc_y{"Y", "fy", "y.cpp", 5, LocationKind::native_zone};
constexpr SourceLocation loc_z{"Z", "fz", "z.cpp", 6, LocationKind::native_zone};
constexpr SourceLocation loc_semi{"ns::f;g\nh", "f", "s.cpp", 7, LocationKind::native_zone};
constexpr SourceLocation loc_empty{"", "fe", "e.cpp", 8, LocationKind::native_zone};
constexpr SourceLocation loc_mark{"M", "fm", "m.cpp", 9, LocationKind::mark};
constexpr SourceLocation loc_counter{"K", "fk", "k.cpp", 10, LocationKind::counter};

Synthetic make_stream() {
    Synthetic s;
    s.thread(1, "main");
    s.thread(2, "worker;1", 3);
    // main: A(100..300) > B(110..150), B(160..200) > C(170..190); marks and
    // counters do not change stacks.
    s.begin(1, &loc_a, 100);
    s.span(1, &loc_b, 110, 150);
    s.mark(1, &loc_mark, 155);
    s.begin(1, &loc_b, 160);
    s.counter(1, &loc_counter, 165, 1.0);
    s.span(1, &loc_c, 170, 190);
    s.end(1, &loc_b, 200);
    s.end(1, &loc_a, 300);
    // worker;1: A(10..40) > B(20..30); a name with separators; X covered
    // by Y completely (no self time, so no line); Z open at stop (200).
    s.begin(2, &loc_a, 10);
    s.span(2, &loc_b, 20, 30);
    s.end(2, &loc_a, 40);
    s.span(2, &loc_semi, 50, 60);
    s.begin(2, &loc_x, 70);
    s.span(2, &loc_y, 70, 80);
    s.end(2, &loc_x, 80);
    s.begin(2, &loc_z, 90);
    return s;
}

std::string play(const Synthetic& s, const std::string& path, FoldedStackOptions options, std::uint64_t stop,
                 std::size_t batch = 3) {
    FoldedStackSink sink(path, options);
    s.play(sink, stop, batch);
    return sink_test::read_file(path);
}

TEST(FoldedStackSink, SyntheticLinesWithThreadFrames) {
    TempDir dir;
    const std::string text = play(make_stream(), dir.file("stacks.folded"), FoldedStackOptions{}, 200);
    EXPECT_EQ(text, "main;A 120\n"
                    "main;A;B 60\n"
                    "main;A;B;C 20\n"
                    "worker:1;A 20\n"
                    "worker:1;A;B 10\n"
                    "worker:1;X;Y 10\n"
                    "worker:1;Z 110\n"
                    "worker:1;ns::f:g h 10\n"
                    "worker:1;[3 events lost] 1\n");
}

TEST(FoldedStackSink, SyntheticLinesMergedAcrossThreads) {
    TempDir dir;
    FoldedStackOptions options;
    options.thread_frames = false;
    const std::string text = play(make_stream(), dir.file("stacks.folded"), options, 200);
    EXPECT_EQ(text, "A 140\n"
                    "A;B 70\n"
                    "A;B;C 20\n"
                    "X;Y 10\n"
                    "Z 110\n"
                    "ns::f:g h 10\n"
                    "worker:1;[3 events lost] 1\n");
}

// From the session's ProfileBuilder: the same lines without a second walk
// of the events. A span open at stop ends at its thread's last event there,
// as in session.json's functions, not at the stop.
TEST(FoldedStackSink, LinesFromTheProfileBuilderEqualItsOwnTree) {
    TempDir dir;
    Synthetic s = make_stream();
    auto builder = std::make_shared<pycroscope::model::ProfileBuilder>();
    FoldedStackSink shared(dir.file("shared.folded"), builder);
    s.play(*builder, shared, 200, 2);
    EXPECT_EQ(sink_test::read_file(dir.file("shared.folded")), "main;A 120\n"
                                                               "main;A;B 60\n"
                                                               "main;A;B;C 20\n"
                                                               "worker:1;A 20\n"
                                                               "worker:1;A;B 10\n"
                                                               "worker:1;X;Y 10\n"
                                                               "worker:1;ns::f:g h 10\n"
                                                               "worker:1;[3 events lost] 1\n");
    s.end(2, &loc_z, 150);
    FoldedStackSink shared_closed(dir.file("closed.folded"), builder);
    s.play(*builder, shared_closed, 200, 5);
    EXPECT_EQ(sink_test::read_file(dir.file("closed.folded")), play(s, dir.file("own.folded"), {}, 200));
}

TEST(FoldedStackSink, OutputDoesNotDependOnBatching) {
    TempDir dir;
    const Synthetic s = make_stream();
    const std::string one = play(s, dir.file("a.folded"), {}, 200, 1);
    EXPECT_EQ(play(s, dir.file("b.folded"), {}, 200, 5), one);
    EXPECT_EQ(play(s, dir.file("c.folded"), {}, 200, 4096), one);
}

TEST(FoldedStackSink, NoLostLineWithoutLoss) {
    TempDir dir;
    Synthetic s;
    s.thread(1, "t");
    s.span(1, &loc_a, 0, 5);
    EXPECT_EQ(play(s, dir.file("s.folded"), {}, 10), "t;A 5\n");
}

TEST(FoldedStackSink, LostLineForAThreadWithoutSpans) {
    TempDir dir;
    Synthetic s;
    s.thread(1, "t");
    s.thread(2, "quiet\nthread", 7);
    s.span(1, &loc_a, 0, 5);
    s.mark(2, &loc_mark, 1);
    EXPECT_EQ(play(s, dir.file("s.folded"), {}, 10), "quiet thread;[7 events lost] 1\nt;A 5\n");
}

TEST(FoldedStackSink, SelfTimeIsConvertedAndRoundedPerStack) {
    TempDir dir;
    Synthetic s;
    s.info.calibration.ns_per_tick = 2.5;
    s.info.start_ticks = 1000;
    s.thread(1, "t");
    s.begin(1, &loc_a, 1000);
    s.span(1, &loc_b, 1001, 1004); // 3 ticks: 7.5 ns -> 8
    s.end(1, &loc_a, 1005);        // self 2 ticks: 5 ns
    s.span(1, &loc_c, 1010, 1010); // zero time: no line
    EXPECT_EQ(play(s, dir.file("s.folded"), {}, 2000), "t;A 5\nt;A;B 8\n");
}

TEST(FoldedStackSink, EmptyFrameNamesKeepTheirSeparator) {
    TempDir dir;
    Synthetic s;
    s.thread(1, "t");
    s.begin(1, &loc_empty, 0);
    s.span(1, &loc_b, 0, 10);
    s.end(1, &loc_empty, 10);
    s.span(1, &loc_b, 20, 25);
    FoldedStackOptions merged;
    merged.thread_frames = false;
    // The nested B is not the root-level B.
    EXPECT_EQ(play(s, dir.file("merged.folded"), merged, 30), ";B 10\nB 5\n");
    EXPECT_EQ(play(s, dir.file("threads.folded"), {}, 30), "t;;B 10\nt;B 5\n");
}

TEST(FoldedStackSink, EmptySessionGivesAnEmptyFile) {
    TempDir dir;
    Synthetic s;
    EXPECT_EQ(play(s, dir.file("s.folded"), {}, 10), "");
}

// --- real sessions --------------------------------------------------------

using Lines = std::map<std::string, std::uint64_t>;

Lines parse_lines(const std::string& text) {
    Lines lines;
    for (const auto& line : sink_test::lines_of(text)) {
        const auto space = line.rfind(' ');
        EXPECT_NE(space, std::string::npos) << line;
        if (space == std::string::npos) {
            continue;
        }
        EXPECT_EQ(lines.count(line.substr(0, space)), 0u) << "duplicate stack " << line;
        lines[line.substr(0, space)] = std::stoull(line.substr(space + 1));
    }
    return lines;
}

// The expected file from the raw events of each thread.
Lines reference_lines(const pycroscope_test::RecordingSink& recording, const pycroscope::SessionSummary& summary,
                      bool thread_frames) {
    Lines out;
    for (const auto& entry : recording.events_by_thread()) {
        const auto spans = sink_test::reference_spans(entry.second, summary.stop_ticks);
        for (const auto& stack_self : sink_test::reference_self_ticks(spans)) {
            const auto ns = static_cast<std::uint64_t>(summary.info.ticks_to_ns(stack_self.second) + 0.5);
            if (ns == 0) {
                continue;
            }
            std::string key;
            if (thread_frames) {
                key = summary.thread(entry.first)->name;
            }
            for (const SourceLocation* l : stack_self.first) {
                if (!key.empty()) {
                    key += ';';
                }
                key += l->display_name();
            }
            out[key] += ns;
        }
    }
    return out;
}

TEST(FoldedStackSink, RealSessionMatchesTheRecording) {
    TempDir dir;
    pycroscope::Session<pycroscope::NativeZones> session;
    auto per_thread = session.add_sink<FoldedStackSink>(dir.file("threads.folded"));
    FoldedStackOptions merged_options;
    merged_options.thread_frames = false;
    auto merged = session.add_sink<FoldedStackSink>(dir.file("merged.folded"), merged_options);
    auto recording = session.add_sink<pycroscope_test::RecordingSink>();

    pycroscope::set_thread_name("main");
    session.start();
    sink_test::run_workers(3, [](int k) {
        sink_test::workload(40 * k);
        sink_test::recurse(k + 1);
    });
    pycroscope::SessionSummary summary;
    {
        PYCRO_SCOPE_N("open at stop");
        sink_test::workload(10);
        summary = session.stop();
    }
    ASSERT_TRUE(summary.errors.empty());
    ASSERT_EQ(summary.threads.size(), 4u);

    const Lines threads = parse_lines(sink_test::read_file(per_thread->path()));
    const Lines expected_threads = reference_lines(*recording, summary, true);
    EXPECT_EQ(threads, expected_threads);
    EXPECT_EQ(threads.count("worker-3;recurse;recurse;recurse;recurse"), 1u);
    EXPECT_EQ(threads.count("worker-1;outer;inner"), 1u);
    EXPECT_EQ(threads.count("main;open at stop;outer;inner"), 1u);

    const Lines all = parse_lines(sink_test::read_file(merged->path()));
    EXPECT_EQ(all, reference_lines(*recording, summary, false));
    EXPECT_EQ(all.count("outer;inner"), 1u);
    EXPECT_EQ(all.count("open at stop;outer;inner"), 1u);
    // Merging keeps the total weight.
    std::uint64_t sum_threads = 0, sum_all = 0;
    for (const auto& l : threads) {
        sum_threads += l.second;
    }
    for (const auto& l : all) {
        sum_all += l.second;
    }
    EXPECT_EQ(sum_threads, sum_all);
}

} // namespace
} // namespace folded_stack_sink_test
