// The "system" section of session.json and the system counters in the Chrome
// trace, read back from the files a real session with a SystemMonitor wrote.

#include "sinks/sink_test_helpers.hpp"
#include "support/json.hpp"

#include <pycroscope/core/session.hpp>
#include <pycroscope/system/system_monitor.hpp>
#include <pycroscope/sinks/chrome_trace_sink.hpp>
#include <pycroscope/sinks/json_summary_sink.hpp>
#include <pycroscope/system/system_section.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace system_section_test {
namespace {

using pycroscope::SystemMetric;
using pycroscope::SystemMonitor;
using sink_test::TempDir;

TEST(SystemSection, RegistersOnce) {
    TempDir dir;
    pycroscope::sinks::JsonSummarySink sink(dir.file("session.json"));
    SystemMonitor monitor;
    pycroscope::sinks::add_system_section(sink, monitor);
    EXPECT_THROW(pycroscope::sinks::add_system_section(sink, monitor), pycroscope::ConfigError);
}

#if defined(__linux__)

// A thread that lives until the test lets it go, to cross a threads alert.
struct ExtraThread {
    std::mutex mutex;
    std::condition_variable cv;
    bool go = false;
    std::thread thread{[this] {
        std::unique_lock<std::mutex> lock(mutex);
        cv.wait(lock, [this] { return go; });
    }};
    ~ExtraThread() {
        {
            std::lock_guard<std::mutex> lock(mutex);
            go = true;
        }
        cv.notify_all();
        thread.join();
    }
};

void wait_samples(const SystemMonitor& monitor, std::uint64_t more) {
    const std::uint64_t target = monitor.report().samples + more;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (monitor.report().samples < target && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ASSERT_GE(monitor.report().samples, target);
}

TEST(SystemSection, SessionJsonHoldsTheRecordedValues) {
    TempDir dir;
    pycroscope::Config config;
    config.buffer_capacity = 4096;

    double base_threads = 0;
    {
        pycroscope::Session<SystemMonitor> probe(config);
        probe.start();
        base_threads = probe.collector<SystemMonitor>().report()[SystemMetric::threads].last;
        probe.stop();
    }

    pycroscope::Session<SystemMonitor> session(config);
    auto summary_sink = session.add_sink<pycroscope::sinks::JsonSummarySink>(dir.file("session.json"));
    session.add_sink<pycroscope::sinks::ChromeTraceSink>(dir.file("trace.json"));
    SystemMonitor& monitor = session.collector<SystemMonitor>();
    monitor.options.interval = std::chrono::milliseconds(10);
    monitor.options.alerts = {pycroscope::parse_system_alert("threads=" + std::to_string(base_threads + 0.5)),
                              pycroscope::parse_system_alert("rss_mb=1000000")}; // never crossed
    pycroscope::sinks::add_system_section(*summary_sink, monitor);
    session.start();
    wait_samples(monitor, 2);
    {
        ExtraThread extra;
        wait_samples(monitor, 3);
    }
    wait_samples(monitor, 2);
    session.stop();
    const pycroscope::SystemReport report = monitor.report();
    ASSERT_GE(report.samples, 8u);

    const json::Value doc = json::parse_file(dir.file("session.json"));
    const json::Value& system = doc.at("system");
    EXPECT_TRUE(system.at("supported").as_bool());
    EXPECT_EQ(system.at("interval_ms").as_int(), 10);
    EXPECT_EQ(system.at("samples").as_uint(), report.samples);
    EXPECT_EQ(system.at("net_scope").as_string(), "network namespace");

    const json::Value& metrics = system.at("metrics");
    for (const SystemMetric metric : {SystemMetric::cpu_percent, SystemMetric::rss_bytes, SystemMetric::threads}) {
        const auto& stats = report[metric];
        const json::Value& entry = metrics.at(pycroscope::to_string(metric));
        EXPECT_EQ(entry.at("samples").as_uint(), stats.samples) << pycroscope::to_string(metric);
        EXPECT_EQ(entry.at("min").as_number(), stats.min);
        EXPECT_EQ(entry.at("max").as_number(), stats.max);
        EXPECT_DOUBLE_EQ(entry.at("mean").as_number(), stats.mean());
        EXPECT_EQ(entry.at("last").as_number(), stats.last);
    }
    EXPECT_EQ(metrics.at("rss_bytes").at("samples").as_uint(), report.samples);
    EXPECT_EQ(metrics.at("threads").at("max").as_number(), base_threads + 1);
    EXPECT_EQ(metrics.at("threads").at("min").as_number(), base_threads);
    if (report[SystemMetric::io_write_bytes].samples > 0) {
        EXPECT_EQ(system.at("totals").at("io_write_bytes").as_number(), report[SystemMetric::io_write_bytes].last);
    }
    for (const auto& name : system.at("unavailable").items()) {
        EXPECT_EQ(report.metrics.size(), pycroscope::system_metric_count);
        EXPECT_FALSE(metrics.contains(name.as_string())) << name.as_string();
    }

    const json::Value& alerts = system.at("alerts");
    ASSERT_EQ(alerts.size(), 1u);
    ASSERT_EQ(report.alerts.size(), 1u);
    EXPECT_EQ(alerts[0].at("metric").as_string(), "threads");
    EXPECT_EQ(alerts[0].at("threshold").as_number(), base_threads + 0.5);
    EXPECT_EQ(alerts[0].at("value").as_number(), base_threads + 1);
    EXPECT_EQ(alerts[0].at("sustained_samples").as_uint(), 1u);
    EXPECT_EQ(alerts[0].at("time_ns").as_int(), report.alerts[0].time_ns);
    EXPECT_GT(alerts[0].at("time_ns").as_int(), 0);
    EXPECT_LT(alerts[0].at("time_ns").as_int(), doc.at("duration_ns").as_int());

    // The built-in "counters" and "marks" see the same samples and the one alert.
    bool found_rss = false;
    for (const auto& counter : doc.at("counters").items()) {
        if (counter.at("name").as_string() == "system.rss_bytes") {
            found_rss = true;
            EXPECT_EQ(counter.at("samples").as_uint(), report.samples);
            EXPECT_EQ(counter.at("max").as_number(), report[SystemMetric::rss_bytes].max);
        }
    }
    EXPECT_TRUE(found_rss);
    std::uint64_t alert_marks = 0;
    for (const auto& mark : doc.at("marks").items()) {
        if (mark.at("name").as_string().rfind("system alert: threads > ", 0) == 0) {
            alert_marks += mark.at("count").as_uint();
        }
    }
    EXPECT_EQ(alert_marks, 1u);

    // The Chrome trace: one "C" event per sample on the named monitor thread.
    const json::Value trace = json::parse_file(dir.file("trace.json"));
    std::uint64_t rss_events = 0;
    std::int64_t rss_tid = -1;
    std::int64_t monitor_tid = -2;
    for (const auto& event : trace.at("traceEvents").items()) {
        const std::string& ph = event.at("ph").as_string();
        if (ph == "C" && event.at("name").as_string() == "system.rss_bytes") {
            ++rss_events;
            rss_tid = event.at("tid").as_int();
            EXPECT_TRUE(event.at("args").at("value").is_number());
        }
        if (ph == "M" && event.at("name").as_string() == "thread_name" &&
            event.at("args").at("name").as_string() == "pycroscope.system") {
            monitor_tid = event.at("tid").as_int();
        }
    }
    EXPECT_EQ(rss_events, report.samples);
    EXPECT_EQ(rss_tid, monitor_tid);
}

#endif

} // namespace
} // namespace system_section_test
