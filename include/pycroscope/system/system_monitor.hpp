#pragma once
// SystemMonitor: a collector that samples this process's CPU %, resident set
// size, thread count, disk and network bytes from /proc on a background thread
// ("pycroscope.system") and records them as counter events, so they appear as
// counter tracks in the Chrome trace and under "counters" in session.json.
// Threshold alerts become instant events (marks) and are kept for the
// "system" section of session.json (system/system_section.hpp).
//
//     pycroscope::Session<pycroscope::NativeZones, pycroscope::SystemMonitor> session;
//     auto& monitor = session.collector<pycroscope::SystemMonitor>();
//     monitor.options.interval = std::chrono::milliseconds(100);
//     monitor.options.alerts.push_back(pycroscope::parse_system_alert("rss_mb=500"));
//
// Metrics (counter "system.<metric>"):
//   cpu_percent       CPU time of all threads over wall time since the previous
//                     sample: 100 is one core busy, so it EXCEEDS 100 when
//                     several threads run at once (up to 100 x cores).
//   rss_bytes         resident set size.
//   threads           threads in the process.
//   disk_read_bytes,  bytes the process made the storage layer read or dirty,
//   disk_write_bytes  since the session started (/proc/self/io read_bytes,
//                     write_bytes; 0 on tmpfs and for cached reads).
//   io_read_bytes,    bytes through read()/write()-like calls since the session
//   io_write_bytes    started (rchar, wchar: page cache, pipes, sockets too).
//   net_rx_bytes,     bytes received and sent since the session started, of
//   net_tx_bytes      the whole NETWORK NAMESPACE (/proc/self/net/dev), not of
//                     this process; loopback excluded unless asked.
//
// Off Linux the collector starts and stops cleanly, records nothing and
// reports supported = false.

#include "pycroscope/core/clock.hpp"
#include "pycroscope/core/error.hpp"
#include "pycroscope/core/event.hpp"
#include "pycroscope/core/name_table.hpp"
#include "pycroscope/system/proc_stats.hpp"
#include "pycroscope/core/recorder.hpp"
#include "pycroscope/core/session_core.hpp"
#include "pycroscope/core/session_info.hpp"
#include "pycroscope/core/thread_registry.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <locale>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace pycroscope {

enum class SystemMetric : std::uint8_t {
    cpu_percent,
    rss_bytes,
    threads,
    disk_read_bytes,
    disk_write_bytes,
    io_read_bytes,
    io_write_bytes,
    net_rx_bytes,
    net_tx_bytes,
};
constexpr std::size_t system_metric_count = 9;

inline const char* to_string(SystemMetric metric) noexcept {
    switch (metric) {
    case SystemMetric::cpu_percent: return "cpu_percent";
    case SystemMetric::rss_bytes: return "rss_bytes";
    case SystemMetric::threads: return "threads";
    case SystemMetric::disk_read_bytes: return "disk_read_bytes";
    case SystemMetric::disk_write_bytes: return "disk_write_bytes";
    case SystemMetric::io_read_bytes: return "io_read_bytes";
    case SystemMetric::io_write_bytes: return "io_write_bytes";
    case SystemMetric::net_rx_bytes: return "net_rx_bytes";
    case SystemMetric::net_tx_bytes: return "net_tx_bytes";
    }
    return "unknown";
}

// Bytes counted from the session's first sample (the rest are levels).
constexpr bool is_cumulative(SystemMetric metric) noexcept {
    return metric >= SystemMetric::disk_read_bytes;
}

// Fires once when metric > threshold for sustained_samples consecutive
// samples, then stays quiet until the value falls below
// threshold * (1 - hysteresis): one crossing gives one alert, and a value
// hovering at the threshold does not flap.
struct SystemAlertRule {
    SystemMetric metric = SystemMetric::rss_bytes;
    double threshold = 0;                // in the metric's unit (percent, bytes, threads)
    std::uint32_t sustained_samples = 1; // K consecutive samples above
    double hysteresis = 0.1;             // fraction of threshold, in [0, 1)

