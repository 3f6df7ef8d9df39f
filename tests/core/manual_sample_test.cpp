// add_sample(): the exact events of a manual sample, interning once, and
// nothing recorded without a session.

#include <pycroscope/core/manual_sample.hpp>
#include <pycroscope/core/session.hpp>

#include "support/recording_sink.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace manual_sample_test {
namespace {

std::vector<pycroscope::Event> all_events(const pycroscope_test::RecordingSink& sink) { return sink.all_events(); }

TEST(ManualSample, WritesHeaderAndFramesOutermostFirst) {
    auto sink = std::make_shared<pycroscope_test::RecordingSink>();
    pycroscope::Session<> session;
    session.add_sink(sink);
    session.start();
    pycroscope::set_thread_name("manual-sampler");
    const std::string file = "engine.lua"; // not a literal: names are copied when interned
    ASSERT_TRUE(pycroscope::add_sample({{"main", file, 10}, {"update", file, 42}, {"draw", "gfx.lua", 7}}));
    ASSERT_TRUE(pycroscope::add_sample({{"main", file, 10}}, /*running=*/false));
    session.stop();
    pycroscope::set_thread_name("");

    const auto events = all_events(*sink);
    ASSERT_EQ(events.size(), 6u);
    const pycroscope::Event& header = events[0];
    EXPECT_EQ(header.kind, pycroscope::EventKind::sample);
    EXPECT_EQ(header.id, pycroscope::detail::current_os_tid());
    EXPECT_EQ(header.aux, 3u);
    EXPECT_EQ(header.flags, pycroscope::sample_flags::manual | pycroscope::sample_flags::running);
    ASSERT_NE(header.payload, 0u);
    EXPECT_STREQ(reinterpret_cast<const pycroscope::SourceLocation*>(header.payload)->name, "manual-sampler");
    const char* names[] = {"main", "update", "draw"};
    const char* files[] = {"engine.lua", "engine.lua", "gfx.lua"};
    const std::uint64_t lines[] = {10, 42, 7};
    for (int i = 0; i < 3; ++i) {
        const pycroscope::Event& frame = events[1 + i];
        EXPECT_EQ(frame.kind, pycroscope::EventKind::sample_frame);
        EXPECT_EQ(frame.timestamp, header.timestamp);
        EXPECT_EQ(frame.payload, lines[i]);
        EXPECT_EQ(frame.location()->kind, pycroscope::LocationKind::other);
        EXPECT_STREQ(frame.location()->name, names[i]);
        EXPECT_STREQ(frame.location()->file, files[i]);
        EXPECT_EQ(frame.location()->line, lines[i]);
    }
    EXPECT_EQ(events[4].kind, pycroscope::EventKind::sample);
    EXPECT_EQ(events[4].aux, 1u);
    EXPECT_EQ(events[4].flags, pycroscope::sample_flags::manual);
    // Interned once: the same frame is the same location.
    EXPECT_EQ(events[5].id, events[1].id);
}

TEST(ManualSample, NothingWithoutASession) {
    EXPECT_FALSE(pycroscope::add_sample({{"main", "x.cpp", 1}}));
}

TEST(ManualSample, DeepStacksKeepEveryFrame) {
    auto sink = std::make_shared<pycroscope_test::RecordingSink>();
    pycroscope::Session<> session;
    session.add_sink(sink);
    session.start();
    std::vector<std::string> storage;
    for (int i = 0; i < 100; ++i) {
        storage.push_back(std::string("f").append(std::to_string(i)));
    }
    std::vector<pycroscope::SampleFrame> frames;
    for (int i = 0; i < 100; ++i) {
        frames.push_back({storage[static_cast<std::size_t>(i)], "deep.py", static_cast<std::uint32_t>(i + 1)});
    }
    ASSERT_TRUE(pycroscope::add_sample(frames));
    session.stop();
    const auto events = all_events(*sink);
    ASSERT_EQ(events.size(), 101u);
    EXPECT_EQ(events[0].aux, 100u);
    EXPECT_STREQ(events[100].location()->name, "f99");
    EXPECT_EQ(events[100].payload, 100u);
}

} // namespace
} // namespace manual_sample_test
