#pragma once
// history.html: the trend of one script's stored sessions (`pycroscope
// history SCRIPT --html FILE`), one self-contained page with no script: a
// table of the sessions and, for each series (wall time, peak memory, the top
// functions' self time), an SVG line chart with the step where a regression
// or an improvement began (analysis/step_detection.hpp) drawn on it.
//
//   HistoryPage page;                 // sessions oldest first
//   page.series.push_back({"wall time", HistoryUnit::seconds, walls, detect_step(walls)});
//   write_history_page("history.html", page);
//
// Every name and path is escaped; the page draws the same in any browser,
// with JavaScript off.

#include "pycroscope/analysis/step_detection.hpp"
#include "pycroscope/report/html_escape.hpp"
#include "pycroscope/report/report_file.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace pycroscope {
namespace report {

enum class HistoryUnit { nanoseconds, bytes };

struct HistorySeries {
    std::string name;           // "wall time", "self time of parse"
    HistoryUnit unit = HistoryUnit::nanoseconds;
    std::vector<double> values; // one per session, oldest first
    analysis::Step step;        // detect_step(values)
};

struct HistorySession {
    std::string id;
    std::string started; // local time, as `history` prints it
    std::string git;     // commit label, or "-"
    std::size_t runs = 1;
};

struct HistoryPage {
    std::string script;
    std::vector<HistorySession> sessions; // oldest first
    std::vector<HistorySeries> series;
};

namespace detail {

inline std::string history_value(double value, HistoryUnit unit) {
    char text[48];
    if (unit == HistoryUnit::bytes) {
        std::snprintf(text, sizeof text, "%.2f MiB", value / (1024.0 * 1024.0));
    } else if (value >= 1e9) {
        std::snprintf(text, sizeof text, "%.3f s", value / 1e9);
    } else {
        std::snprintf(text, sizeof text, "%.2f ms", value / 1e6);
    }
    return text;
}

inline std::string svg_number(double v) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f", v);
    return text;
}

// What the step says, or why there is none.
inline std::string step_text(const HistorySeries& s, const std::vector<HistorySession>& sessions) {
    if (s.values.size() < 4) {
        return "too few sessions for step detection (4 needed)";
    }
    if (!s.step.found || s.step.index >= sessions.size()) {
        return "no step";
    }
    char change[32];
    std::snprintf(change, sizeof change, "%+.1f%%", s.step.change * 100.0);
    return std::string(s.step.change > 0 ? "regression" : "improvement") + " began at " + sessions[s.step.index].id +
           ": " + change + " (median " + history_value(s.step.before, s.unit) + " before, " +
           history_value(s.step.after, s.unit) + " after; score " + svg_number(s.step.score) + ")";
}

// One series as an SVG line chart: a point per session, the medians before
// and after the step as dashed lines, the step as a vertical line.
inline std::string series_chart(const HistorySeries& s, const std::vector<HistorySession>& sessions) {
    constexpr double width = 720, height = 180, left = 70, right = 20, top = 14, bottom = 26;
    const std::size_t n = s.values.size();
    double lo = 0, hi = 1;
    if (n > 0) {
        lo = *std::min_element(s.values.begin(), s.values.end());
        hi = *std::max_element(s.values.begin(), s.values.end());
    }
    lo = std::min(lo, 0.0);
    if (!(hi > lo)) {
        hi = lo + 1;
    }
    const auto x = [&](double i) { return left + (n > 1 ? i * (width - left - right) / static_cast<double>(n - 1) : 0); };
    const auto y = [&](double v) { return top + (hi - v) * (height - top - bottom) / (hi - lo); };
    std::string svg = "<svg class=\"chart\" viewBox=\"0 0 " + svg_number(width) + " " + svg_number(height) +
                      "\" width=\"" + svg_number(width) + "\" height=\"" + svg_number(height) + "\" role=\"img\">";
    svg += "<line class=\"axis\" x1=\"" + svg_number(left) + "\" y1=\"" + svg_number(y(lo)) + "\" x2=\"" +
           svg_number(width - right) + "\" y2=\"" + svg_number(y(lo)) + "\"/>";
    svg += "<text class=\"tick\" x=\"4\" y=\"" + svg_number(y(hi) + 4) + "\">" + escape_html(history_value(hi, s.unit)) +
           "</text>";
    svg += "<text class=\"tick\" x=\"4\" y=\"" + svg_number(y(lo)) + "\">" + escape_html(history_value(lo, s.unit)) +
           "</text>";
    if (s.step.found && s.step.index > 0 && s.step.index < n) {
        const double at = x(static_cast<double>(s.step.index) - 0.5);
        svg += "<line class=\"step\" data-step=\"" + escape_html(sessions[s.step.index].id) + "\" x1=\"" +
               svg_number(at) + "\" y1=\"" + svg_number(top) + "\" x2=\"" + svg_number(at) + "\" y2=\"" +
               svg_number(y(lo)) + "\"/>";
        svg += "<line class=\"median\" x1=\"" + svg_number(x(0)) + "\" y1=\"" + svg_number(y(s.step.before)) +
               "\" x2=\"" + svg_number(at) + "\" y2=\"" + svg_number(y(s.step.before)) + "\"/>";
        svg += "<line class=\"median\" x1=\"" + svg_number(at) + "\" y1=\"" + svg_number(y(s.step.after)) +
               "\" x2=\"" + svg_number(x(static_cast<double>(n - 1))) + "\" y2=\"" + svg_number(y(s.step.after)) +
               "\"/>";
    }
    std::string points;
    for (std::size_t i = 0; i < n; ++i) {
        points += (i == 0 ? "" : " ") + svg_number(x(static_cast<double>(i))) + "," + svg_number(y(s.values[i]));
    }
    svg += "<polyline class=\"trend\" points=\"" + points + "\"/>";
    for (std::size_t i = 0; i < n; ++i) {
        const std::string id = i < sessions.size() ? sessions[i].id : std::to_string(i + 1);
        svg += "<circle class=\"point\" cx=\"" + svg_number(x(static_cast<double>(i))) + "\" cy=\"" +
               svg_number(y(s.values[i])) + "\" r=\"3.5\"><title>" + escape_html(id) + ": " +
               escape_html(history_value(s.values[i], s.unit)) + "</title></circle>";
    }
    return svg + "</svg>";
}

} // namespace detail