    // "rss_bytes > 524288000 for 3 samples"
    std::string describe() const {
        std::string text = to_string(metric);
        text += " > ";
        const double whole = std::floor(threshold);
        text += whole == threshold && threshold < 1e15 ? std::to_string(static_cast<std::uint64_t>(whole))
                                                        : std::to_string(threshold);
        if (sustained_samples > 1) {
            text += " for " + std::to_string(sustained_samples) + " samples";
        }
        return text;
    }
};

// "metric=value[:samples]" as a command line gives it, for example
// "rss_mb=500", "cpu=90:3", "disk_write_mb=100", "threads=64". Metrics:
// cpu (or cpu_percent), rss_mb, threads, disk_read_mb, disk_write_mb,
// io_read_mb, io_write_mb, net_rx_mb, net_tx_mb (MiB), or any metric's own
// name in its unit (rss_bytes=...). Throws ConfigError.
inline SystemAlertRule parse_system_alert(std::string_view spec) {
    const auto fail = [&](const std::string& why) -> ConfigError {
        return ConfigError("system alert '" + std::string(spec) + "': " + why +
                           " (expected metric=value[:samples], e.g. rss_mb=500 or cpu=90:3)");
    };
    const std::size_t equals = spec.find('=');
    if (equals == std::string_view::npos || equals == 0) {
        throw fail("no metric=value");
    }
    const std::string_view key = spec.substr(0, equals);
    std::string_view rest = spec.substr(equals + 1);
    SystemAlertRule rule;
    const std::size_t colon = rest.find(':');
    if (colon != std::string_view::npos) {
        std::uint64_t samples = 0;
        if (!proc::detail::parse_u64(rest.substr(colon + 1), samples) || samples == 0 || samples > 1000000) {
            throw fail("samples must be a whole number from 1 to 1000000");
        }
        rule.sustained_samples = static_cast<std::uint32_t>(samples);
        rest = rest.substr(0, colon);
    }
    double scale = 1;
    bool known = false;
    static constexpr struct {
        const char* name;
        SystemMetric metric;
        double scale;
    } aliases[] = {
        {"cpu", SystemMetric::cpu_percent, 1},
        {"rss_mb", SystemMetric::rss_bytes, 1024.0 * 1024.0},
        {"disk_read_mb", SystemMetric::disk_read_bytes, 1024.0 * 1024.0},
        {"disk_write_mb", SystemMetric::disk_write_bytes, 1024.0 * 1024.0},
        {"io_read_mb", SystemMetric::io_read_bytes, 1024.0 * 1024.0},
        {"io_write_mb", SystemMetric::io_write_bytes, 1024.0 * 1024.0},
        {"net_rx_mb", SystemMetric::net_rx_bytes, 1024.0 * 1024.0},
        {"net_tx_mb", SystemMetric::net_tx_bytes, 1024.0 * 1024.0},
    };
    for (const auto& alias : aliases) {
        if (key == alias.name) {
            rule.metric = alias.metric;
            scale = alias.scale;
            known = true;
        }
    }
    for (std::size_t i = 0; i < system_metric_count && !known; ++i) {
        if (key == to_string(static_cast<SystemMetric>(i))) {
            rule.metric = static_cast<SystemMetric>(i);
            known = true;
        }
    }
    if (!known) {
        throw fail("unknown metric '" + std::string(key) + "'");
    }
    // The C locale whatever the host set: "0.5" must not depend on LC_NUMERIC.
    std::istringstream number{std::string(rest)};
    number.imbue(std::locale::classic());
    double value = 0;
    number >> std::noskipws >> value;
    if (rest.empty() || !number || number.peek() != std::char_traits<char>::eof() || !std::isfinite(value) ||
        value <= 0) {
        throw fail("the threshold must be a positive number");
    }
    rule.threshold = value * scale;
    return rule;
}

struct SystemMonitorOptions {
    bool enabled = true; // false: start() does nothing (a profile that composes the monitor but turns it off)
    std::chrono::milliseconds interval{100};
    std::vector<SystemAlertRule> alerts;
    bool include_loopback = false; // count "lo" in net_rx/tx_bytes

    static constexpr std::chrono::milliseconds min_interval{1};
    static constexpr std::chrono::milliseconds max_interval{3600 * 1000};

