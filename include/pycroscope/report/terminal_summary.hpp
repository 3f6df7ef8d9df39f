#pragma once
// The terminal summary of a Profile: the top functions of every kind
// (Python, C builtins such as time.sleep, zones, GC, imports) with self and
// inclusive time, share, calls and severity, then the hot path and the
// callers of the critical and high ones; terminal_answers() then prints the
// health score, the top findings and the top recommendations. Python-free:
// any host with a Profile can print it.
//
// Names come from the profiled program, so they are escaped before they
// reach a terminal: control characters (CR, LF, ESC, ...), C1 controls and
// the bidirectional overrides that could reorder what the user sees.

#include "pycroscope/report/terminal_text.hpp"
#include "pycroscope/analysis/answers.hpp"
#include "pycroscope/analysis/hotspots.hpp"
#include "pycroscope/model/profile.hpp"

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace pycroscope {
namespace report {

struct TerminalSummaryOptions {
    std::size_t top = 15;
    analysis::RankingOptions ranking;
};

namespace detail {
// A time in ms, or a sample count.
inline std::string weight_text(std::uint64_t weight, model::Unit unit) {
    char text[32];
    if (unit == model::Unit::samples) {
        std::snprintf(text, sizeof text, "%llu", static_cast<unsigned long long>(weight));
    } else {
        std::snprintf(text, sizeof text, "%.3f", static_cast<double>(weight) / 1e6);
    }
    return text;
}
} // namespace detail

// The table and the hot path, one line each, ending in a newline.
inline std::string terminal_summary(const model::Profile& profile, const TerminalSummaryOptions& options = {}) {
    analysis::RankingOptions ranking = options.ranking;
    ranking.top = options.top;
    const analysis::HotspotRanking hot = analysis::rank_hotspots(profile, ranking);
    const bool samples = profile.unit == model::Unit::samples;
    std::string out;
    char line[768];
    std::size_t with_weight = 0;
    for (const auto& f : profile.functions) {
        with_weight += (f.self > 0 || f.inclusive > 0 || f.calls > 0) ? 1 : 0;
    }
    if (hot.functions.empty()) {
        out += "pycroscope: no functions recorded\n";
        return out;
    }
    std::snprintf(line, sizeof line, "pycroscope: top %zu of %zu functions by self %s (all kinds)\n",
                  hot.functions.size(), with_weight, samples ? "samples" : "time");
    out += line;
    std::snprintf(line, sizeof line, "%11s %11s %7s %7s %10s  %-8s  %-32s %s\n", samples ? "self" : "self ms",
                  samples ? "total" : "incl ms", "self%", "total%", "calls", "severity", "function", "location");
    out += line;
    for (const auto& r : hot.functions) {
        const model::Function& f = profile.functions[r.function];
        std::string where = terminal_text(f.file);
        if (!where.empty()) {
            where += ":" + std::to_string(f.line);
        } else {
            where = kind_name(f.kind);
        }
        const std::string calls = samples ? std::string("-") : std::to_string(r.calls);
        std::snprintf(line, sizeof line, "%11s %11s %6.1f%% %6.1f%% %10s  %-8s  %-32s %s\n",
                      detail::weight_text(r.self, profile.unit).c_str(),
                      detail::weight_text(r.inclusive, profile.unit).c_str(), r.self_pct, r.total_pct, calls.c_str(),
                      analysis::to_string(r.severity), terminal_text(f.name).c_str(), where.c_str());
        out += line;
    }
    if (!hot.hot_path.empty()) {
        out += "pycroscope: hot path: ";
        for (std::size_t i = 0; i < hot.hot_path.size(); ++i) {
            const auto& step = hot.hot_path[i];
            if (i > 0) {
                out += " > ";
            }
            out += terminal_text(profile.functions[step.function].name);
            std::snprintf(line, sizeof line, " (%.1f%%)", step.pct);
            out += line;
        }
        out += '\n';
    }
    // Where the worst hotspots are called from (critical and high, at most three).
    std::size_t explained = 0;
    for (const auto& r : hot.functions) {
        if (explained == 3 || r.severity < analysis::Severity::high || r.callers.empty()) {
            continue;
        }
        ++explained;
        out += "pycroscope: callers of ";
        out += terminal_text(profile.functions[r.function].name);
        out += ": ";
        for (std::size_t i = 0; i < r.callers.size(); ++i) {
            const auto& caller = r.callers[i];
            if (i > 0) {
                out += ", ";
            }
            out += terminal_text(profile.functions[caller.function].name);
            if (samples) {
                std::snprintf(line, sizeof line, " (%.1f%%)", caller.pct);
            } else {
                std::snprintf(line, sizeof line, " (%llu calls, %.1f%%)",
                              static_cast<unsigned long long>(caller.calls), caller.pct);
            }
            out += line;
        }
        out += '\n';
    }
    if (profile.unclosed_spans > 0) {
        std::snprintf(line, sizeof line,
                      "pycroscope: %llu call(s) still running at stop were closed at their thread's last event\n",
                      static_cast<unsigned long long>(profile.unclosed_spans));
        out += line;
    }
    return out;
}

// The health score, then the top findings and recommendations (top of
// each), one line each, ending in a newline. Empty when the pattern pass was off.
inline std::string terminal_answers(const analysis::Answers& answers, std::size_t top = 5) {
    const analysis::FindingReport& found = answers.findings;
    std::string out;
    if (!found.enabled) {
        return out;
    }
    char line[256];
    std::snprintf(line, sizeof line, "pycroscope: health %d/100", answers.health.score);
    out += line;
    if (!answers.health.costs.empty()) {
        out += ", costing most: ";
        for (std::size_t i = 0; i < answers.health.costs.size() && i < 3; ++i) {
            const analysis::HealthCost& cost = answers.health.costs[i];
            out += i > 0 ? "; " : "";
            out += terminal_text(cost.item);
            std::snprintf(line, sizeof line, " (-%.1f)", cost.points);
            out += line;
        }
    }
    out += '\n';
    if (!found.error.empty()) {
        out += "pycroscope: source analysis failed: " + terminal_text(found.error) + "\n";
    }
    if (!found.findings.empty()) {
        std::snprintf(line, sizeof line, "pycroscope: %zu finding(s) in %zu file(s)%s, top %zu:\n",
                      found.findings.size(), found.files_analysed,
                      found.line_data ? "" : " (no line data: function shares)",
                      std::min(top, found.findings.size()));
        out += line;
        for (std::size_t i = 0; i < found.findings.size() && i < top; ++i) {
            const analysis::Finding& f = found.findings[i];
            std::string text = "  ";
            std::snprintf(line, sizeof line, "%-8s %5.1f%%  ", analysis::to_string(f.severity), 100 * f.time_share);
            text += line;
            text += terminal_text(f.kind) + "  " + terminal_text(f.file) + ":" + std::to_string(f.line) + "  " +
                    terminal_text(f.message) + "\n";
            out += text;
        }
    }
    if (!answers.recommendations.empty()) {
        out += "pycroscope: recommendations (estimated whole-run saving and speedup):\n";
        for (std::size_t i = 0; i < answers.recommendations.size() && i < top; ++i) {
            const analysis::Recommendation& r = answers.recommendations[i];
            std::snprintf(line, sizeof line, "  %zu. %5.1f%% %5.2fx  ", i + 1, 100 * r.estimated_saving,
                          r.estimated_speedup);
            std::string where = terminal_text(r.file);
            if (!where.empty()) {
                where += ":" + std::to_string(r.line) + ": ";
            }
            out += line + where + terminal_text(r.suggestion) + " (" + terminal_text(r.message) + ")\n";
        }
    }
    return out;
}

} // namespace report
} // namespace pycroscope
