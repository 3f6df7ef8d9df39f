// Atomic output: a file appears under its final name only when complete.
// AtomicFile on its own, then the file sinks inside real sessions: while
// running, after stop, after a failed start, after abort and when the commit
// itself fails.

#include "sinks/sink_test_helpers.hpp"
#include "support/json.hpp"
#include "support/recording_sink.hpp"

#include <pycroscope/core/error.hpp>
#include <pycroscope/core/session.hpp>
#include <pycroscope/core/zone.hpp>
#include <pycroscope/sinks/atomic_file.hpp>
#include <pycroscope/sinks/chrome_trace_sink.hpp>
#include <pycroscope/sinks/folded_stack_sink.hpp>
#include <pycroscope/sinks/json_summary_sink.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace atomic_file_test {
namespace {

using pycroscope::sinks::AtomicFile;
using sink_test::exists;
using sink_test::read_file;
using sink_test::TempDir;
using sink_test::temporary_of;
using sink_test::write_file;

constexpr pycroscope::SourceLocation loc_probe{"probe", "fn", "p.cpp", 1, pycroscope::LocationKind::native_zone};

// --- AtomicFile -----------------------------------------------------------

TEST(AtomicFile, WritesToTheTemporaryAndRenamesOnCommit) {
    TempDir dir;
    const std::string path = dir.file("out.txt");
    AtomicFile file(path);
    EXPECT_EQ(file.path(), path);
    EXPECT_FALSE(file.is_open());
    file.open();
    EXPECT_TRUE(file.is_open());
    EXPECT_EQ(file.temporary_path(), temporary_of(path));
    EXPECT_TRUE(exists(temporary_of(path)));
    EXPECT_FALSE(exists(path));
    file.write("hello ");
    file.write("");
    file.write("world");
    EXPECT_FALSE(exists(path));
    file.commit();
    EXPECT_FALSE(file.is_open());
    EXPECT_EQ(read_file(path), "hello world");
    EXPECT_FALSE(exists(temporary_of(path)));
    EXPECT_EQ(dir.listing(), std::vector<std::string>{"out.txt"});
}

TEST(AtomicFile, ReplacesAnExistingFileOnlyAtCommit) {
    TempDir dir;
    const std::string path = dir.file("out.txt");
    write_file(path, "old");
    AtomicFile file(path);
    file.open();
    file.write("new");
    EXPECT_EQ(read_file(path), "old");
    file.commit();
    EXPECT_EQ(read_file(path), "new");
    EXPECT_EQ(dir.listing(), std::vector<std::string>{"out.txt"});
}

TEST(AtomicFile, DiscardAndDestructionLeaveTheFinalPathAlone) {
    TempDir dir;
    const std::string path = dir.file("out.txt");
    write_file(path, "old");
    {
        AtomicFile file(path);
        file.open();
        file.write("partial");
        file.discard();
        EXPECT_FALSE(file.is_open());
        EXPECT_FALSE(exists(temporary_of(path)));
        file.discard(); // twice is harmless
        // Reopened after a discard, then dropped without commit.
        file.open();
        file.write("partial again");
        EXPECT_TRUE(exists(temporary_of(path)));
    }
    EXPECT_EQ(read_file(path), "old");
    EXPECT_EQ(dir.listing(), std::vector<std::string>{"out.txt"});
}

TEST(AtomicFile, ReopenStartsOver) {
    TempDir dir;
    const std::string path = dir.file("out.txt");
    AtomicFile file(path);
    file.open();
    file.write("first");
    file.open();
    file.write("second");
    file.commit();
    EXPECT_EQ(read_file(path), "second");
}

TEST(AtomicFile, MisuseThrowsSinkError) {
    TempDir dir;
    AtomicFile file(dir.file("out.txt"));
    EXPECT_THROW(file.write("x"), pycroscope::SinkError);
    EXPECT_THROW(file.commit(), pycroscope::SinkError);
    file.open();
    file.commit();
    EXPECT_THROW(file.write("x"), pycroscope::SinkError);
    EXPECT_THROW(file.commit(), pycroscope::SinkError);
}

TEST(AtomicFile, UnwritableLocationIsAConfigErrorNamingThePath) {
    TempDir dir;
    const std::string path = dir.file("missing-dir/out.txt");
    AtomicFile file(path);
    try {
        file.open();
        FAIL() << "open() succeeded";
    } catch (const pycroscope::ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
    EXPECT_FALSE(file.is_open());
    EXPECT_TRUE(dir.listing().empty());
    AtomicFile empty("");
    EXPECT_THROW(empty.open(), pycroscope::ConfigError);
}

TEST(AtomicFile, FailedCommitThrowsAndRemovesTheTemporary) {
    TempDir dir;
    const std::string path = dir.file("a-directory");
    sink_test::fs::create_directory(path);
    AtomicFile file(path);
    file.open();
    file.write("data");
    try {
        file.commit();
        FAIL() << "commit over a directory succeeded";
    } catch (const pycroscope::SinkError& e) {
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
    EXPECT_FALSE(exists(temporary_of(path)));
    EXPECT_TRUE(sink_test::fs::is_directory(path));
    EXPECT_EQ(dir.listing(), std::vector<std::string>{"a-directory"});
}

// --- file sinks in sessions ---------------------------------------------------

struct Outputs {
    explicit Outputs(const TempDir& dir)
        : trace(dir.file("trace.json")), summary(dir.file("session.json")), folded(dir.file("stacks.folded")) {}
    std::string trace, summary, folded;

    template <class S>
    void add_to(S& session) const {
        session.template add_sink<pycroscope::sinks::ChromeTraceSink>(trace);
        session.template add_sink<pycroscope::sinks::JsonSummarySink>(summary);
        session.template add_sink<pycroscope::sinks::FoldedStackSink>(folded);
    }
    std::vector<std::string> all() const { return {trace, summary, folded}; }
};

TEST(AtomicOutput, FinalFilesAppearOnlyAtStop) {
    TempDir dir;
    const Outputs out(dir);
    write_file(out.summary, "previous run");
    pycroscope::Session<pycroscope::NativeZones> session;
    out.add_to(session);
    session.start();
    sink_test::workload(20);
    // Running: only the temporaries; the old session.json is still the old one.
    EXPECT_FALSE(exists(out.trace));
    EXPECT_FALSE(exists(out.folded));
    EXPECT_EQ(read_file(out.summary), "previous run");
    for (const auto& path : out.all()) {
        EXPECT_TRUE(exists(temporary_of(path))) << path;
    }
    EXPECT_EQ(dir.listing().size(), 4u);
    session.stop();
    for (const auto& path : out.all()) {
        EXPECT_TRUE(exists(path)) << path;
        EXPECT_FALSE(exists(temporary_of(path))) << path;
    }
    EXPECT_EQ(dir.listing(), (std::vector<std::string>{"session.json", "stacks.folded", "trace.json"}));
    EXPECT_NO_THROW(json::parse_file(out.trace));
    const json::Value summary = json::parse_file(out.summary);
    EXPECT_EQ(summary.at("marks")[0].at("count").as_int(), 20);
    EXPECT_FALSE(read_file(out.folded).empty());
}

TEST(AtomicOutput, UnwritablePathFailsStartBeforeAnythingRecords) {
    TempDir dir;
    const Outputs out(dir);
    write_file(out.trace, "old trace");
    const std::string bad = dir.file("no-such-dir/session.json");
    {
        pycroscope::Session<pycroscope::NativeZones> session;
        session.add_sink<pycroscope::sinks::ChromeTraceSink>(out.trace);
        session.add_sink<pycroscope::sinks::JsonSummarySink>(bad);
        auto recording = session.add_sink<pycroscope_test::RecordingSink>();
        try {
            session.start();
            FAIL() << "start() succeeded with an unwritable path";
        } catch (const pycroscope::ConfigError& e) {
            EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
        }
        EXPECT_FALSE(session.running());
        // No collector started: nothing records.
        EXPECT_FALSE(pycroscope::native_zones_active());
        {
            pycroscope::Zone zone(&loc_probe);
            EXPECT_FALSE(zone.recording());
            sink_test::workload(5);
        }
        EXPECT_EQ(recording->opens(), 0);
        EXPECT_EQ(recording->event_count(), 0u);
        // The sink opened before the failing one was aborted: old file kept, no temporary.
        EXPECT_EQ(read_file(out.trace), "old trace");
        EXPECT_EQ(dir.listing(), std::vector<std::string>{"trace.json"});
    }
    // The slot is free again and a good session records only its own events.
    pycroscope::Session<pycroscope::NativeZones> good;
    auto recording = good.add_sink<pycroscope_test::RecordingSink>();
    good.add_sink<pycroscope::sinks::JsonSummarySink>(out.summary);
    good.start();
    for (int i = 0; i < 3; ++i) {
        PYCRO_SCOPE_N("counted");
    }
    good.stop();
    EXPECT_EQ(recording->event_count(), 6u);
    const json::Value doc = json::parse_file(out.summary);
    ASSERT_EQ(doc.at("zones").size(), 1u);
    EXPECT_EQ(doc.at("zones")[0].at("name").as_string(), "counted");
    EXPECT_EQ(doc.at("zones")[0].at("count").as_int(), 3);
    EXPECT_EQ(doc.at("events_total").as_int(), 6);
}

struct RefusingCollector {
    static constexpr const char* name = "refusing";
    void start(pycroscope::SessionCore&) { throw std::runtime_error("collector refused to start"); }
    void stop(pycroscope::SessionCore&) noexcept {}
};

TEST(AtomicOutput, CollectorFailureAbortsEverySink) {
    TempDir dir;
    const Outputs out(dir);
    for (const auto& path : out.all()) {
        write_file(path, "old " + path);
    }
    pycroscope::Session<pycroscope::NativeZones, RefusingCollector> session;
    out.add_to(session);
    auto recording = session.add_sink<pycroscope_test::RecordingSink>();
    EXPECT_THROW(session.start(), std::runtime_error);
    EXPECT_FALSE(session.running());
    EXPECT_FALSE(pycroscope::native_zones_active());
    EXPECT_EQ(recording->opens(), 1);
    EXPECT_EQ(recording->aborts(), 1);
    EXPECT_EQ(recording->closes(), 0);
    for (const auto& path : out.all()) {
        EXPECT_EQ(read_file(path), "old " + path);
    }
    EXPECT_EQ(dir.listing(), (std::vector<std::string>{"session.json", "stacks.folded", "trace.json"}));
}

TEST(AtomicOutput, AbortAfterOpenDiscardsTheTemporary) {
    TempDir dir;
    const Outputs out(dir);
    write_file(out.trace, "old");
    std::vector<std::shared_ptr<pycroscope::Sink>> sinks = {
        std::make_shared<pycroscope::sinks::ChromeTraceSink>(out.trace),
        std::make_shared<pycroscope::sinks::JsonSummarySink>(out.summary),
        std::make_shared<pycroscope::sinks::FoldedStackSink>(out.folded),
    };
    sink_test::Synthetic s;
    s.span(1, &loc_probe, 1, 2);
    for (auto& sink : sinks) {
        sink->open(s.info);
        s.consume_all(*sink);
        sink->abort();
        sink->abort(); // twice is harmless
    }
    EXPECT_EQ(read_file(out.trace), "old");
    EXPECT_EQ(dir.listing(), std::vector<std::string>{"trace.json"});
}

TEST(AtomicOutput, FailedCommitIsReportedAndTheOtherSinksComplete) {
    TempDir dir;
    const Outputs out(dir);
    const std::string blocked = dir.file("blocked");
    sink_test::fs::create_directory(blocked); // rename() onto a directory fails
    pycroscope::Session<pycroscope::NativeZones> session;
    out.add_to(session);
    auto failing = session.add_sink<pycroscope::sinks::FoldedStackSink>(blocked);
    session.start();
    sink_test::workload(10);
    try {
        session.stop();
        FAIL() << "stop() did not report the failed commit";
    } catch (const pycroscope::SinkError& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find(failing->describe()), std::string::npos) << what;
    }
    ASSERT_EQ(session.summary().errors.size(), 1u);
    EXPECT_NE(session.summary().errors[0].find("folded stacks '" + blocked + "'"), std::string::npos);
    EXPECT_FALSE(session.running());
    EXPECT_FALSE(exists(temporary_of(blocked)));
    EXPECT_TRUE(sink_test::fs::is_directory(blocked));
    for (const auto& path : out.all()) {
        EXPECT_TRUE(exists(path)) << path;
        EXPECT_FALSE(exists(temporary_of(path))) << path;
    }
    EXPECT_EQ(json::parse_file(out.summary).at("marks")[0].at("count").as_int(), 10);
    EXPECT_NO_THROW(json::parse_file(out.trace));
}

} // namespace
} // namespace atomic_file_test
