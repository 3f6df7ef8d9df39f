// The /proc parsers on fixture text (formats from proc(5)), and ProcReader on
// this process where /proc exists.

#include "pycroscope/system/proc_stats.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace proc_stats_test {
namespace {

using namespace pycroscope::proc;

// A /proc/[pid]/stat line (52 fields) whose comm holds spaces and parentheses;
// utime 1234, stime 567, num_threads 7.
std::string stat_fixture(const std::string& comm) {
    return std::string("4242 (")
        .append(comm)
        .append(") S 1 4242 4242 34816 4242 4194304 3056 0 12 0 1234 567 0 0 20 0 7 0 1154061 ")
        .append("6184960 419 18446744073709551615 94859801919488 94859801939369 140721717245776 0 0 0 0 0 ")
        .append("0 0 0 0 17 1 0 0 0 0 0 94859801955376 94859801956992 94860814745600 140721717246600 ")
        .append("140721717246620 140721717246620 140721717247979 0\n");
}

TEST(ProcStat, ParsesCpuTicksAndThreads) {
    StatFields fields;
    ASSERT_TRUE(parse_stat(stat_fixture("python3"), fields));
    EXPECT_EQ(fields.utime_ticks, 1234u);
    EXPECT_EQ(fields.stime_ticks, 567u);
    EXPECT_EQ(fields.threads, 7u);
}

TEST(ProcStat, CommWithSpacesAndParentheses) {
    for (const char* comm : {"my worker", "a) b (c", "x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 (", "((", ")"}) {
        StatFields fields;
        ASSERT_TRUE(parse_stat(stat_fixture(comm), fields)) << comm;
        EXPECT_EQ(fields.utime_ticks, 1234u) << comm;
        EXPECT_EQ(fields.stime_ticks, 567u) << comm;
        EXPECT_EQ(fields.threads, 7u) << comm;
    }
}

TEST(ProcStat, RejectsMalformedText) {
    StatFields fields;
    fields.utime_ticks = 99;
    EXPECT_FALSE(parse_stat("", fields));
    EXPECT_FALSE(parse_stat("4242 python3 S 1", fields));       // no parentheses
    EXPECT_FALSE(parse_stat("4242 (python3) S 1 2 3 4", fields)); // cut short
    std::string text = stat_fixture("p");
    text.replace(text.find("1234"), 4, "12x4"); // utime not a number
    EXPECT_FALSE(parse_stat(text, fields));
    EXPECT_FALSE(parse_stat("4242 )p( S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18", fields));
    EXPECT_EQ(fields.utime_ticks, 99u) << "a failed parse leaves the output alone";
}

TEST(ProcStatm, ResidentPagesIsTheSecondField) {
    std::uint64_t pages = 0;
    ASSERT_TRUE(parse_statm_resident_pages("1510 459 431 5 0 123 0\n", pages));
    EXPECT_EQ(pages, 459u);
    EXPECT_FALSE(parse_statm_resident_pages("1510\n", pages));
    EXPECT_FALSE(parse_statm_resident_pages("1510 -4 431\n", pages));
    EXPECT_FALSE(parse_statm_resident_pages("", pages));
}

constexpr const char* io_fixture = "rchar: 6976\n"
                                   "wchar: 1048576\n"
                                   "syscr: 10\n"
                                   "syscw: 2\n"
                                   "read_bytes: 4096\n"
                                   "write_bytes: 16777216\n"
                                   "cancelled_write_bytes: 8192\n";

TEST(ProcIo, ParsesEveryCounter) {
    IoCounters io;
    ASSERT_TRUE(parse_io(io_fixture, io));
    EXPECT_EQ(io.rchar, 6976u);
    EXPECT_EQ(io.wchar, 1048576u);
    EXPECT_EQ(io.read_bytes, 4096u);
    EXPECT_EQ(io.write_bytes, 16777216u);
    EXPECT_EQ(io.cancelled_write_bytes, 8192u);
}

TEST(ProcIo, NeedsTheFourByteCounters) {
    IoCounters io;
    EXPECT_FALSE(parse_io("rchar: 1\nwchar: 2\nread_bytes: 3\n", io));
    EXPECT_FALSE(parse_io("", io));
    EXPECT_FALSE(parse_io("rchar: 1\nwchar: x\nread_bytes: 3\nwrite_bytes: 4\n", io));
    // Unknown keys, no final newline and no cancelled_write_bytes are fine.
    ASSERT_TRUE(parse_io("future_key: 9\nrchar: 1\nwchar: 2\nread_bytes: 3\nwrite_bytes: 4", io));
    EXPECT_EQ(io.write_bytes, 4u);
    EXPECT_EQ(io.cancelled_write_bytes, 0u);
}

constexpr const char* net_fixture =
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls "
    "carrier compressed\n"
    "    lo:    6586      59    0    0    0     0          0         0     6586      59    0    0    0     0       "
    "0          0\n"
    "  eth0:18697988     600    0    0    0     0          0         0    30720     363    0    0    0     0       "
    "0          0\n"
    " wlan0: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n";

TEST(ProcNetDev, SumsInterfacesWithoutLoopback) {
    NetCounters net;
    ASSERT_TRUE(parse_net_dev(net_fixture, net));
    EXPECT_EQ(net.rx_bytes, 18697988u + 1000u); // "eth0:18697988": no space after the colon
    EXPECT_EQ(net.tx_bytes, 30720u + 2000u);
    EXPECT_EQ(net.interfaces, 2u);
}

TEST(ProcNetDev, LoopbackWhenAsked) {
    NetCounters net;
    ASSERT_TRUE(parse_net_dev(net_fixture, net, true));
    EXPECT_EQ(net.rx_bytes, 6586u + 18697988u + 1000u);
    EXPECT_EQ(net.tx_bytes, 6586u + 30720u + 2000u);
    EXPECT_EQ(net.interfaces, 3u);
}

TEST(ProcNetDev, RejectsMalformedText) {
    NetCounters net;
    EXPECT_FALSE(parse_net_dev("", net));
    EXPECT_FALSE(parse_net_dev("eth0: 1 2 3 4 5 6 7 8 9 10\n", net)) << "no header";
    const std::string header = "Inter-|   Receive |  Transmit\n face |bytes packets|bytes packets\n";
    EXPECT_FALSE(parse_net_dev(std::string(header).append("eth0: 1 2 3\n"), net)) << "cut short";
    ASSERT_TRUE(parse_net_dev(header, net)) << "no interface is zero bytes";
    EXPECT_EQ(net.interfaces, 0u);
}

#if defined(__linux__)

TEST(ProcReader, ReadsThisProcess) {
    ProcReader reader;
    ProcSample sample;
    reader.read(sample);
    ASSERT_TRUE(sample.has_cpu);
    ASSERT_TRUE(sample.has_rss);
    ASSERT_TRUE(sample.has_threads);
    EXPECT_GT(sample.rss_bytes, 0u);
    EXPECT_GE(sample.threads, 1u);
    EXPECT_GT(sample.cpu_seconds, 0.0);
    EXPECT_EQ(sample.has_io, reader.has_io());
    EXPECT_EQ(sample.has_net, reader.has_net());
}

// The open files are re-read from offset 0: a new thread shows up in the
// next reading, exactly.
TEST(ProcReader, RereadsSeeChanges) {
    // A thread started and joined first: a runtime that adds a helper thread of
    // its own on the first pthread_create (TSan does) has it before `before`.
    std::thread([] {}).join();
    ProcReader reader;
    ProcSample before;
    reader.read(before);
    ASSERT_TRUE(before.has_threads);

    std::mutex mutex;
    std::condition_variable cv;
    bool release = false;
    std::atomic<bool> running{false};
    std::thread extra([&] {
        running = true;
        std::unique_lock<std::mutex> lock(mutex);
        cv.wait(lock, [&] { return release; });
    });
    while (!running) {
        std::this_thread::yield();
    }
    ProcSample during;
    reader.read(during);
    {
        std::lock_guard<std::mutex> lock(mutex);
        release = true;
    }
    cv.notify_all();
    extra.join();
    EXPECT_EQ(during.threads, before.threads + 1);
    ProcSample after;
    reader.read(after);
    EXPECT_EQ(after.threads, before.threads);
    EXPECT_GE(after.cpu_seconds, before.cpu_seconds);
}

// rchar excludes the reader's own /proc reads: reading alone leaves it unchanged.
TEST(ProcReader, OwnReadsAreNotCountedAsIo) {
    ProcReader reader;
    ProcSample before;
    reader.read(before);
    if (!before.has_io) {
        GTEST_SKIP() << "/proc/self/io is not available on this kernel";
    }
    ProcSample after;
    for (int i = 0; i < 50; ++i) {
        reader.read(after);
    }
    EXPECT_EQ(after.io.rchar, before.io.rchar);
}

#endif

} // namespace
} // namespace proc_stats_test
