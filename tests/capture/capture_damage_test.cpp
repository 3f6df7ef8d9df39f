// What a reader does with a file that is not a whole, good capture: a cut file
// gives every whole chunk and says it was cut; a damaged byte anywhere, a
// foreign file or a newer version is a CaptureError naming file and offset;
// and what the writer leaves behind when it is killed, aborted or out of disk.

#include "capture/capture_test_helpers.hpp"
#include "sinks/sink_test_helpers.hpp"

#include <pycroscope/capture/capture_reader.hpp>
#include <pycroscope/capture/capture_sink.hpp>
#include <pycroscope/core/error.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <sys/resource.h>

namespace capture_damage_test {
namespace {

using capture_test::Recording;
using pycroscope::capture::CaptureBatch;
using pycroscope::capture::CaptureError;
using pycroscope::capture::CaptureOptions;
using pycroscope::capture::CaptureReader;
using pycroscope::capture::CaptureSink;
using sink_test::read_file;
using sink_test::TempDir;

std::string capture_bytes(const Recording& recording, const TempDir& dir, std::size_t chunk_bytes) {
    const std::string path = dir.file("source.pycro");
    CaptureOptions options;
    options.chunk_bytes = chunk_bytes;
    recording.play_live({}, {std::make_shared<CaptureSink>(path, options)});
    return read_file(path);
}

std::uint32_t le32(const std::string& bytes, std::size_t at) {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
        v |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[at + static_cast<std::size_t>(i)])) << (8 * i);
    }
    return v;
}

// The blocks of a good capture: (end offset, events in it) per chunk, and the header's end.
struct Layout {
    std::size_t header_end = 0;
    std::vector<std::size_t> chunk_ends;
};
Layout layout_of(const std::string& bytes) {
    Layout layout;
    std::size_t at = pycroscope::capture::file_prefix_bytes;
    while (at + pycroscope::capture::block_frame_bytes <= bytes.size()) {
        const std::uint32_t tag = le32(bytes, at);
        const std::size_t end = at + pycroscope::capture::block_frame_bytes + le32(bytes, at + 4);
        if (tag == pycroscope::capture::header_tag) {
            layout.header_end = end;
        } else if (tag == pycroscope::capture::chunk_tag) {
            layout.chunk_ends.push_back(end);
        }
        at = end;
    }
    return layout;
}

struct ReadOutcome {
    std::uint64_t events = 0;
    std::uint64_t chunks = 0;
    bool complete = false;
    bool cut = false;
};
ReadOutcome read_all(CaptureReader& reader) {
    CaptureBatch batch;
    ReadOutcome out;
    while (reader.next(batch)) {
        out.events += batch.count;
    }
    out.chunks = reader.chunks_read();
    out.complete = reader.complete();
    out.cut = reader.cut();
    return out;
}

TEST(CaptureTruncation, ACutAnywhereAfterTheHeaderGivesEveryWholeChunkAndReportsTheCut) {
    TempDir dir;
    const Recording recording = capture_test::synthetic_recording(3, 20000, 21);
    const std::string bytes = capture_bytes(recording, dir, 4 << 10);
    const Layout layout = layout_of(bytes);
    ASSERT_GT(layout.chunk_ends.size(), 8u);

    // Events per whole chunk, from a reader of the good file.
    std::vector<std::uint64_t> events_through; // events read once chunk i was complete
    {
        CaptureReader reader("good", bytes.data(), bytes.size());
        CaptureBatch batch;
        std::uint64_t events = 0;
        std::uint64_t chunk = 0;
        while (reader.next(batch)) {
            if (reader.chunks_read() != chunk) {
                events_through.push_back(events);
                chunk = reader.chunks_read();
            }
            events += batch.count;
        }
        events_through.push_back(events);
        events_through.erase(events_through.begin());
    }
    ASSERT_EQ(events_through.size(), layout.chunk_ends.size());

    std::mt19937_64 rng(5);
    std::vector<std::size_t> cuts{0, 1, 7, 8, 11, 12, layout.header_end - 1, layout.header_end, bytes.size() - 1};
    for (const std::size_t end : layout.chunk_ends) {
        cuts.push_back(end);
        cuts.push_back(end - 1);
        cuts.push_back(end + 1);
    }
    for (int i = 0; i < 300; ++i) {
        cuts.push_back(static_cast<std::size_t>(rng() % bytes.size()));
    }
    for (const std::size_t size : cuts) {
        const std::string prefix = bytes.substr(0, size);
        if (size < layout.header_end) {
            try {
                CaptureReader reader("cut.pycro", prefix.data(), prefix.size());
                ADD_FAILURE() << "a capture cut at " << size << " inside its header was accepted";
            } catch (const CaptureError& e) {
                EXPECT_NE(std::string(e.what()).find("cut.pycro"), std::string::npos);
            }
            continue;
        }
        CaptureReader reader("cut.pycro", prefix.data(), prefix.size());
        const ReadOutcome out = read_all(reader);
        std::size_t whole = 0;
        while (whole < layout.chunk_ends.size() && layout.chunk_ends[whole] <= size) {
            ++whole;
        }
        EXPECT_TRUE(out.cut) << "cut at " << size;
        EXPECT_FALSE(out.complete);
        EXPECT_EQ(out.chunks, whole) << "cut at " << size;
        EXPECT_EQ(out.events, whole == 0 ? 0 : events_through[whole - 1]) << "cut at " << size;
        EXPECT_EQ(reader.cut_offset(), whole == 0 ? layout.header_end : layout.chunk_ends[whole - 1]);
        EXPECT_EQ(reader.summary().total_events, out.events);
    }
}