    void validate() const {
        if (interval < min_interval || interval > max_interval) {
            throw ConfigError("system monitor interval must be between 1 ms and 1 hour, got " +
                              std::to_string(interval.count()) + " ms");
        }
        for (const auto& rule : alerts) {
            if (static_cast<std::size_t>(rule.metric) >= system_metric_count) {
                throw ConfigError("system alert has an unknown metric");
            }
            if (!std::isfinite(rule.threshold) || rule.threshold <= 0) {
                throw ConfigError("system alert on " + std::string(to_string(rule.metric)) +
                                  ": the threshold must be a positive number, got " + std::to_string(rule.threshold));
            }
            if (rule.sustained_samples == 0) {
                throw ConfigError("system alert on " + std::string(to_string(rule.metric)) +
                                  ": sustained_samples must be at least 1");
            }
            if (!(rule.hysteresis >= 0 && rule.hysteresis < 1)) {
                throw ConfigError("system alert on " + std::string(to_string(rule.metric)) +
                                  ": hysteresis must be in [0, 1), got " + std::to_string(rule.hysteresis));
            }
        }
    }
};

struct SystemAlert {
    SystemAlertRule rule;
    double value = 0;        // the sample that fired it
    std::int64_t time_ns = 0; // since the session started
};

struct SystemMetricStats {
    std::uint64_t samples = 0;
    double min = std::numeric_limits<double>::infinity();
    double max = -std::numeric_limits<double>::infinity();
    double sum = 0;
    double last = 0;

    double mean() const noexcept { return samples > 0 ? sum / static_cast<double>(samples) : 0; }
    void add(double value) noexcept {
        ++samples;
        min = std::min(min, value);
        max = std::max(max, value);
        sum += value;
        last = value;
    }
};

// What a session's monitor saw. For cumulative metrics, last is the total
// since the session started.
struct SystemReport {
    bool supported = proc::supported();
    std::chrono::milliseconds interval{0};
    std::uint64_t samples = 0; // /proc readings, including the first (at start) and the last (at stop)
    std::array<SystemMetricStats, system_metric_count> metrics{};
    std::vector<SystemAlert> alerts;

    const SystemMetricStats& operator[](SystemMetric metric) const noexcept {
        return metrics[static_cast<std::size_t>(metric)];
    }
};

// Turns one /proc reading into counter events and alerts, and keeps the
// statistics. No thread of its own: SystemMonitor calls sample() on its
// thread (benchmarks call it directly). sample() must not run on two threads
// at once; report() may be called from any thread.
class SystemMetricsRecorder {
public:
    // options must be valid (SystemMonitorOptions::validate()); info gives
    // the session start for alert times. Interns the counter and mark names.
    SystemMetricsRecorder(const SystemMonitorOptions& options, const SessionInfo& info)
        : reader_(options.include_loopback), info_(info), interval_(options.interval) {
        report_.interval = options.interval;
        for (std::size_t i = 0; i < system_metric_count; ++i) {
            const std::string counter = std::string("system.") + to_string(static_cast<SystemMetric>(i));
            counters_[i] = names().intern(LocationKind::counter, counter);
        }
        for (const auto& rule : options.alerts) {
            rules_.push_back(RuleState{rule, names().intern(LocationKind::mark, "system alert: " + rule.describe())});
        }
    }

    // Reads /proc, records the counters with one shared timestamp, then
    // checks the alerts. Takes only this sampler's own mutex, which no
    // recording path touches.
    void sample() noexcept {
        proc::ProcSample sample;
        reader_.read(sample);
        sample.wall_ns = static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
                .count());
        const std::uint64_t ticks = clock::now();

