// The "hotspots" section of session.json and the text report: exact counts
// and shares of samples recorded through a real session, the top-N cut, the
// running-only view, and errors for bad options.

#include "sinks/sink_test_helpers.hpp"
#include "support/json.hpp"
#include "support/sample_events.hpp"

#include <pycroscope/core/error.hpp>
#include <pycroscope/core/session.hpp>
#include <pycroscope/sinks/hotspot_sections.hpp>
#include <pycroscope/sinks/json_summary_sink.hpp>
#include <pycroscope/sinks/sample_profile_sink.hpp>
#include <pycroscope/sinks/sampled_stack_sink.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace hotspot_sections_test {
namespace {

using pycroscope::LocationKind;
using pycroscope::SourceLocation;
using pycroscope::model::SampleProfile;
using pycroscope::sinks::HotspotOptions;
using pycroscope::sinks::JsonSummarySink;
using sample_test::Frame;
using sink_test::TempDir;

namespace flags = pycroscope::sample_flags;

constexpr SourceLocation py_main{"<module>", "<module>", "app.py", 1, LocationKind::python_function};
constexpr SourceLocation py_hot{"hot", "hot", "app.py", 11, LocationKind::python_function};
constexpr SourceLocation py_cold{"cold", "cold", "app.py", 19, LocationKind::python_function};
constexpr SourceLocation zone_w{"W", "void w()", "w.cpp", 30, LocationKind::native_zone};
constexpr SourceLocation name_main{"main", "main", "", 0, LocationKind::other};
constexpr SourceLocation name_worker{"worker", "worker", "", 0, LocationKind::other};

// 12 samples: main 7x <module>:5 > hot:12 (the last 2 idle), 3x <module>:6 >
// cold:20; worker 2x W.
template <class Record>
void record_workload(Record record) {
    for (int i = 0; i < 7; ++i) {
        record(static_cast<std::uint64_t>(100 + i), 4242, &name_main, i < 5 ? flags::running : std::uint8_t{0},
               std::vector<Frame>{{&py_main, 5}, {&py_hot, 12}});
    }
    for (int i = 0; i < 3; ++i) {
        record(static_cast<std::uint64_t>(200 + i), 4242, &name_main, flags::running,
               std::vector<Frame>{{&py_main, 6}, {&py_cold, 20}});
    }
    for (int i = 0; i < 2; ++i) {
        record(static_cast<std::uint64_t>(300 + i), 4243, &name_worker, flags::running, std::vector<Frame>{{&zone_w}});
    }
}

SampleProfile synthetic_profile() {
    std::vector<pycroscope::Event> events;
    record_workload([&](std::uint64_t ts, std::uint64_t tid, const SourceLocation* name, std::uint8_t f,
                        const std::vector<Frame>& frames) { sample_test::append_sample(events, ts, tid, name, f, frames); });
    SampleProfile profile;
    profile.consume(1, events.data(), events.size());
    return profile;
}

TEST(HotspotSections, SessionJsonHoldsExactSharesCutToTopN) {
    TempDir dir;
    const std::string path = dir.file("session.json");
    {
        pycroscope::Session<> session;
        auto stacks = session.add_sink<pycroscope::sinks::SampledStackSink>(dir.file("stacks.folded"));
        auto summary = session.add_sink<JsonSummarySink>(path);
        HotspotOptions options;
        options.top = 3;
        options.rate_hz = 100;
        pycroscope::sinks::add_hotspot_section(*summary, stacks->profile(), options);
        session.start();
        std::thread sampler([] {
            record_workload([](std::uint64_t ts, std::uint64_t tid, const SourceLocation* name, std::uint8_t f,
                               const std::vector<Frame>& frames) {
                ASSERT_TRUE(sample_test::record_sample(ts, tid, name, f, frames));
            });
        });
        sampler.join();
        session.stop();
    }
    const json::Value doc = json::parse_file(path);
    const json::Value& h = doc.at("hotspots");
    EXPECT_EQ(h.at("samples").as_int(), 12);
    EXPECT_EQ(h.at("running").as_int(), 10);
    EXPECT_EQ(h.at("idle").as_int(), 2);
    EXPECT_EQ(h.at("incomplete").as_int(), 0);
    EXPECT_EQ(h.at("rate_hz").as_number(), 100.0);
    EXPECT_EQ(h.at("basis").as_string(), "all");

    const json::Value& functions = h.at("functions");
    ASSERT_EQ(functions.size(), 3u); // <module> (self 0) is cut
    struct ExpectedFunction {
        const char* name;
        const char* kind;
        const char* file;
        int line;
        int self, total;
    };
    const ExpectedFunction expected[] = {
        {"hot", "python", "app.py", 11, 7, 7}, {"cold", "python", "app.py", 19, 3, 3}, {"W", "zone", "w.cpp", 30, 2, 2}};
    for (std::size_t i = 0; i < 3; ++i) {
        SCOPED_TRACE(expected[i].name);
        const json::Value& f = functions[i];
        EXPECT_EQ(f.at("name").as_string(), expected[i].name);
        EXPECT_EQ(f.at("kind").as_string(), expected[i].kind);
        EXPECT_EQ(f.at("file").as_string(), expected[i].file);
        EXPECT_EQ(f.at("line").as_int(), expected[i].line);
        EXPECT_EQ(f.at("self_samples").as_int(), expected[i].self);
        EXPECT_EQ(f.at("total_samples").as_int(), expected[i].total);
        EXPECT_DOUBLE_EQ(f.at("self_pct").as_number(), 100.0 * expected[i].self / 12);
        EXPECT_DOUBLE_EQ(f.at("total_pct").as_number(), 100.0 * expected[i].total / 12);
    }

    const json::Value& lines = h.at("lines");
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_EQ(lines[0].at("function").as_string(), "hot");
    EXPECT_EQ(lines[0].at("file").as_string(), "app.py");
    EXPECT_EQ(lines[0].at("line").as_int(), 12);
    EXPECT_EQ(lines[0].at("samples").as_int(), 7);
    EXPECT_DOUBLE_EQ(lines[0].at("pct").as_number(), 100.0 * 7 / 12);
    EXPECT_EQ(lines[1].at("function").as_string(), "cold");
    EXPECT_EQ(lines[1].at("line").as_int(), 20);
    EXPECT_DOUBLE_EQ(lines[1].at("pct").as_number(), 25.0);
    // Third: the caller's line with most samples below it.
    EXPECT_EQ(lines[2].at("function").as_string(), "<module>");
    EXPECT_EQ(lines[2].at("line").as_int(), 5);
    EXPECT_EQ(lines[2].at("samples").as_int(), 0);
    EXPECT_EQ(lines[2].at("total_samples").as_int(), 7);
    EXPECT_DOUBLE_EQ(lines[2].at("total_pct").as_number(), 100.0 * 7 / 12);

    const json::Value& threads = h.at("threads");
    ASSERT_EQ(threads.size(), 2u);
    EXPECT_EQ(threads[0].at("os_tid").as_int(), 4242);
    EXPECT_EQ(threads[0].at("name").as_string(), "main");
    EXPECT_EQ(threads[0].at("samples").as_int(), 10);
    EXPECT_EQ(threads[0].at("running").as_int(), 8);
    EXPECT_EQ(threads[0].at("idle").as_int(), 2);
    EXPECT_DOUBLE_EQ(threads[0].at("pct").as_number(), 100.0 * 10 / 12);
    EXPECT_EQ(threads[1].at("name").as_string(), "worker");
    EXPECT_EQ(threads[1].at("samples").as_int(), 2);

    // The built-in sections are still there.
    EXPECT_EQ(doc.at("format").as_string(), "pycroscope-session");
    // Stacks in the order they were first sampled (the file is streamed).
    EXPECT_EQ(sink_test::read_file(dir.file("stacks.folded")), "main;<module>;hot 7\n"
                                                                "main;<module>;cold 3\n"
                                                                "worker;W 2\n");
}

TEST(HotspotSections, RunningOnlySharesWithoutRate) {
    const SampleProfile profile = synthetic_profile();
    std::string out;
    pycroscope::sinks::JsonWriter writer(out);
    HotspotOptions options;
    options.include_idle = false;
    options.top = 0;
    pycroscope::sinks::write_hotspots(writer, profile, options);
    const json::Value h = json::parse(out);
    EXPECT_FALSE(h.contains("rate_hz"));
    EXPECT_EQ(h.at("basis").as_string(), "running");
    const json::Value& functions = h.at("functions");
    ASSERT_EQ(functions.size(), 4u);
    EXPECT_EQ(functions[0].at("name").as_string(), "hot");
    EXPECT_EQ(functions[0].at("self_samples").as_int(), 5);
    EXPECT_DOUBLE_EQ(functions[0].at("self_pct").as_number(), 50.0);
    EXPECT_EQ(functions[1].at("name").as_string(), "cold");
    EXPECT_DOUBLE_EQ(functions[1].at("self_pct").as_number(), 30.0);
    EXPECT_EQ(functions[2].at("name").as_string(), "W");
    EXPECT_DOUBLE_EQ(functions[2].at("self_pct").as_number(), 20.0);
    EXPECT_EQ(functions[3].at("name").as_string(), "<module>");
    EXPECT_DOUBLE_EQ(functions[3].at("total_pct").as_number(), 80.0);
    EXPECT_EQ(h.at("lines").size(), 4u);
    EXPECT_DOUBLE_EQ(h.at("threads")[0].at("pct").as_number(), 80.0);
}

TEST(HotspotSections, TextReportListsTopFunctionsAndLines) {
    const SampleProfile profile = synthetic_profile();
    HotspotOptions options;
    options.top = 2;
    options.rate_hz = 100;
    EXPECT_EQ(pycroscope::sinks::format_hotspot_report(profile, options),
              "pycroscope: 12 samples (10 running, 2 idle) of 2 thread(s) at 100 Hz\n"
              "top functions (share of all samples)\n"
              "   self%  total%     self    total  function\n"
              "   58.3%   58.3%        7        7  hot (app.py:11)\n"
              "   25.0%   25.0%        3        3  cold (app.py:19)\n"
              "top lines (share of all samples)\n"
              "   self%  total%     self    total  line\n"
              "   58.3%   58.3%        7        7  app.py:12  hot\n"
              "   25.0%   25.0%        3        3  app.py:20  cold\n");
    EXPECT_EQ(pycroscope::sinks::format_hotspot_report(SampleProfile{}),
              "pycroscope: 0 samples (0 running, 0 idle) of 0 thread(s)\nno samples\n");
}

TEST(HotspotSections, BadOptionsAndDuplicatesAreConfigErrors) {
    TempDir dir;
    JsonSummarySink summary(dir.file("session.json"));
    pycroscope::sinks::SampleProfileSink profile;
    HotspotOptions bad;
    bad.rate_hz = -1;
    EXPECT_THROW(pycroscope::sinks::add_hotspot_section(summary, profile.profile(), bad), pycroscope::ConfigError);
    pycroscope::sinks::add_hotspot_section(summary, profile.profile());
    EXPECT_THROW(pycroscope::sinks::add_hotspot_section(summary, profile.profile()), pycroscope::ConfigError);
}

TEST(HotspotSections, SampleProfileSinkFeedsTheSectionWithoutAFile) {
    TempDir dir;
    const std::string path = dir.file("session.json");
    {
        pycroscope::Session<> session;
        auto profile = session.add_sink<pycroscope::sinks::SampleProfileSink>();
        auto summary = session.add_sink<JsonSummarySink>(path);
        pycroscope::sinks::add_hotspot_section(*summary, profile->profile());
        session.start();
        record_workload([](std::uint64_t ts, std::uint64_t tid, const SourceLocation* name, std::uint8_t f,
                           const std::vector<Frame>& frames) {
            ASSERT_TRUE(sample_test::record_sample(ts, tid, name, f, frames));
        });
        session.stop();
    }
    const json::Value h = json::parse_file(path).at("hotspots");
    EXPECT_EQ(h.at("samples").as_int(), 12);
    EXPECT_EQ(h.at("functions").size(), 4u);
    EXPECT_EQ(dir.listing(), std::vector<std::string>{"session.json"});
}

} // namespace
} // namespace hotspot_sections_test