TEST(CaptureDamage, EverySingleBitFlipIsACaptureErrorNeverACrash) {
    TempDir dir;
    const Recording recording = capture_test::synthetic_recording(4, 250, 22);
    const std::string bytes = capture_bytes(recording, dir, 512);
    ASSERT_GT(layout_of(bytes).chunk_ends.size(), 2u);
    std::mt19937_64 rng(6);
    for (std::size_t at = 0; at < bytes.size(); ++at) {
        std::string damaged = bytes;
        damaged[at] = static_cast<char>(damaged[at] ^ (1 << (rng() % 8)));
        try {
            CaptureReader reader("flipped.pycro", damaged.data(), damaged.size());
            read_all(reader);
            ADD_FAILURE() << "a flipped bit at " << at << " went unnoticed";
        } catch (const CaptureError& e) {
            EXPECT_NE(std::string(e.what()).find("flipped.pycro"), std::string::npos);
            EXPECT_LE(e.offset(), bytes.size());
        }
    }
}

TEST(CaptureDamage, ADamagedChunkIsReportedWithItsOffset) {
    TempDir dir;
    const Recording recording = capture_test::synthetic_recording(2, 3000, 23);
    std::string bytes = capture_bytes(recording, dir, 4 << 10);
    const Layout layout = layout_of(bytes);
    const std::size_t second_chunk = layout.chunk_ends[0];
    bytes[second_chunk + 40] = static_cast<char>(bytes[second_chunk + 40] ^ 0xFF);
    const std::string path = dir.file("damaged.pycro");
    sink_test::write_file(path, bytes);
    CaptureReader reader(path);
    CaptureBatch batch;
    std::uint64_t events = 0;
    try {
        while (reader.next(batch)) {
            events += batch.count;
        }
        FAIL() << "the damaged chunk was read";
    } catch (const CaptureError& e) {
        EXPECT_EQ(e.offset(), second_chunk);
        EXPECT_EQ(e.file(), path);
        EXPECT_NE(std::string(e.what()).find("checksum"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("offset " + std::to_string(second_chunk)), std::string::npos);
    }
    EXPECT_GT(events, 0u); // the first chunk was read before
}

TEST(CaptureDamage, AForeignFileIsRejectedAsNotACapture) {
    TempDir dir;
    const std::string path = dir.file("trace.json");
    sink_test::write_file(path, "{\"traceEvents\":[]}\n");
    try {
        CaptureReader reader(path);
        FAIL() << "a JSON file was read as a capture";
    } catch (const CaptureError& e) {
        EXPECT_NE(std::string(e.what()).find("not a pycroscope capture"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos);
    }
    const std::string empty = dir.file("empty");
    sink_test::write_file(empty, "");
    EXPECT_THROW(CaptureReader{empty}, CaptureError);
    EXPECT_THROW(CaptureReader{dir.file("missing.pycro")}, CaptureError);
}

TEST(CaptureDamage, ANewerFormatVersionIsRejectedAndNamed) {
    TempDir dir;
    const Recording recording = capture_test::synthetic_recording(1, 100, 24);
    std::string bytes = capture_bytes(recording, dir, 1 << 20);
    bytes[8] = static_cast<char>(pycroscope::capture::format_version + 1);
    try {
        CaptureReader reader("newer.pycro", bytes.data(), bytes.size());
        FAIL() << "a newer version was read";
    } catch (const CaptureError& e) {
        EXPECT_NE(std::string(e.what()).find("version 2 is newer"), std::string::npos) << e.what();
        EXPECT_EQ(e.offset(), 8u);
    }
}

TEST(CaptureDamage, BytesAfterTheTrailerAreRejected) {
    TempDir dir;
    const Recording recording = capture_test::synthetic_recording(1, 100, 25);
    std::string bytes = capture_bytes(recording, dir, 1 << 20);
    bytes += "x";
    CaptureReader reader("longer.pycro", bytes.data(), bytes.size());
    EXPECT_THROW(read_all(reader), CaptureError);
}

// --- what the writer leaves ----------------------------------------------

TEST(CaptureSinkFailures, AWriterThatNeverClosesLeavesEveryWrittenChunkReadableAsCut) {
    TempDir dir;
    const Recording recording = capture_test::synthetic_recording(2, 30000, 26);
    const std::string path = dir.file("killed.pycro");
    std::uint64_t chunks = 0;
    std::uint64_t events = 0;
    {
        CaptureOptions options;
        options.chunk_bytes = 64 << 10;
        CaptureSink sink(path, options);
        sink.open(recording.info);
        for (const auto& d : recording.deliveries) {
            sink.consume(d.thread, d.events.data(), d.events.size());
        }
        chunks = sink.chunks_written();
        events = sink.events_written();
        // Destroyed without close(), as by SIGKILL: nothing more is written.
    }
    ASSERT_GT(chunks, 2u);
    CaptureReader reader(path);
    const ReadOutcome out = read_all(reader);
    EXPECT_TRUE(out.cut);
    EXPECT_EQ(out.chunks, chunks);
    EXPECT_EQ(out.events, events);
    EXPECT_LT(events, recording.total_events()); // the chunk in memory was lost, and only it
}

TEST(CaptureSinkFailures, AChunkIsWrittenOnceItIsFlushIntervalOld) {
    TempDir dir;
    const Recording recording = capture_test::synthetic_recording(1, 2000, 27);
    CaptureOptions options;
    options.flush_interval = std::chrono::milliseconds(0);
    CaptureSink sink(dir.file("often.pycro"), options);
    sink.open(recording.info);
    for (const auto& d : recording.deliveries) {
        sink.consume(d.thread, d.events.data(), d.events.size());
    }
    EXPECT_EQ(sink.chunks_written(), recording.deliveries.size());
    EXPECT_EQ(sink.events_written(), recording.total_events());
    sink.abort();
}

TEST(CaptureSinkFailures, AbortRemovesAnEmptyCaptureAndKeepsOneWithChunks) {
    TempDir dir;
    const Recording recording = capture_test::synthetic_recording(1, 2000, 28);
    const std::string empty = dir.file("empty.pycro");
    {
        CaptureSink sink(empty);
        sink.open(recording.info);
        sink.abort();
    }
    EXPECT_FALSE(sink_test::exists(empty));

    const std::string kept = dir.file("kept.pycro");
    CaptureOptions options;
    options.chunk_bytes = 1024;
    CaptureSink sink(kept, options);
    sink.open(recording.info);
    for (const auto& d : recording.deliveries) {
        sink.consume(d.thread, d.events.data(), d.events.size());
    }
    sink.abort();
    CaptureReader reader(kept);
    const ReadOutcome out = read_all(reader);
    EXPECT_TRUE(out.cut);
    EXPECT_EQ(out.events, sink.events_written());
    EXPECT_GT(out.events, 0u);
}

TEST(CaptureSinkFailures, AFullDiskFailsBeforeRecordingStarts) {
    if (!sink_test::exists("/dev/full")) {
        GTEST_SKIP() << "no /dev/full";
    }
    const Recording recording;
    CaptureSink sink("/dev/full");
    EXPECT_THROW(sink.open(recording.info), pycroscope::ConfigError);
}

// A file size limit stands in for a full disk: write() fails part way through
// a chunk. The sink throws, and the file ends at its last whole block.
TEST(CaptureSinkFailures, AWriteThatFailsMidChunkLeavesEveryWholeChunkReadable) {
    TempDir dir;
    const Recording recording = capture_test::synthetic_recording(2, 30000, 29);
    const std::string path = dir.file("full.pycro");
    CaptureOptions options;
    options.chunk_bytes = 8 << 10;
    CaptureSink sink(path, options);
    sink.open(recording.info);
    struct rlimit saved {};
    ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
    const auto previous = std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit limited = saved;
    limited.rlim_cur = 50000;
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limited), 0);
    bool failed = false;
    for (const auto& d : recording.deliveries) {
        try {
            sink.consume(d.thread, d.events.data(), d.events.size());
        } catch (const pycroscope::SinkError& e) {
            failed = true;
            EXPECT_NE(std::string(e.what()).find(path), std::string::npos);
            break;
        }
    }
    ::setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, previous);
    ASSERT_TRUE(failed);
    sink.abort();
    const std::string bytes = read_file(path);
    EXPECT_LE(bytes.size(), 50000u);
    EXPECT_EQ(bytes.size(), sink.bytes_written());
    CaptureReader reader(path);
    const ReadOutcome out = read_all(reader);
    EXPECT_TRUE(out.cut);
    EXPECT_EQ(out.chunks, sink.chunks_written());
    EXPECT_EQ(out.events, sink.events_written());
    EXPECT_EQ(reader.cut_offset(), bytes.size());
}

TEST(CaptureSinkFailures, AnUnwritableDirectoryIsAConfigError) {
    const Recording recording;
    CaptureSink sink("/nonexistent-dir/capture.pycro");
    try {
        sink.open(recording.info);
        FAIL() << "opened a capture in a missing directory";
    } catch (const pycroscope::ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/capture.pycro"), std::string::npos);
    }
}

} // namespace
} // namespace capture_damage_test
