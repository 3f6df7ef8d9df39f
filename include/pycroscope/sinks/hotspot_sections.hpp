#pragma once
// The "hotspots" section of session.json and the matching text report:
// where a sampling session's samples landed, per function and per Python
// line, as self share (the leaf of the sample) and total share (anywhere on
// the stack, once per sample), highest self share first, cut to the top N.
//
//   "hotspots": {"samples": 1000, "running": 900, "idle": 100, "incomplete": 0,
//                "rate_hz": 100, "basis": "all",
//                "functions": [{"name", "kind", "file", "line", "self_samples",
//                               "total_samples", "self_pct", "total_pct"}, ...],
//                "lines": [{"file", "line", "function", "samples", "pct",
//                           "total_samples", "total_pct"}, ...],
//                "threads": [{"os_tid", "name", "samples", "running", "idle", "pct"}, ...]}
//
// Shares are of all samples ("basis": "all", wall-clock view) or of running
// samples only ("running", CPU view). A line's samples are those whose
// innermost frame was on it.

#include "pycroscope/model/sample_profile.hpp"
#include "pycroscope/core/error.hpp"
#include "pycroscope/sinks/json_summary_sink.hpp"
#include "pycroscope/sinks/json_writer.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace pycroscope {
namespace sinks {

struct HotspotOptions {
    std::size_t top = 50;      // functions and lines kept; 0 keeps all
    bool include_idle = true;  // false: shares of running samples only
    double rate_hz = 0;        // the sampling rate, written when known (> 0)
};

namespace detail {
// Sampled threads, most samples first.
inline std::vector<model::SampledThread> threads_by_samples(const model::SampleProfile& profile) {
    std::vector<model::SampledThread> threads = profile.threads();
    std::stable_sort(threads.begin(), threads.end(),
                     [](const model::SampledThread& a, const model::SampledThread& b) {
                         return a.samples.all() != b.samples.all() ? a.samples.all() > b.samples.all()
                                                                   : a.os_tid < b.os_tid;
                     });
    return threads;
}

inline const char* text_or_empty(const char* text) noexcept { return text != nullptr ? text : ""; }

// "12.3%": one decimal, no locale.
inline void append_percent(std::string& out, double pct, int width) {
    const auto tenths = static_cast<std::uint64_t>(pct * 10.0 + 0.5);
    std::string text = std::to_string(tenths / 10);
    text += '.';
    text += static_cast<char>('0' + tenths % 10);
    text += '%';
    if (static_cast<int>(text.size()) < width) {
        out.append(static_cast<std::size_t>(width) - text.size(), ' ');
    }
    out += text;
}

inline void append_count(std::string& out, std::uint64_t n, int width) {
    const std::string text = std::to_string(n);
    if (static_cast<int>(text.size()) < width) {
        out.append(static_cast<std::size_t>(width) - text.size(), ' ');
    }
    out += text;
}
} // namespace detail

inline void write_hotspots(JsonWriter& json, const model::SampleProfile& profile, const HotspotOptions& options) {
    const model::Hotspots hot = profile.hotspots(model::HotspotQuery{options.include_idle, options.top});
    const model::SampleCounts& counts = profile.samples();
    json.begin_object()
        .field("samples", counts.all())
        .field("running", counts.running)
        .field("idle", counts.idle)
        .field("incomplete", profile.incomplete_samples());
    if (options.rate_hz > 0) {
        json.field("rate_hz", options.rate_hz);
    }
    json.field("basis", options.include_idle ? "all" : "running");
    json.key("functions").begin_array();
    for (const auto& f : hot.functions) {
        json.begin_object()
            .field("name", detail::text_or_empty(f.location->display_name()))
            .field("kind", kind_name(f.location->kind))
            .field("file", detail::text_or_empty(f.location->file))
            .field("line", f.location->line)
            .field("self_samples", f.self_samples)
            .field("total_samples", f.total_samples)
            .field("self_pct", f.self_pct)
            .field("total_pct", f.total_pct)
            .end_object();
    }
    json.end_array();
    json.key("lines").begin_array();
    for (const auto& l : hot.lines) {
        json.begin_object()
            .field("file", detail::text_or_empty(l.function->file))
            .field("line", l.line)
            .field("function", detail::text_or_empty(l.function->display_name()))
            .field("samples", l.self_samples)
            .field("pct", l.self_pct)
            .field("total_samples", l.total_samples)
            .field("total_pct", l.total_pct)
            .end_object();
    }
    json.end_array();
    json.key("threads").begin_array();
    for (const auto& t : detail::threads_by_samples(profile)) {
        const std::uint64_t n = t.samples.selected(options.include_idle);
        json.begin_object()
            .field("os_tid", t.os_tid)
            .field("name", t.name)
            .field("samples", t.samples.all())
            .field("running", t.samples.running)
            .field("idle", t.samples.idle)
            .field("pct", hot.samples == 0 ? 0.0 : 100.0 * static_cast<double>(n) / static_cast<double>(hot.samples))
            .end_object();
    }
    json.end_array();
    json.end_object();
}

// Registers "hotspots" on sink. profile (SampledStackSink::profile() or
// SampleProfileSink::profile()) must outlive the session's stop(); it is
// complete when session.json is written, since every consume() of a session
// comes before any close().
inline void add_hotspot_section(JsonSummarySink& sink, const model::SampleProfile& profile,
                                HotspotOptions options = {}) {
    if (!(options.rate_hz >= 0)) {
        throw ConfigError("hotspots: rate_hz must be >= 0");
    }
    const model::SampleProfile* source = &profile;
    sink.add_section("hotspots", [source, options](JsonWriter& json, const SessionSummary&) {
        write_hotspots(json, *source, options);
    });
}

// A plain-text table of the top functions and lines, for a terminal.
inline std::string format_hotspot_report(const model::SampleProfile& profile, const HotspotOptions& options = {}) {
    const model::Hotspots hot = profile.hotspots(model::HotspotQuery{options.include_idle, options.top});
    const model::SampleCounts& counts = profile.samples();
    std::string out = "pycroscope: ";
    out.append(std::to_string(counts.all())).append(" samples (").append(std::to_string(counts.running));
    out.append(" running, ").append(std::to_string(counts.idle)).append(" idle) of ");
    out.append(std::to_string(profile.threads().size())).append(" thread(s)");
    if (options.rate_hz > 0) {
        out.append(" at ").append(std::to_string(static_cast<std::uint64_t>(options.rate_hz + 0.5))).append(" Hz");
    }
    out += '\n';
    if (hot.samples == 0) {
        out += "no samples\n";
        return out;
    }
    const char* basis = options.include_idle ? "all samples" : "running samples";
    out += "top functions (share of ";
    out += basis;
    out += ")\n   self%  total%     self    total  function\n";
    for (const auto& f : hot.functions) {
        detail::append_percent(out, f.self_pct, 8);
        detail::append_percent(out, f.total_pct, 8);
        detail::append_count(out, f.self_samples, 9);
        detail::append_count(out, f.total_samples, 9);
        out += "  ";
        out += detail::text_or_empty(f.location->display_name());
        const char* file = detail::text_or_empty(f.location->file);
        if (file[0] != '\0') {
            out += " (";
            out += file;
            out += ':';
            out += std::to_string(f.location->line);
            out += ')';
        }
        out += '\n';
    }
    if (!hot.lines.empty()) {
        out += "top lines (share of ";
        out += basis;
        out += ")\n   self%  total%     self    total  line\n";
        for (const auto& l : hot.lines) {
            detail::append_percent(out, l.self_pct, 8);
            detail::append_percent(out, l.total_pct, 8);
            detail::append_count(out, l.self_samples, 9);
            detail::append_count(out, l.total_samples, 9);
            out += "  ";
            out += detail::text_or_empty(l.function->file);
            out += ':';
            out += std::to_string(l.line);
            out += "  ";
            out += detail::text_or_empty(l.function->display_name());
            out += '\n';
        }
    }
    return out;
}

} // namespace sinks
} // namespace pycroscope