        std::array<double, system_metric_count> values{};
        std::array<bool, system_metric_count> present{};
        const auto set = [&](SystemMetric metric, double value) {
            values[static_cast<std::size_t>(metric)] = value;
            present[static_cast<std::size_t>(metric)] = true;
        };
        if (!have_baseline_) {
            baseline_ = sample;
            cpu_reference_ = sample;
            have_baseline_ = true;
        }
        if (sample.has_cpu && cpu_reference_.has_cpu) {
            // CPU % needs a window long enough to mean something: the final
            // sample right after a periodic one extends the window instead.
            const std::uint64_t window_ns = sample.wall_ns - cpu_reference_.wall_ns;
            const auto min_window_ns = static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(interval_).count() / 2);
            if (window_ns > 0 && window_ns >= min_window_ns) {
                const double cpu = std::max(0.0, sample.cpu_seconds - cpu_reference_.cpu_seconds);
                set(SystemMetric::cpu_percent, 100.0 * cpu * 1e9 / static_cast<double>(window_ns));
                cpu_reference_ = sample;
            }
        }
        if (sample.has_rss) {
            set(SystemMetric::rss_bytes, static_cast<double>(sample.rss_bytes));
        }
        if (sample.has_threads) {
            set(SystemMetric::threads, static_cast<double>(sample.threads));
        }
        // Signed: net/dev totals drop when an interface goes away.
        const auto since_start = [](std::uint64_t now, std::uint64_t start) {
            return static_cast<double>(now) - static_cast<double>(start);
        };
        if (sample.has_io && baseline_.has_io) {
            set(SystemMetric::disk_read_bytes, since_start(sample.io.read_bytes, baseline_.io.read_bytes));
            set(SystemMetric::disk_write_bytes, since_start(sample.io.write_bytes, baseline_.io.write_bytes));
            set(SystemMetric::io_read_bytes, since_start(sample.io.rchar, baseline_.io.rchar));
            set(SystemMetric::io_write_bytes, since_start(sample.io.wchar, baseline_.io.wchar));
        }
        if (sample.has_net && baseline_.has_net) {
            set(SystemMetric::net_rx_bytes, since_start(sample.net.rx_bytes, baseline_.net.rx_bytes));
            set(SystemMetric::net_tx_bytes, since_start(sample.net.tx_bytes, baseline_.net.tx_bytes));
        }

        for (std::size_t i = 0; i < system_metric_count; ++i) {
            if (present[i]) {
                emit(ticks, EventKind::counter, counters_[i], double_bits(values[i]));
            }
        }
        std::lock_guard<std::mutex> lock(report_mutex_);
        ++report_.samples;
        for (std::size_t i = 0; i < system_metric_count; ++i) {
            if (present[i]) {
                report_.metrics[i].add(values[i]);
            }
        }
        for (auto& state : rules_) {
            const auto index = static_cast<std::size_t>(state.rule.metric);
            if (present[index] && check(state, values[index])) {
                emit(ticks, EventKind::instant, state.mark, 0);
                try {
                    report_.alerts.push_back(SystemAlert{state.rule, values[index], info_.session_ns(ticks)});
                } catch (...) {
                    // Out of memory: the mark is in the trace, the summary misses it.
                }
            }
        }
    }

    SystemReport report() const {
        std::lock_guard<std::mutex> lock(report_mutex_);
        return report_;
    }

private:
    struct RuleState {
        SystemAlertRule rule;
        const SourceLocation* mark;
        bool armed = true;
        std::uint32_t above = 0;
    };

    // Edge-triggered: true once per crossing (see SystemAlertRule).
    static bool check(RuleState& state, double value) noexcept {
        if (!state.armed) {
            if (value < state.rule.threshold * (1 - state.rule.hysteresis)) {
                state.armed = true;
                state.above = 0;
            }
            return false;
        }
        if (!(value > state.rule.threshold)) {
            state.above = 0;
            return false;
        }
        if (++state.above < state.rule.sustained_samples) {
            return false;
        }
        state.armed = false;
        state.above = 0;
        return true;
    }

    // Like record(), with the sample's timestamp, so every counter of a
    // sample lines up in the trace.
    static void emit(std::uint64_t ticks, EventKind kind, const SourceLocation* location,
                     std::uint64_t payload) noexcept {
        const std::uint64_t epoch = detail::session_epoch.load(std::memory_order_relaxed);
        if (epoch != 0) {
            detail::push_event(epoch, Event{ticks, location_id(location), payload, 0, kind, 0, 0});
        }
    }

    proc::ProcReader reader_;
    const SessionInfo info_;
    const std::chrono::milliseconds interval_;
    std::array<const SourceLocation*, system_metric_count> counters_{};
    std::vector<RuleState> rules_;
    proc::ProcSample baseline_;
    proc::ProcSample cpu_reference_;
    bool have_baseline_ = false;

    mutable std::mutex report_mutex_;
    SystemReport report_;
};

