// Folded lines: bounded whatever the depth (runs of one frame folded, deep
// paths cut in the middle with a visible marker), equal lines merged while
// streaming, and the three folded sinks on recursion tens of thousands deep.

#include "sinks/sink_test_helpers.hpp"
#include "support/sample_events.hpp"

#include <pycroscope/model/memory_model.hpp>
#include <pycroscope/sinks/folded_lines.hpp>
#include <pycroscope/sinks/folded_stack_sink.hpp>
#include <pycroscope/sinks/memory_folded_sink.hpp>
#include <pycroscope/sinks/sampled_stack_sink.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <sstream>
#include <string>
#include <vector>

namespace folded_lines_test {
namespace {

using pycroscope::Event;
using pycroscope::EventKind;
using pycroscope::LocationKind;
using pycroscope::SourceLocation;
using pycroscope::sinks::FoldedPath;
using pycroscope::sinks::FoldingOptions;
using sink_test::Synthetic;
using sink_test::TempDir;

constexpr SourceLocation loc_main{"main", "main", "app.py", 1, LocationKind::python_function};
constexpr SourceLocation loc_f{"f", "f", "app.py", 2, LocationKind::python_function};
constexpr SourceLocation loc_g{"g", "g", "app.py", 3, LocationKind::python_function};
constexpr SourceLocation loc_line{"f:4", "f", "app.py", 4, LocationKind::python_line};
constexpr SourceLocation name_main{"main", "main", "", 0, LocationKind::other};

std::string render(const FoldedPath& path, const std::string& prefix = "T") {
    std::string line = prefix;
    path.render(line, !prefix.empty());
    return line;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        out.push_back(line);
    }
    return out;
}

TEST(FoldedPath, ShortRunsStayFramesAndLongRunsFoldIntoOneMarkedFrame) {
    FoldedPath path(FoldingOptions{4, 512});
    path.push("main");
    for (int i = 0; i < 3; ++i) {
        path.push("f");
    }
    EXPECT_EQ(render(path), "T;main;f;f;f");
    path.push("f");
    EXPECT_EQ(render(path), "T;main;f [x4]");
    path.push("g");
    path.push("f");
    EXPECT_EQ(render(path), "T;main;f [x4];g;f");
    path.pop();
    path.pop();
    path.pop();
    EXPECT_EQ(render(path), "T;main;f;f;f");
    EXPECT_EQ(path.depth(), 4u);
}

TEST(FoldedPath, DeepPathsKeepBothEndsAndCountTheFramesLeftOut) {
    FoldedPath path(FoldingOptions{0, 4});
    for (const char* name : {"a", "b", "c", "d"}) {
        path.push(name);
    }
    EXPECT_EQ(render(path), "T;a;b;c;d");
    path.push("e");
    path.push("f");
    EXPECT_EQ(render(path), "T;a;b;[truncated 2 frames];e;f");
    EXPECT_EQ(render(path, ""), "a;b;[truncated 2 frames];e;f");
}

TEST(FoldedPath, TruncationCountsTheFramesBehindAFoldedRun) {
    FoldedPath path(FoldingOptions{3, 2});
    path.push("a");
    for (int i = 0; i < 5; ++i) {
        path.push("f");
    }
    path.push("b");
    path.push("c");
    // Rendered: a, f [x5], b, c; kept: a ... c; left out: 5 f and b.
    EXPECT_EQ(render(path), "T;a;[truncated 6 frames];c");
}

TEST(FoldedPath, NamesAreEscapedForTheFormat) {
    FoldedPath path;
    path.push("x;y\nz");
    EXPECT_EQ(render(path), "T;x:y z");
}

TEST(FoldedStream, EqualLinesMergeWhereTheyFirstAppearAndZeroWeightsAreLeftOut) {
    TempDir dir;
    pycroscope::sinks::AtomicFile file(dir.file("s.folded"));
    file.open();
    int passes = 0;
    pycroscope::sinks::write_folded_stream(file, [&](auto&& emit) {
        ++passes;
        emit(std::string_view("b;c"), 2);
        emit(std::string_view("a"), 0);
        emit(std::string_view("a;b"), 5);
        emit(std::string_view("b;c"), 3);
    });
    EXPECT_EQ(passes, 2);
    EXPECT_EQ(sink_test::read_file(dir.file("s.folded")), "b;c 5\na;b 5\n");
}

// main > f > f > ... (depth calls of f), one tick apart: every frame has 2
// ticks of self time (one before its callee, one after), the innermost 1.
Synthetic deep_recursion(std::size_t depth) {
    Synthetic s;
    s.thread(1, "main");
    std::uint64_t t = 0;
    s.begin(1, &loc_main, t);
    for (std::size_t i = 0; i < depth; ++i) {
        s.begin(1, &loc_f, ++t);
    }
    for (std::size_t i = 0; i < depth; ++i) {
        s.end(1, &loc_f, ++t);
    }
    s.end(1, &loc_main, ++t);
    return s;
}

TEST(FoldedStackSink, DeepRecursionWritesOneShortLinePerDepth) {
    TempDir dir;
    constexpr std::size_t depth = 50000;
    const std::string path = dir.file("stacks.folded");
    pycroscope::sinks::FoldedStackSink sink(path);
    deep_recursion(depth).play(sink, 1000000, 4096);
    const std::vector<std::string> lines = lines_of(sink_test::read_file(path));
    ASSERT_EQ(lines.size(), depth + 1);
    EXPECT_EQ(lines[0], "main;main 2");
    EXPECT_EQ(lines[1], "main;main;f 2");
    EXPECT_EQ(lines[15], "main;main;f;f;f;f;f;f;f;f;f;f;f;f;f;f;f 2");
    EXPECT_EQ(lines[16], "main;main;f [x16] 2");
    EXPECT_EQ(lines[depth - 1], "main;main;f [x49999] 2");
    EXPECT_EQ(lines[depth], "main;main;f [x50000] 1");
    std::size_t longest = 0;
    for (const auto& line : lines) {
        longest = std::max(longest, line.size());
    }
    EXPECT_LE(longest, 64u);
}

TEST(FoldedStackSink, DeepMutualRecursionIsCutWithAMarker) {
    TempDir dir;
    Synthetic s;
    s.thread(1, "t");
    constexpr std::size_t pairs = 2000;
    std::uint64_t t = 0;
    for (std::size_t i = 0; i < pairs; ++i) {
        s.begin(1, &loc_f, t++);
        s.begin(1, &loc_g, t++);
    }
    for (std::size_t i = 0; i < pairs; ++i) {
        s.end(1, &loc_g, t++);
        s.end(1, &loc_f, t++);
    }
    pycroscope::sinks::FoldedStackOptions options;
    options.folding.max_frames = 8;
    const std::string path = dir.file("stacks.folded");
    pycroscope::sinks::FoldedStackSink sink(path, options);
    s.play(sink, t, 4096);
    const std::vector<std::string> lines = lines_of(sink_test::read_file(path));
    ASSERT_EQ(lines.size(), 2 * pairs);
    EXPECT_EQ(lines[0], "t;f 2");
    EXPECT_EQ(lines[6], "t;f;g;f;g;f;g;f 2");
    EXPECT_EQ(lines[7], "t;f;g;f;g;f;g;f;g 2");
    // 9 frames: the outermost 4, a marker for the one left out, the innermost 4.
    EXPECT_EQ(lines[8], "t;f;g;f;g;[truncated 1 frames];g;f;g;f 2");
    EXPECT_EQ(lines.back(), "t;f;g;f;g;[truncated 3992 frames];f;g;f;g 1");
}

TEST(MemoryFoldedSink, DeepRecursionWritesOneShortLinePerAllocatingDepth) {
    TempDir dir;
    Synthetic s;
    s.thread(1, "main");
    constexpr std::size_t depth = 30000;
    std::uint64_t t = 0;
    auto alloc = [&](std::uint64_t bytes) {
        Event e{++t, pycroscope::location_id(&loc_line), 0x1000 + t, 0, EventKind::mem_alloc, 0, 0};
        pycroscope::set_memory_bytes(e, bytes);
        s.add(1, e);
    };
    for (std::size_t i = 0; i < depth; ++i) {
        s.begin(1, &loc_f, ++t);
        alloc(8);
    }
    for (std::size_t i = 0; i < depth; ++i) {
        s.end(1, &loc_f, ++t);
    }
    const std::string path = dir.file("memory.folded");
    pycroscope::sinks::MemoryFoldedSink sink(path);
    s.play(sink, t + 1, 4096);
    const std::vector<std::string> lines = lines_of(sink_test::read_file(path));
    ASSERT_EQ(lines.size(), depth);
    EXPECT_EQ(lines[0], "main;f;f:4 8");
    EXPECT_EQ(lines[1], "main;f;f;f:4 8");
    EXPECT_EQ(lines[16], "main;f [x17];f:4 8");
    EXPECT_EQ(lines.back(), "main;f [x30000];f:4 8");
}

// Written from the session's memory model (which follows the stacks anyway),
// the file is the one the sink writes by following them itself.
TEST(MemoryFoldedSink, FromTheMemoryModelEqualsItsOwnWalk) {
    TempDir dir;
    Synthetic s;
    s.thread(1, "main");
    s.thread(2, "worker");
    std::uint64_t t = 0;
    auto alloc = [&](std::uint32_t thread, const SourceLocation* line, std::uint64_t bytes) {
        ++t;
        Event e{t, pycroscope::location_id(line), 0x1000 + 16 * t, 0, EventKind::mem_alloc, 0, 0};
        pycroscope::set_memory_bytes(e, bytes);
        s.add(thread, e);
    };
    alloc(1, nullptr, 100); // before any frame: "[no Python frame]"
    for (int i = 0; i < 40; ++i) {
        s.begin(1, &loc_f, ++t);
        alloc(1, &loc_line, 8);
        s.begin(2, &loc_g, ++t);
        alloc(2, &loc_line, 3);
        alloc(2, nullptr, 5);
        if (i % 3 == 0) {
            s.end(2, &loc_g, ++t);
        }
    }
    for (int i = 0; i < 40; ++i) {
        s.end(1, &loc_f, ++t);
    }
    pycroscope::sinks::MemoryFoldedSink own(dir.file("own.folded"));
    s.play(own, t + 1, 7);
    auto model = std::make_shared<pycroscope::model::MemoryModel>();
    pycroscope::sinks::MemoryFoldedSink shared(dir.file("shared.folded"), model);
    s.play(*model, shared, t + 1, 3);
    const std::string text = sink_test::read_file(dir.file("shared.folded"));
    EXPECT_EQ(text, sink_test::read_file(dir.file("own.folded")));
    EXPECT_NE(text.find("main;[no Python frame] 100\n"), std::string::npos);
    EXPECT_NE(text.find("\nworker;g;[no Python frame] "), std::string::npos);
    EXPECT_NE(text.find("\nworker;g;g;f:4 "), std::string::npos);
}

TEST(SampledStackSink, ACutSampleKeepsItsMarkerAndDeepRunsFold) {
    TempDir dir;
    Synthetic s;
    s.thread(1, "sampler");
    constexpr SourceLocation cut{"[outer frames truncated at 512]", "[truncated]", "<sampler>", 0,
                                 LocationKind::other};
    std::vector<sample_test::Frame> frames{{&cut}};
    for (int i = 0; i < 511; ++i) {
        frames.push_back({&loc_f, 2});
    }
    for (const auto& e : sample_test::sample_events(100, 7, &name_main, pycroscope::sample_flags::running, frames)) {
        s.add(1, e);
    }
    const std::string path = dir.file("stacks.folded");
    pycroscope::sinks::SampledStackSink sink(path);
    s.play(sink, 200, 4096);
    EXPECT_EQ(sink_test::read_file(path), "main;[outer frames truncated at 512];f [x511] 1\n");
}

} // namespace
} // namespace folded_lines_test
