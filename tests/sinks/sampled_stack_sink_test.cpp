// SampledStackSink: folded stacks weighted by sample counts, exact lines on
// synthetic streams cut at every batch size, the idle options, and the file
// of a real session whose samples were recorded from a test thread.

#include "sinks/sink_test_helpers.hpp"
#include "support/sample_events.hpp"

#include <pycroscope/core/session.hpp>
#include <pycroscope/core/zone.hpp>
#include <pycroscope/sinks/sampled_stack_sink.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace sampled_stack_sink_test {
namespace {

using pycroscope::LocationKind;
using pycroscope::SourceLocation;
using pycroscope::sinks::IdleSamples;
using pycroscope::sinks::SampledStackOptions;
using pycroscope::sinks::SampledStackSink;
using sample_test::Frame;
using sink_test::Synthetic;
using sink_test::TempDir;

namespace flags = pycroscope::sample_flags;

constexpr SourceLocation py_f{"f", "f", "app.py", 10, LocationKind::python_function};
constexpr SourceLocation py_g{"Cls.g", "Cls.g", "app.py", 20, LocationKind::python_function};
constexpr SourceLocation zone_z{"Z", "void z()", "z.cpp", 7, LocationKind::native_zone};
constexpr SourceLocation zone_semi{"ns::f;g\nh", "f", "s.cpp", 8, LocationKind::native_zone};
constexpr SourceLocation zone_span{"span", "span", "s.cpp", 9, LocationKind::native_zone};
constexpr SourceLocation name_main{"main", "main", "", 0, LocationKind::other};
constexpr SourceLocation name_semi{"w;1", "w;1", "", 0, LocationKind::other};

void add_sample(Synthetic& s, std::uint32_t producer, std::uint64_t ts, std::uint64_t os_tid,
                const SourceLocation* name, std::uint8_t sample_flags, const std::vector<Frame>& frames) {
    for (const auto& e : sample_test::sample_events(ts, os_tid, name, sample_flags, frames)) {
        s.add(producer, e);
    }
}

// Producer 1 ("sampler", 5 events lost) carries the samples of three
// threads; thread 2 records a span and loses events but carries no samples.
Synthetic make_stream() {
    Synthetic s;
    s.thread(1, "sampler", 5);
    s.thread(2, "recorder", 2);
    add_sample(s, 1, 100, 7, &name_main, flags::running, {{&py_f, 11}, {&zone_z}, {&py_g, 21}});
    add_sample(s, 1, 110, 7, &name_main, flags::running, {{&py_f, 12}, {&zone_z}, {&py_g, 22}});
    add_sample(s, 1, 120, 7, &name_main, 0, {{&py_f, 13}});
    add_sample(s, 1, 130, 7, &name_main, flags::running, {});
    add_sample(s, 1, 105, 8, &name_semi, flags::running, {{&zone_semi}});
    add_sample(s, 1, 115, 9, nullptr, 0, {{&py_g, 20}});
    s.span(2, &zone_span, 100, 200);
    return s;
}

// The file's lines in sorted order: the sink writes them in the order of
// the sample tree, which these tests do not pin down.
std::string sorted_lines(const std::string& text) {
    std::vector<std::string> lines;
    for (std::size_t at = 0; at < text.size();) {
        const std::size_t end = text.find('\n', at);
        lines.push_back(text.substr(at, end - at + 1));
        at = end == std::string::npos ? text.size() : end + 1;
    }
    std::sort(lines.begin(), lines.end());
    std::string out;
    for (const auto& line : lines) {
        out += line;
    }
    return out;
}

std::string play(const Synthetic& s, const std::string& path, SampledStackOptions options, std::size_t batch) {
    SampledStackSink sink(path, options);
    s.play(sink, 1000, batch);
    EXPECT_EQ(sink.profile().samples().all(), 6u);
    return sorted_lines(sink_test::read_file(path));
}

TEST(SampledStackSink, SampleCountsPerStackInCallOrder) {
    TempDir dir;
    const Synthetic s = make_stream();
    for (std::size_t batch = 1; batch <= 8; ++batch) {
        SCOPED_TRACE(batch);
        EXPECT_EQ(play(s, dir.file("stacks.folded"), SampledStackOptions{}, batch),
                  "main 1\n"
                  "main;f 1\n"
                  "main;f;Z;Cls.g 2\n"
                  "sampler;[5 events lost] 1\n"
                  "thread 9;Cls.g 1\n"
                  "w:1;ns::f:g h 1\n");
    }
}

TEST(SampledStackSink, IdleSamplesExcludedOrMarked) {
    TempDir dir;
    const Synthetic s = make_stream();
    EXPECT_EQ(play(s, dir.file("excluded.folded"), SampledStackOptions{true, IdleSamples::exclude, {}}, 3),
              "main 1\n"
              "main;f;Z;Cls.g 2\n"
              "sampler;[5 events lost] 1\n"
              "w:1;ns::f:g h 1\n");
    EXPECT_EQ(play(s, dir.file("marked.folded"), SampledStackOptions{true, IdleSamples::mark, {}}, 3),
              "main 1\n"
              "main;f;Z;Cls.g 2\n"
              "main;f;[idle] 1\n"
              "sampler;[5 events lost] 1\n"
              "thread 9;Cls.g;[idle] 1\n"
              "w:1;ns::f:g h 1\n");
}

TEST(SampledStackSink, WithoutThreadFramesEqualStacksMerge) {
    TempDir dir;
    Synthetic s = make_stream();
    add_sample(s, 1, 200, 9, nullptr, flags::running, {{&py_f, 14}}); // same stack as main's idle f
    SampledStackSink sink(dir.file("stacks.folded"), SampledStackOptions{false, IdleSamples::include, {}});
    s.play(sink, 1000, 4);
    EXPECT_EQ(sorted_lines(sink_test::read_file(dir.file("stacks.folded"))),
              "Cls.g 1\n"
              "[empty stack] 1\n"
              "f 2\n"
              "f;Z;Cls.g 2\n"
              "ns::f:g h 1\n"
              "sampler;[5 events lost] 1\n");
}

TEST(SampledStackSink, SessionWithSamplesFromATestThread) {
    TempDir dir;
    const std::string path = dir.file("stacks.folded");
    {
        pycroscope::Config config;
        config.buffer_capacity = 256; // many small batches
        pycroscope::Session<pycroscope::NativeZones> session(config);
        auto sink = session.add_sink<SampledStackSink>(path);
        session.start();
        std::thread sampler([] {
            pycroscope::set_thread_name("sampler");
            for (int i = 0; i < 300; ++i) {
                PYCRO_SCOPE_N("between samples"); // zones on the producer's ring do not disturb decoding
                const auto ts = static_cast<std::uint64_t>(1000 + i);
                ASSERT_TRUE(sample_test::record_sample(ts, 4242, &name_main, flags::running,
                                                       {{&py_f, 1}, {&zone_z}, {&py_g, 2}}));
                if (i % 3 == 0) {
                    ASSERT_TRUE(sample_test::record_sample(ts, 4243, nullptr, 0, {{&py_f, 3}}));
                }
            }
        });
        sampler.join();
        session.stop();
        EXPECT_EQ(sink->profile().samples().all(), 400u);
        EXPECT_EQ(sink->profile().incomplete_samples(), 0u);
    }
    EXPECT_EQ(sink_test::read_file(path), "main;f;Z;Cls.g 300\n"
                                          "thread 4243;f 100\n");
}

} // namespace
} // namespace sampled_stack_sink_test