class SystemMonitor {
public:
    static constexpr const char* name = "system_monitor";
    static constexpr const char* thread_name = "pycroscope.system";

    // Read at start(); changes during a session apply to the next one.
    SystemMonitorOptions options;

    SystemMonitor() = default;
    ~SystemMonitor() { halt(); }
    SystemMonitor(const SystemMonitor&) = delete;
    SystemMonitor& operator=(const SystemMonitor&) = delete;

    // Validates the options, then samples every interval on the
    // "pycroscope.system" thread until stop(). Returns once the first
    // sample is recorded, so it lies at the session's start.
    void start(SessionCore& core) {
        halt();
        {
            std::lock_guard<std::mutex> lock(sampler_mutex_);
            sampler_.reset();
        }
        if (!options.enabled) {
            return;
        }
        options.validate();
        auto sampler = std::make_shared<SystemMetricsRecorder>(options, core.info());
        {
            std::lock_guard<std::mutex> lock(sampler_mutex_);
            sampler_ = sampler;
        }
        if (!proc::supported()) {
            return;
        }
        {
            std::lock_guard<std::mutex> lock(control_mutex_);
            stop_requested_ = false;
            first_sample_done_ = false;
        }
        owner_pid_ = detail::current_pid();
        thread_ = std::thread([this, sampler, interval = options.interval] { run(*sampler, interval); });
        std::unique_lock<std::mutex> lock(control_mutex_);
        wake_.wait(lock, [this] { return first_sample_done_; });
    }

    // Wakes the thread, which takes a last sample (totals run to the end of
    // the session) and exits: prompt whatever the interval.
    void stop(SessionCore&) noexcept { halt(); }

    // What the last (or running) session's monitor collected; complete once
    // stop() returned.
    SystemReport report() const {
        std::shared_ptr<SystemMetricsRecorder> sampler;
        {
            std::lock_guard<std::mutex> lock(sampler_mutex_);
            sampler = sampler_;
        }
        if (sampler) {
            return sampler->report();
        }
        SystemReport empty;
        empty.interval = options.interval;
        return empty;
    }

private:
    void halt() noexcept {
        // A forked child has no monitor thread, and the parent's thread may
        // have held control_mutex_ at the fork: touch neither.
        if (thread_.joinable() && detail::current_pid() != owner_pid_) {
            new std::thread(std::move(thread_)); // never joined or destroyed: it has no thread here
            return;
        }
        {
            std::lock_guard<std::mutex> lock(control_mutex_);
            stop_requested_ = true;
        }
        wake_.notify_all();
        if (thread_.joinable()) {
            thread_.join();
        }
    }

    void run(SystemMetricsRecorder& sampler, std::chrono::milliseconds interval) noexcept {
        set_thread_name(thread_name);
        using steady = std::chrono::steady_clock;
        auto next = steady::now() + interval;
        sampler.sample();
        std::unique_lock<std::mutex> lock(control_mutex_);
        first_sample_done_ = true;
        wake_.notify_all();
        while (!stop_requested_) {
            if (wake_.wait_until(lock, next, [this] { return stop_requested_; })) {
                break;
            }
            lock.unlock();
            sampler.sample();
            lock.lock();
            // After a stall (a suspended process, a loaded machine) skip the
            // missed samples instead of taking them in a burst.
            next += interval;
            const auto now = steady::now();
            if (next <= now) {
                next = now + interval;
            }
        }
        lock.unlock();
        sampler.sample();
    }

    std::thread thread_;
    std::uint64_t owner_pid_ = 0;
    std::mutex control_mutex_;
    std::condition_variable wake_;
    bool stop_requested_ = false;
    bool first_sample_done_ = false;

    mutable std::mutex sampler_mutex_;
    std::shared_ptr<SystemMetricsRecorder> sampler_;
};

} // namespace pycroscope
