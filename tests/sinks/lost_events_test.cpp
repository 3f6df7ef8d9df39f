// Lost events in a real session, made deterministic: the drain thread is held
// inside its first consume() while a small drop_newest buffer overflows. Every
// file sink must then report exactly the loss the session counted.

#include "sinks/sink_test_helpers.hpp"
#include "support/json.hpp"
#include "support/recording_sink.hpp"

#include <pycroscope/core/session.hpp>
#include <pycroscope/core/zone.hpp>
#include <pycroscope/sinks/chrome_trace_sink.hpp>
#include <pycroscope/sinks/folded_stack_sink.hpp>
#include <pycroscope/sinks/json_summary_sink.hpp>

#include <gtest/gtest.h>

#include <string>

namespace lost_events_test {
namespace {

using sink_test::TempDir;

TEST(LostEvents, EverySinkReportsTheLossOfARealSession) {
    TempDir dir;
    pycroscope::Config config;
    config.buffer_capacity = 64;
    config.overflow = pycroscope::OverflowPolicy::drop_newest;
    pycroscope::Session<pycroscope::NativeZones> session(config);
    auto staller = session.add_sink<pycroscope_test::StallingSink>();
    auto summary_sink = session.add_sink<pycroscope::sinks::JsonSummarySink>(dir.file("session.json"));
    auto folded = session.add_sink<pycroscope::sinks::FoldedStackSink>(dir.file("stacks.folded"));
    auto trace = session.add_sink<pycroscope::sinks::ChromeTraceSink>(dir.file("trace.json"));
    pycroscope::SessionSummary summary;
    {
        pycroscope_test::StallingSink::ReleaseOnExit release{*staller};
        pycroscope::set_thread_name("main");
        session.start();
        PYCRO_MARK("first");
        ASSERT_TRUE(staller->wait_until_stalled());
        // The drain holds the first event; 64 more fit, the other 36 are dropped.
        for (int i = 0; i < 100; ++i) {
            PYCRO_MARK("burst");
        }
        staller->release();
        summary = session.stop();
    }
    ASSERT_EQ(summary.threads.size(), 1u);
    EXPECT_EQ(summary.threads[0].events, 65u);
    EXPECT_EQ(summary.threads[0].lost, 36u);
    EXPECT_EQ(summary.total_lost, 36u);

    const json::Value doc = json::parse_file(summary_sink->path());
    EXPECT_EQ(doc.at("lost_events").as_int(), 36);
    EXPECT_EQ(doc.at("events_total").as_int(), 65);
    EXPECT_EQ(doc.at("threads")[0].at("lost").as_int(), 36);
    EXPECT_EQ(doc.at("threads")[0].at("events").as_int(), 65);
    EXPECT_EQ(doc.at("buffer").at("capacity_events").as_int(), 64);
    EXPECT_EQ(doc.at("buffer").at("overflow").as_string(), "drop_newest");
    std::int64_t marks = 0;
    for (const auto& m : doc.at("marks").items()) {
        marks += m.at("count").as_int();
    }
    EXPECT_EQ(marks, 65);

    // Marks make no stacks: the lost line is the whole file.
    EXPECT_EQ(sink_test::read_file(folded->path()), "main;[36 events lost] 1\n");

    const json::Value chrome = json::parse_file(trace->path());
    EXPECT_EQ(chrome.at("otherData").at("lost_events").as_int(), 36);
    std::size_t lost_instants = 0, instants = 0;
    for (const auto& e : chrome.at("traceEvents").items()) {
        if (e.at("ph").as_string() != "i") {
            continue;
        }
        if (e.at("name").as_string() == "pycroscope: 36 events lost") {
            ++lost_instants;
            EXPECT_EQ(e.at("tid").as_uint(), summary.threads[0].index);
            EXPECT_EQ(sink_test::us_text_to_ns(e.at("ts")), summary.info.session_ns(summary.stop_ticks));
        } else {
            ++instants;
        }
    }
    EXPECT_EQ(lost_instants, 1u);
    EXPECT_EQ(instants, 65u);
}

} // namespace
} // namespace lost_events_test
