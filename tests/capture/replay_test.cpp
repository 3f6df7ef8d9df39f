// replay() feeds processors and sinks as the live drain did: the outputs of a
// replay are byte for byte those of the live run, the memory model's rewrite
// of frees included, and a cut capture still gives every whole chunk.

#include "capture/capture_test_helpers.hpp"
#include "sinks/sink_test_helpers.hpp"

#include <pycroscope/model/memory_model.hpp>
#include <pycroscope/capture/capture_reader.hpp>
#include <pycroscope/capture/capture_sink.hpp>
#include <pycroscope/capture/replay.hpp>
#include <pycroscope/sinks/chrome_trace_sink.hpp>
#include <pycroscope/sinks/folded_stack_sink.hpp>
#include <pycroscope/sinks/json_summary_sink.hpp>
#include <pycroscope/sinks/memory_folded_sink.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace replay_test {
namespace {

using capture_test::Recording;
using pycroscope::capture::CaptureOptions;
using pycroscope::capture::CaptureSink;
using pycroscope::capture::replay;
using pycroscope::capture::ReplayResult;
using sink_test::read_file;
using sink_test::TempDir;

struct Outputs {
    std::vector<std::shared_ptr<pycroscope::Sink>> sinks;
    std::vector<std::string> paths;
};

Outputs outputs_in(const TempDir& dir, const std::string& prefix) {
    Outputs o;
    o.paths = {dir.file(prefix + "session.json"), dir.file(prefix + "stacks.folded"), dir.file(prefix + "trace.json"),
               dir.file(prefix + "memory.folded")};
    o.sinks = {std::make_shared<pycroscope::sinks::JsonSummarySink>(o.paths[0]),
               std::make_shared<pycroscope::sinks::FoldedStackSink>(o.paths[1]),
               std::make_shared<pycroscope::sinks::ChromeTraceSink>(o.paths[2]),
               std::make_shared<pycroscope::sinks::MemoryFoldedSink>(o.paths[3])};
    return o;
}

std::vector<std::shared_ptr<pycroscope::EventProcessor>> processors() {
    return {std::make_shared<pycroscope::model::MemoryModel>()};
}

TEST(Replay, WritesTheSameFilesAsTheLiveRunByteForByte) {
    TempDir dir;
    const Recording recording = capture_test::synthetic_recording(3, 40000, 11);
    const std::string capture = dir.file("capture.pycro");
    Outputs live = outputs_in(dir, "live-");
    auto sinks = live.sinks;
    CaptureOptions options;
    options.chunk_bytes = 64 << 10;
    sinks.insert(sinks.begin() + 1, std::make_shared<CaptureSink>(capture, options));
    recording.play_live(processors(), sinks);

    Outputs again = outputs_in(dir, "replay-");
    const ReplayResult result = replay(capture, processors(), again.sinks);
    EXPECT_TRUE(result.complete);
    EXPECT_TRUE(result.errors.empty());
    EXPECT_EQ(result.events, recording.total_events());
    EXPECT_GT(result.chunks, 3u);
    for (std::size_t i = 0; i < live.paths.size(); ++i) {
        const std::string a = read_file(live.paths[i]);
        const std::string b = read_file(again.paths[i]);
        EXPECT_GT(a.size(), 100u) << live.paths[i];
        EXPECT_TRUE(a == b) << live.paths[i] << " differs from " << again.paths[i];
    }
}

TEST(Replay, ACutCaptureGivesEveryWholeChunkAndSaysItWasCut) {
    TempDir dir;
    const Recording recording = capture_test::synthetic_recording(2, 20000, 12);
    const std::string capture = dir.file("capture.pycro");
    CaptureOptions options;
    options.chunk_bytes = 16 << 10;
    recording.play_live({}, {std::make_shared<CaptureSink>(capture, options)});
    const std::string whole = read_file(capture);
    const std::string cut = dir.file("cut.pycro");
    sink_test::write_file(cut, whole.substr(0, whole.size() * 2 / 3));

    Outputs out = outputs_in(dir, "cut-");
    const ReplayResult result = replay(cut, processors(), out.sinks);
    EXPECT_FALSE(result.complete);
    EXPECT_GT(result.chunks, 1u);
    EXPECT_GT(result.events, 0u);
    EXPECT_LT(result.events, recording.total_events());
    EXPECT_LE(result.cut_offset, whole.size() * 2 / 3);
    EXPECT_EQ(result.summary.total_events, result.events);
    const auto trace = json::parse(read_file(out.paths[2]));
    EXPECT_TRUE(trace.is_object());
}

TEST(Replay, ADamagedChunkAbortsTheSinksAndLeavesNoOutput) {
    TempDir dir;
    const Recording recording = capture_test::synthetic_recording(2, 5000, 13);
    const std::string capture = dir.file("capture.pycro");
    CaptureOptions options;
    options.chunk_bytes = 8 << 10;
    recording.play_live({}, {std::make_shared<CaptureSink>(capture, options)});
    std::string bytes = read_file(capture);
    bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x10);
    sink_test::write_file(capture, bytes);

    Outputs out = outputs_in(dir, "bad-");
    EXPECT_THROW(replay(capture, processors(), out.sinks), pycroscope::capture::CaptureError);
    for (const auto& path : out.paths) {
        EXPECT_FALSE(sink_test::exists(path)) << path;
    }
}

} // namespace
} // namespace replay_test
