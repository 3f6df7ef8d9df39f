#pragma once
// The "system" section of session.json, from a SystemMonitor:
//
//   "system": {
//     "supported": true, "interval_ms": 100, "samples": 42,
//     "metrics": {"cpu_percent": {"samples", "min", "mean", "max", "last"}, "rss_bytes": {...}, ...},
//     "totals": {"disk_read_bytes", "disk_write_bytes", "io_read_bytes", "io_write_bytes",
//                "net_rx_bytes", "net_tx_bytes"},        // during the session
//     "unavailable": ["disk_read_bytes", ...],           // metrics this system could not read
//     "net_scope": "network namespace",
//     "alerts": [{"metric", "rule", "threshold", "sustained_samples", "value", "time_ns"}]
//   }
//
// time_ns counts from the session start. Totals and every byte metric count
// from the monitor's first sample, taken when the collector started.

#include "pycroscope/system/system_monitor.hpp"
#include "pycroscope/sinks/json_summary_sink.hpp"
#include "pycroscope/sinks/json_writer.hpp"

namespace pycroscope {
namespace sinks {

inline void write_system_report(JsonWriter& json, const SystemReport& report) {
    json.begin_object()
        .field("supported", report.supported)
        .field("interval_ms", static_cast<std::int64_t>(report.interval.count()))
        .field("samples", report.samples);
    json.key("metrics").begin_object();
    for (std::size_t i = 0; i < system_metric_count; ++i) {
        const SystemMetricStats& stats = report.metrics[i];
        if (stats.samples == 0) {
            continue;
        }
        json.key(to_string(static_cast<SystemMetric>(i)))
            .begin_object()
            .field("samples", stats.samples)
            .field("min", stats.min)
            .field("mean", stats.mean())
            .field("max", stats.max)
            .field("last", stats.last)
            .end_object();
    }
    json.end_object();
    json.key("totals").begin_object();
    for (std::size_t i = 0; i < system_metric_count; ++i) {
        const auto metric = static_cast<SystemMetric>(i);
        if (is_cumulative(metric) && report.metrics[i].samples > 0) {
            json.field(to_string(metric), report.metrics[i].last);
        }
    }
    json.end_object();
    json.key("unavailable").begin_array();
    for (std::size_t i = 0; i < system_metric_count; ++i) {
        // CPU % needs two samples: a session shorter than half an interval has none, yet CPU is readable.
        if (report.supported && report.samples > 0 && report.metrics[i].samples == 0 &&
            static_cast<SystemMetric>(i) != SystemMetric::cpu_percent) {
            json.value(to_string(static_cast<SystemMetric>(i)));
        }
    }
    json.end_array();
    json.field("net_scope", "network namespace");
    json.key("alerts").begin_array();
    for (const auto& alert : report.alerts) {
        json.begin_object()
            .field("metric", to_string(alert.rule.metric))
            .field("rule", alert.rule.describe())
            .field("threshold", alert.rule.threshold)
            .field("sustained_samples", alert.rule.sustained_samples)
            .field("value", alert.value)
            .field("time_ns", alert.time_ns)
            .end_object();
    }
    json.end_array();
    json.end_object();
}

// Registers "system" on sink; monitor must outlive the session's stop().
inline void add_system_section(JsonSummarySink& sink, const SystemMonitor& monitor) {
    const SystemMonitor* source = &monitor;
    sink.add_section("system", [source](JsonWriter& json, const SessionSummary&) {
        write_system_report(json, source->report());
    });
}

} // namespace sinks
} // namespace pycroscope
