#pragma once
// A Comparison (analysis/profile_comparison.hpp) as `pycroscope compare`
// prints it: comparison_text() for people (is the candidate faster or
// slower, by how much, with what confidence, which functions moved) and
// comparison_json() for machines:
//
//   {"regressions": [{"function", "file", "line", "metric", "base", "candidate",
//                     "change", "p_value", "significant"}, ...],
//    "improvements": [...],
//    "summary": {"base": ..., "candidate": ..., "base_runs", "candidate_runs",
//                "statistics", "alpha", "threshold", "verdict",
//                "wall_time": {...}, "peak_memory": {...}, "warnings": [...]}}
//
// p_value is null when a side has a single run. Times are nanoseconds,
// memory bytes, change a fraction (0.1 = +10%). Whole-run changes appear in
// the lists with function "" and in the summary.

#include "pycroscope/analysis/profile_comparison.hpp"
#include "pycroscope/sinks/json_writer.hpp"

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace pycroscope {
namespace store {

struct ComparisonLabels {
    std::string base;      // what the base is (session id or folder)
    std::string candidate; // same for the candidate
    std::vector<std::string> warnings;
};

// "slower", "faster" or "unchanged": the wall time's significant change.
inline const char* comparison_verdict(const analysis::Comparison& c) {
    if (!c.wall_time.significant) {
        return "unchanged";
    }
    return c.wall_time.change > 0 ? "slower" : "faster";
}

namespace detail {

inline std::string format_value(analysis::Metric metric, double value) {
    char buffer[64];
    if (analysis::is_time(metric)) {
        if (std::fabs(value) >= 1e9) {
            std::snprintf(buffer, sizeof buffer, "%.3f s", value / 1e9);
        } else if (std::fabs(value) >= 1e6) {
            std::snprintf(buffer, sizeof buffer, "%.2f ms", value / 1e6);
        } else {
            std::snprintf(buffer, sizeof buffer, "%.1f us", value / 1e3);
        }
    } else if (metric == analysis::Metric::calls) {
        std::snprintf(buffer, sizeof buffer, "%.0f", value);
    } else if (std::fabs(value) >= 1024.0 * 1024.0) {
        std::snprintf(buffer, sizeof buffer, "%.2f MiB", value / (1024.0 * 1024.0));
    } else {
        std::snprintf(buffer, sizeof buffer, "%.1f KiB", value / 1024.0);
    }
    return buffer;
}

inline std::string format_percent(double change) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%+.1f%%", change * 100.0);
    return buffer;
}

inline std::string format_p(const analysis::MetricChange& c) {
    if (!c.tested) {
        return "no statistics";
    }
    char buffer[48];
    std::snprintf(buffer, sizeof buffer, "p = %.2g", c.p_value);
    return buffer;
}

inline std::string change_line(const analysis::MetricChange& c) {
    std::string where = c.function.name.empty() ? std::string("(whole run)") : c.function.name;
    if (!c.function.file.empty()) {
        where += "  " + c.function.file + ":" + std::to_string(c.function.line);
    }
    char head[96];
    std::snprintf(head, sizeof head, "  %8s  %-15s ", format_percent(c.change).c_str(), analysis::metric_name(c.metric));
    return std::string(head) + where + "  (" + format_value(c.metric, c.base) + " -> " +
           format_value(c.metric, c.candidate) + ", " + format_p(c) + (c.significant ? ", significant" : "") + ")\n";
}

inline void change_json(sinks::JsonWriter& json, const analysis::MetricChange& c) {
    json.begin_object()
        .field("function", c.function.name)
        .field("file", c.function.file)
        .field("line", c.function.line)
        .field("metric", analysis::metric_name(c.metric))
        .field("base", c.base)
        .field("candidate", c.candidate)
        .field("change", c.change);
    json.key("p_value");
    if (c.tested) {
        json.value(c.p_value);
    } else {
        json.null();
    }
    json.field("significant", c.significant).end_object();
}

} // namespace detail

inline std::string comparison_text(const analysis::Comparison& c, const ComparisonLabels& labels) {
    std::string out;
    out += "base:      " + labels.base + " (" + std::to_string(c.base_runs) + (c.base_runs == 1 ? " run)\n" : " runs)\n");
    out += "candidate: " + labels.candidate + " (" + std::to_string(c.candidate_runs) +
           (c.candidate_runs == 1 ? " run)\n" : " runs)\n");
    for (const std::string& w : labels.warnings) {
        out += "warning: " + w + "\n";
    }
    const analysis::MetricChange& wall = c.wall_time;
    const std::string wall_figures = detail::format_value(wall.metric, wall.base) + " -> " +
                                     detail::format_value(wall.metric, wall.candidate);
    char confidence[64] = "";
    if (wall.tested) {
        std::snprintf(confidence, sizeof confidence, ", p = %.2g (%.1f%% confidence)", wall.p_value,
                      100.0 * (1.0 - wall.p_value));
    }
    const std::string verdict = comparison_verdict(c);
    if (verdict == "unchanged") {
        out += "overall: no significant change in wall time: " + detail::format_percent(wall.change) + " (" +
               wall_figures + confidence + ")\n";
    } else {
        out += "overall: the candidate is " + verdict + " by " + detail::format_percent(std::fabs(wall.change)).substr(1) +
               " (wall time " + wall_figures + confidence + ")\n";
    }
    if (c.peak_memory.base > 0) {
        out += "peak memory: " + detail::format_percent(c.peak_memory.change) + " (" +
               detail::format_value(analysis::Metric::peak_memory, c.peak_memory.base) + " -> " +
               detail::format_value(analysis::Metric::peak_memory, c.peak_memory.candidate) +
               (c.peak_memory.tested ? ", " + detail::format_p(c.peak_memory) : std::string()) +
               (c.peak_memory.significant ? ", significant" : "") + ")\n";
    }
    char rule[200];
    if (!c.statistics) {
        std::snprintf(rule, sizeof rule,
                      "no statistics: a side has a single run; changes beyond %.0f%% are listed, none is significant "
                      "(use --runs 5 or more)\n",
                      c.options.threshold * 100);
    } else {
        std::snprintf(rule, sizeof rule,
                      "significant: median change beyond %.0f%% and Mann-Whitney p < %.3g\n", c.options.threshold * 100,
                      c.options.alpha);
    }
    out += rule;
    if (c.statistics && c.smallest_p_value >= c.options.alpha) {
        char note[200];
        std::snprintf(note, sizeof note,
                      "note: with %zu and %zu runs the smallest possible p is %.2g, not below alpha %.3g: nothing can "
                      "be significant (use --runs 5 or more a side)\n",
                      c.base_runs, c.candidate_runs, c.smallest_p_value, c.options.alpha);
        out += note;
    }
    out += c.regressions.empty() ? "regressions: none\n" : "regressions:\n";
    for (const auto& r : c.regressions) {
        out += detail::change_line(r);
    }
    out += c.improvements.empty() ? "improvements: none\n" : "improvements:\n";
    for (const auto& r : c.improvements) {
        out += detail::change_line(r);
    }
    for (const auto& f : c.only_in_base) {
        out += "  only in base:      " + f.name + "  " + f.file + ":" + std::to_string(f.line) + "\n";
    }
    for (const auto& f : c.only_in_candidate) {
        out += "  only in candidate: " + f.name + "  " + f.file + ":" + std::to_string(f.line) + "\n";
    }
    std::size_t significant = 0;
    for (const auto& r : c.regressions) {
        significant += r.significant ? 1 : 0;
    }
    out += significant > 0 ? "result: REGRESSION (" + std::to_string(significant) + " significant)\n"
                           : std::string("result: no significant regression\n");
    return out;
}

inline std::string comparison_json(const analysis::Comparison& c, const ComparisonLabels& labels) {
    std::string out;
    sinks::JsonWriter json(out);
    json.begin_object();
    json.key("regressions").begin_array();
    for (const auto& r : c.regressions) {
        detail::change_json(json, r);
    }
    json.end_array();
    json.key("improvements").begin_array();
    for (const auto& r : c.improvements) {
        detail::change_json(json, r);
    }
    json.end_array();
    json.key("summary").begin_object();
    json.field("base", labels.base).field("candidate", labels.candidate);
    json.field("base_runs", c.base_runs).field("candidate_runs", c.candidate_runs);
    json.field("statistics", c.statistics).field("alpha", c.options.alpha).field("threshold", c.options.threshold);
    json.field("min_share", c.options.min_share);
    json.field("verdict", comparison_verdict(c));
    json.field("significant_regression", c.has_significant_regression());
    json.key("wall_time");
    detail::change_json(json, c.wall_time);
    json.key("peak_memory");
    detail::change_json(json, c.peak_memory);
    json.key("warnings").begin_array();
    for (const auto& w : labels.warnings) {
        json.value(w);
    }
    json.end_array();
    json.end_object();
    json.end_object();
    out += '\n';
    return out;
}

} // namespace store
} // namespace pycroscope
