// SystemMonitor in real sessions: counters that follow what the test does to
// the process (memory, CPU, file and socket I/O, threads), edge-triggered
// alerts, option validation, and a prompt stop whatever the interval.

#include "pycroscope/core/error.hpp"
#include "pycroscope/core/session.hpp"
#include "pycroscope/system/system_monitor.hpp"
#include "support/recording_sink.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <arpa/inet.h>
#include <csignal>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#endif

namespace system_monitor_test {
namespace {

using pycroscope::ConfigError;
using pycroscope::Event;
using pycroscope::EventKind;
using pycroscope::Session;
using pycroscope::SystemAlertRule;
using pycroscope::SystemMetric;
using pycroscope::SystemMonitor;
using pycroscope_test::RecordingSink;
using Clock = std::chrono::steady_clock;

constexpr double mib = 1024.0 * 1024.0;

pycroscope::Config small_config() {
    pycroscope::Config config;
    config.buffer_capacity = 4096;
    return config;
}

struct Monitored {
    explicit Monitored(std::chrono::milliseconds interval) : session(small_config()) {
        sink = session.add_sink<RecordingSink>();
        monitor().options.interval = interval;
    }
    SystemMonitor& monitor() { return session.collector<SystemMonitor>(); }

    // Waits until the monitor has taken `more` samples after this call.
    bool wait_samples(std::uint64_t more, std::chrono::seconds timeout = std::chrono::seconds(30)) {
        const std::uint64_t target = monitor().report().samples + more;
        const auto deadline = Clock::now() + timeout;
        while (monitor().report().samples < target) {
            if (Clock::now() > deadline) {
                return false;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        return true;
    }

    Session<SystemMonitor> session;
    std::shared_ptr<RecordingSink> sink;
};

#if defined(__linux__)

bool named(const Event& e, const std::string& name) {
    return e.location() != nullptr && name == e.location()->display_name();
}

// The counter's values in recording order (they all come from one thread).
std::vector<double> counter_values(const RecordingSink& sink, const std::string& name) {
    std::vector<double> values;
    for (const Event& e : sink.all_events()) {
        if (e.kind == EventKind::counter && named(e, name)) {
            values.push_back(e.value());
        }
    }
    return values;
}

std::vector<Event> marks(const RecordingSink& sink) {
    std::vector<Event> out;
    for (const Event& e : sink.all_events()) {
        if (e.kind == EventKind::instant) {
            out.push_back(e);
        }
    }
    return out;
}

#endif

// A thread that exists until release(); lets a test set the thread count.
class ParkedThreads {
public:
    explicit ParkedThreads(int count) {
        for (int i = 0; i < count; ++i) {
            threads_.emplace_back([this] {
                std::unique_lock<std::mutex> lock(mutex_);
                ++started_;
                cv_.notify_all();
                cv_.wait(lock, [this] { return released_; });
            });
        }
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return started_ == count; });
    }
    ~ParkedThreads() { release(); }
    void release() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            released_ = true;
        }
        cv_.notify_all();
        for (auto& t : threads_) {
            if (t.joinable()) {
                t.join();
            }
        }
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    int started_ = 0;
    bool released_ = false;
    std::vector<std::thread> threads_;
};

// --- options --------------------------------------------------------------

TEST(SystemMonitorOptions, RejectsBadValues) {
    pycroscope::SystemMonitorOptions options;
    EXPECT_NO_THROW(options.validate());
    options.interval = std::chrono::milliseconds(0);
    EXPECT_THROW(options.validate(), ConfigError);
    options.interval = std::chrono::milliseconds(-5);
    EXPECT_THROW(options.validate(), ConfigError);
    options.interval = std::chrono::hours(2);
    EXPECT_THROW(options.validate(), ConfigError);
    options.interval = std::chrono::milliseconds(1);
    EXPECT_NO_THROW(options.validate());

    const auto with_rule = [&](SystemAlertRule rule) {
        pycroscope::SystemMonitorOptions o;
        o.alerts.push_back(rule);
        return o;
    };
    SystemAlertRule good{SystemMetric::cpu_percent, 90, 1, 0.1};
    EXPECT_NO_THROW(with_rule(good).validate());
    SystemAlertRule bad = good;
    bad.threshold = 0;
    EXPECT_THROW(with_rule(bad).validate(), ConfigError);
    bad.threshold = -1;
    EXPECT_THROW(with_rule(bad).validate(), ConfigError);
    bad.threshold = std::nan("");
    EXPECT_THROW(with_rule(bad).validate(), ConfigError);
    bad = good;
    bad.sustained_samples = 0;
    EXPECT_THROW(with_rule(bad).validate(), ConfigError);
    bad = good;
    bad.hysteresis = 1;
    EXPECT_THROW(with_rule(bad).validate(), ConfigError);
    bad.hysteresis = -0.5;
    EXPECT_THROW(with_rule(bad).validate(), ConfigError);
}

TEST(SystemMonitorOptions, BadOptionsRefuseToStart) {
    Monitored run(std::chrono::milliseconds(0));
    try {
        run.session.start();
        FAIL() << "start() accepted a zero interval";
    } catch (const ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("interval"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(run.session.running());
    EXPECT_EQ(run.monitor().report().samples, 0u);
    // The same session starts once the value is fixed.
    run.monitor().options.interval = std::chrono::milliseconds(50);
    run.session.start();
    EXPECT_TRUE(run.session.running());
    run.session.stop();
}

TEST(SystemAlertSpec, ParsesCommandLineForms) {
    SystemAlertRule rule = pycroscope::parse_system_alert("rss_mb=500");
    EXPECT_EQ(rule.metric, SystemMetric::rss_bytes);
    EXPECT_EQ(rule.threshold, 500 * mib);
    EXPECT_EQ(rule.sustained_samples, 1u);

    rule = pycroscope::parse_system_alert("cpu=90:3");
    EXPECT_EQ(rule.metric, SystemMetric::cpu_percent);
    EXPECT_EQ(rule.threshold, 90.0);
    EXPECT_EQ(rule.sustained_samples, 3u);

    rule = pycroscope::parse_system_alert("disk_write_mb=0.5");
    EXPECT_EQ(rule.metric, SystemMetric::disk_write_bytes);
    EXPECT_EQ(rule.threshold, 0.5 * mib);

    rule = pycroscope::parse_system_alert("net_tx_bytes=1000");
    EXPECT_EQ(rule.metric, SystemMetric::net_tx_bytes);
    EXPECT_EQ(rule.threshold, 1000.0);
    EXPECT_EQ(rule.describe(), "net_tx_bytes > 1000");

    for (const char* bad : {"", "rss_mb", "=5", "rss=5", "rss_mb=", "rss_mb=abc", "rss_mb=5x", "cpu=-1", "cpu=0",
                            "cpu=90:0", "cpu=90:x", "cpu=90:", "cpu=inf", "cpu=nan", "cpu= 5", "cpu=5 ", "cpu=0,5"}) {
        EXPECT_THROW(pycroscope::parse_system_alert(bad), ConfigError) << bad;
    }
}

#if defined(__linux__)

// --- life cycle -----------------------------------------------------------

TEST(SystemMonitor, FirstSampleAtStartAndPromptStop) {
    Monitored run(std::chrono::seconds(10));
    run.session.start();
    // start() returns once the first sample is in, not an interval later.
    EXPECT_EQ(run.monitor().report().samples, 1u);
    const auto before_stop = Clock::now();
    const auto summary = run.session.stop();
    const auto stop_took = Clock::now() - before_stop;
    EXPECT_LT(stop_took, std::chrono::seconds(5)) << "stop() waited out the 10 s interval";

    const auto report = run.monitor().report();
    EXPECT_EQ(report.samples, 2u) << "one sample at start, one at stop";
    EXPECT_EQ(report.interval, std::chrono::seconds(10));
    EXPECT_EQ(counter_values(*run.sink, "system.rss_bytes").size(), 2u);
    EXPECT_EQ(counter_values(*run.sink, "system.threads").size(), 2u);
    // Every system counter comes from the monitor's own, named thread.
    const auto by_thread = run.sink->events_by_thread();
    ASSERT_EQ(by_thread.size(), 1u);
    const auto* thread = summary.thread(by_thread.begin()->first);
    ASSERT_NE(thread, nullptr);
    EXPECT_EQ(thread->name, "pycroscope.system");
}

TEST(SystemMonitor, DisabledRecordsNothing) {
    Monitored run(std::chrono::milliseconds(0)); // not validated when disabled
    run.monitor().options.enabled = false;
    run.session.start();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    run.session.stop();
    EXPECT_EQ(run.monitor().report().samples, 0u);
    EXPECT_EQ(run.sink->event_count(), 0u);
}

TEST(SystemMonitor, RestartsWithFreshStatistics) {
    Monitored run(std::chrono::milliseconds(5));
    run.session.start();
    ASSERT_TRUE(run.wait_samples(3));
    run.session.stop();
    EXPECT_GE(run.monitor().report().samples, 4u);
    run.monitor().options.interval = std::chrono::seconds(10);
    run.session.start();
    run.session.stop();
    EXPECT_EQ(run.monitor().report().samples, 2u);
    EXPECT_EQ(counter_values(*run.sink, "system.rss_bytes").size(), 2u);
}

// --- metrics follow the process ---------------------------------------------

TEST(SystemMonitor, RssCounterFollowsTouchedMemory) {
    Monitored run(std::chrono::milliseconds(50));
    run.session.start();
    const double first = run.monitor().report()[SystemMetric::rss_bytes].last;
    constexpr std::size_t size = 200u * 1024u * 1024u;
    std::unique_ptr<char[]> block(new char[size]);
    std::memset(block.get(), 1, size); // touched: resident, not just reserved
    ASSERT_TRUE(run.wait_samples(2));
    EXPECT_EQ(block[size / 2], 1);
    run.session.stop();

    const auto values = counter_values(*run.sink, "system.rss_bytes");
    ASSERT_GE(values.size(), 3u);
    EXPECT_EQ(values.front(), first);
    const double peak = *std::max_element(values.begin(), values.end());
    EXPECT_GE(peak - first, 180 * mib) << "first " << first << " peak " << peak;
    EXPECT_LT(peak - first, 1024 * mib);
    const auto report = run.monitor().report();
    EXPECT_EQ(report[SystemMetric::rss_bytes].max, peak);
    EXPECT_EQ(report[SystemMetric::rss_bytes].samples, values.size());
}

double thread_cpu_seconds() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double process_cpu_seconds() {
    timespec ts{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Ground truth from the busy thread itself: it runs until it has used 300 ms
// of CPU, however loaded the machine, and measures the share of a core it got.
// The counter must (a) account for at least that CPU over the session and no
// more than the whole process used, and (b) show a sample near the thread's
// share (above 50 on an idle machine; about 40 on a 2-core box where another
// process competes).
TEST(SystemMonitor, CpuPercentSeesABusyThread) {
    Monitored run(std::chrono::milliseconds(50));
    const double process_before = process_cpu_seconds();
    run.session.start();
    double busy_share = 0;
    std::thread busy([&busy_share] {
        const double start = thread_cpu_seconds();
        const auto wall_start = Clock::now();
        volatile std::uint64_t sink = 0;
        while (thread_cpu_seconds() - start < 0.3) {
            for (int i = 0; i < 10000; ++i) {
                sink = sink + static_cast<std::uint64_t>(i);
            }
        }
        const double wall = std::chrono::duration<double>(Clock::now() - wall_start).count();
        busy_share = 100.0 * (thread_cpu_seconds() - start) / wall;
    });
    busy.join();
    ASSERT_TRUE(run.wait_samples(1));
    run.session.stop();
    const double process_used = process_cpu_seconds() - process_before;

    // Sample times from rss_bytes (one per sample, the first at start);
    // each cpu_percent covers the time since the previous CPU reading.
    const double ns_per_tick = run.sink->info().calibration.ns_per_tick;
    std::vector<std::uint64_t> sample_times;
    std::vector<std::pair<std::uint64_t, double>> cpu;
    for (const Event& e : run.sink->all_events()) {
        if (e.kind == EventKind::counter && named(e, "system.rss_bytes")) {
            sample_times.push_back(e.timestamp);
        } else if (e.kind == EventKind::counter && named(e, "system.cpu_percent")) {
            cpu.emplace_back(e.timestamp, e.value());
        }
    }
    ASSERT_GE(cpu.size(), 3u);
    ASSERT_FALSE(sample_times.empty());
    double accounted = 0;
    double peak = 0;
    std::uint64_t previous = sample_times.front();
    for (const auto& point : cpu) {
        EXPECT_GE(point.second, 0.0);
        accounted += point.second / 100.0 * static_cast<double>(point.first - previous) * ns_per_tick * 1e-9;
        previous = point.first;
        peak = std::max(peak, point.second);
    }
    EXPECT_GE(accounted, 0.3 * 0.9) << "the busy thread alone used 300 ms";
    EXPECT_LE(accounted, process_used * 1.1 + 0.02);
    EXPECT_GT(peak, 0.8 * std::min(busy_share, 100.0)) << "busy thread share " << busy_share << "%";
    // Can exceed 100 (several threads), never the whole machine plus noise.
    const double cores = std::max(1u, std::thread::hardware_concurrency());
    EXPECT_LT(peak, 100.0 * cores * 1.5);
}

std::string scratch_file(const char* name) {
    // The working directory (the build directory under ctest): tmpfs would count no storage bytes.
    return (std::filesystem::current_path() / (std::string(name) + "." + std::to_string(::getpid()))).string();
}

TEST(SystemMonitor, DiskCountersSeeAFsyncedFile) {
    const std::string path = scratch_file("pycroscope_system_monitor_disk");
    Monitored run(std::chrono::milliseconds(50));
    run.session.start();
    constexpr std::size_t size = 16u * 1024u * 1024u;
    {
        std::vector<char> data(1024 * 1024, 'x');
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ASSERT_GE(fd, 0) << path;
        for (std::size_t written = 0; written < size; written += data.size()) {
            ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
        }
        ASSERT_EQ(::fsync(fd), 0);
        ::close(fd);
    }
    {
        std::vector<char> data(1024 * 1024);
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        ASSERT_GE(fd, 0);
        std::size_t read_total = 0;
        ssize_t n;
        while ((n = ::read(fd, data.data(), data.size())) > 0) {
            read_total += static_cast<std::size_t>(n);
        }
        ::close(fd);
        ASSERT_EQ(read_total, size);
    }
    run.session.stop();
    std::filesystem::remove(path);

    const auto report = run.monitor().report();
    if (report[SystemMetric::io_write_bytes].samples == 0) {
        GTEST_SKIP() << "/proc/self/io is not available on this kernel";
    }
    // wchar/rchar: exactly our 16 MiB plus what else the process wrote meanwhile (test output).
    const double wchar = report[SystemMetric::io_write_bytes].last;
    const double rchar = report[SystemMetric::io_read_bytes].last;
    EXPECT_GE(wchar, static_cast<double>(size));
    EXPECT_LT(wchar, static_cast<double>(size) + 1 * mib);
    EXPECT_GE(rchar, static_cast<double>(size));
    // Storage bytes: fsync forced the pages out, unless this filesystem keeps no count.
    const double write_bytes = report[SystemMetric::disk_write_bytes].last;
    if (write_bytes > 0) {
        EXPECT_GE(write_bytes, 15 * mib);
    }
    const auto values = counter_values(*run.sink, "system.io_write_bytes");
    ASSERT_GE(values.size(), 2u);
    EXPECT_EQ(values.front(), 0.0) << "byte counters start at the session";
    EXPECT_TRUE(std::is_sorted(values.begin(), values.end()));
}

TEST(SystemMonitor, NetworkCountersSeeLoopbackTraffic) {
    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener < 0) {
        GTEST_SKIP() << "no IPv4 sockets here";
    }
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || ::listen(listener, 1) != 0 ||
        ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        ::close(listener);
        GTEST_SKIP() << "no loopback interface here";
    }
    Monitored run(std::chrono::milliseconds(50));
    run.monitor().options.include_loopback = true;
    run.session.start();
    constexpr std::size_t size = 4u * 1024u * 1024u;
    std::size_t received = 0;
    std::thread receiver([listener, &received] {
        const int peer = ::accept(listener, nullptr, nullptr);
        std::vector<char> data(64 * 1024);
        ssize_t n;
        while (peer >= 0 && (n = ::read(peer, data.data(), data.size())) > 0) {
            received += static_cast<std::size_t>(n);
        }
        if (peer >= 0) {
            ::close(peer);
        }
    });
    const int sender = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(sender, 0);
    ASSERT_EQ(::connect(sender, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    std::vector<char> data(64 * 1024, 'n');
    for (std::size_t sent = 0; sent < size;) {
        const ssize_t n = ::write(sender, data.data(), data.size());
        ASSERT_GT(n, 0);
        sent += static_cast<std::size_t>(n);
    }
    ::close(sender);
    receiver.join();
    ::close(listener);
    run.session.stop();
    ASSERT_GE(received, size);

    const auto report = run.monitor().report();
    if (report[SystemMetric::net_tx_bytes].samples == 0) {
        GTEST_SKIP() << "/proc/self/net/dev is not readable here";
    }
    // Per network namespace: our bytes plus anyone else's, so only a lower bound.
    EXPECT_GE(report[SystemMetric::net_tx_bytes].last, static_cast<double>(size));
    EXPECT_GE(report[SystemMetric::net_rx_bytes].last, static_cast<double>(size));
}

// --- alerts -----------------------------------------------------------------

TEST(SystemMonitor, OneCrossingGivesOneAlert) {
    Monitored run(std::chrono::milliseconds(10));
    run.session.start();
    const double base = run.monitor().report()[SystemMetric::threads].last;
    run.session.stop();

    // threads > base + 1.5: crossed while two more threads exist.
    run.monitor().options.alerts = {SystemAlertRule{SystemMetric::threads, base + 1.5, 1, 0}};
    run.session.start();
    ASSERT_TRUE(run.wait_samples(2));
    {
        ParkedThreads two(2);
        ASSERT_TRUE(run.wait_samples(5)); // several samples above: still one alert
    }
    ASSERT_TRUE(run.wait_samples(2));
    run.session.stop();

    const auto report = run.monitor().report();
    ASSERT_EQ(report.alerts.size(), 1u);
    EXPECT_EQ(report.alerts[0].rule.metric, SystemMetric::threads);
    EXPECT_EQ(report.alerts[0].value, base + 2);
    EXPECT_GT(report.alerts[0].time_ns, 0);
    const auto mark_events = marks(*run.sink);
    ASSERT_EQ(mark_events.size(), 1u);
    EXPECT_EQ(std::string(mark_events[0].location()->display_name()),
              std::string("system alert: threads > ").append(std::to_string(base + 1.5)));
}

TEST(SystemMonitor, AlertRearmsBelowTheHysteresisBand) {
    Monitored run(std::chrono::milliseconds(10));
    run.session.start();
    const double base = run.monitor().report()[SystemMetric::threads].last;
    run.session.stop();

    run.monitor().options.alerts = {SystemAlertRule{SystemMetric::threads, base + 0.5, 1, 0}};
    run.session.start();
    for (int crossing = 0; crossing < 2; ++crossing) {
        ParkedThreads one(1);
        ASSERT_TRUE(run.wait_samples(3));
        one.release();
        ASSERT_TRUE(run.wait_samples(3));
    }
    run.session.stop();
    EXPECT_EQ(run.monitor().report().alerts.size(), 2u);
    EXPECT_EQ(marks(*run.sink).size(), 2u);
}

// The alert fires on the K-th consecutive sample above: its mark carries the
// same timestamp as that sample's counter.
TEST(SystemMonitor, SustainedAlertWaitsForKSamples) {
    Monitored run(std::chrono::milliseconds(10));
    run.session.start();
    const double base = run.monitor().report()[SystemMetric::threads].last;
    run.session.stop();

    const double threshold = base + 0.5;
    run.monitor().options.alerts = {SystemAlertRule{SystemMetric::threads, threshold, 3, 0.1}};
    run.session.start();
    {
        ParkedThreads one(1);
        ASSERT_TRUE(run.wait_samples(6));
    }
    run.session.stop();

    std::vector<std::uint64_t> above;
    for (const Event& e : run.sink->all_events()) {
        if (e.kind == EventKind::counter && named(e, "system.threads") && e.value() > threshold) {
            above.push_back(e.timestamp);
        }
    }
    ASSERT_GE(above.size(), 3u);
    const auto mark_events = marks(*run.sink);
    ASSERT_EQ(mark_events.size(), 1u);
    EXPECT_EQ(mark_events[0].timestamp, above[2]);
    EXPECT_EQ(run.monitor().report().alerts.size(), 1u);
}

// The child of a fork() has no monitor thread: its stop() must return
// without joining it or taking a mutex the parent's thread may have held at
// the fork, and the parent's monitor goes on sampling.
TEST(SystemMonitor, ForkedChildStopsWithoutTheThread) {
    Monitored run(std::chrono::milliseconds(5));
    run.session.start();
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        const auto summary = run.session.stop();
        ::_exit(summary.errors.empty() || run.session.running() ? 1 : 0);
    }
    // A child stuck joining the parent's thread would never exit: bounded wait.
    int status = 0;
    pid_t waited = 0;
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while ((waited = ::waitpid(child, &status, WNOHANG)) == 0 && Clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (waited == 0) {
        ::kill(child, SIGKILL);
        ::waitpid(child, &status, 0);
        FAIL() << "the child's stop() hung";
    }
    ASSERT_EQ(waited, child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
    ASSERT_TRUE(run.wait_samples(2)) << "the parent's monitor stopped sampling";
    run.session.stop();
}

#else

TEST(SystemMonitor, UnsupportedPlatformStartsAndStopsCleanly) {
    Monitored run(std::chrono::milliseconds(10));
    run.session.start();
    run.session.stop();
    const auto report = run.monitor().report();
    EXPECT_FALSE(report.supported);
    EXPECT_EQ(report.samples, 0u);
    EXPECT_EQ(run.sink->event_count(), 0u);
}

#endif

} // namespace
} // namespace system_monitor_test