inline std::string history_html(const HistoryPage& page) {
    std::string html =
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>pycroscope history: " +
        escape_html(page.script) +
        "</title>\n<style>\n"
        "body{font:14px system-ui,sans-serif;margin:24px;color:#222}h1{font-size:18px}h2{font-size:15px;margin:18px 0 4px}"
        "table{border-collapse:collapse}td,th{padding:2px 10px;text-align:left;border-bottom:1px solid #ddd}"
        ".chart .axis{stroke:#888}.chart .trend{fill:none;stroke:#2a6fdb;stroke-width:2}.chart .point{fill:#2a6fdb}"
        ".chart .step{stroke:#d33;stroke-width:2;stroke-dasharray:5 3}.chart .median{stroke:#999;stroke-dasharray:3 3}"
        ".chart .tick{font-size:11px;fill:#555}.verdict{margin:2px 0}.regression{color:#b00}.improvement{color:#070}"
        "\n</style></head><body>\n<h1>History of " +
        escape_html(page.script) + "</h1>\n<p>" + std::to_string(page.sessions.size()) +
        " sessions, oldest first; each value is the median over a session's runs (docs/compare.md).</p>\n";
    html += "<table id=\"sessions\"><tr><th>session</th><th>started</th><th>git</th><th>runs</th>";
    for (const HistorySeries& s : page.series) {
        html += "<th>" + escape_html(s.name) + "</th>";
    }
    html += "</tr>\n";
    for (std::size_t k = 0; k < page.sessions.size(); ++k) {
        const HistorySession& session = page.sessions[k];
        html += "<tr><td>" + escape_html(session.id) + "</td><td>" + escape_html(session.started) + "</td><td>" +
                escape_html(session.git) + "</td><td>" + std::to_string(session.runs) + "</td>";
        for (const HistorySeries& s : page.series) {
            html += "<td>" + (k < s.values.size() ? escape_html(detail::history_value(s.values[k], s.unit)) : "") +
                    "</td>";
        }
        html += "</tr>\n";
    }
    html += "</table>\n";
    for (const HistorySeries& s : page.series) {
        const char* verdict = !s.step.found || s.values.size() < 4 ? "none" : (s.step.change > 0 ? "regression" : "improvement");
        html += "<section class=\"series\"><h2>" + escape_html(s.name) + "</h2>\n<p class=\"verdict " +
                std::string(verdict) + "\">" + escape_html(detail::step_text(s, page.sessions)) + "</p>\n" +
                detail::series_chart(s, page.sessions) + "\n</section>\n";
    }
    return html + "</body></html>\n";
}

// Atomically (report_file.hpp); throws ReportError naming the file.
inline void write_history_page(const std::string& path, const HistoryPage& page) {
    write_report_file(path, history_html(page));
}

} // namespace report
} // namespace pycroscope
