#pragma once
// report.md: the overview, findings, recommendations and top functions of a
// run in GitHub-flavoured markdown, for terminals and CI comments. Reads the
// same inputs as the HTML report; sections the run did not record say so.
//
//     report::write_markdown_report(dir + "/report.md", report::ReportInputs::from_output_dir(dir));
//
// Names from the profiled program are shown in code spans with backquotes,
// pipes and line breaks neutralised, so they cannot end a table cell or
// become markup.

#include "pycroscope/report/json_document.hpp"
#include "pycroscope/report/report_data.hpp"
#include "pycroscope/report/report_file.hpp"
#include "pycroscope/report/report_inputs.hpp"

#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace pycroscope {
namespace report {

namespace detail {

// Free text: HTML-significant characters as entities, no table breaks.
inline std::string md_text(std::string_view text) {
    std::string out;
    for (char c : text) {
        switch (c) {
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '&': out += "&amp;"; break;
            case '|': out += "\\|"; break;
            case '\n':
            case '\r': out += ' '; break;
            case '*':
            case '_':
            case '`':
            case '[':
            case ']':
            case '\\':
                out += '\\';
                out += c;
                break;
            default: out += c;
        }
    }
    return out;
}

// A name in a code span: markup is inert there, only '`', '|' and line
// breaks need care.
inline std::string md_code(std::string_view text) {
    std::string out = "`";
    for (char c : text) {
        switch (c) {
            case '`': out += '\''; break;
            case '|': out += "\\|"; break;
            case '\n':
            case '\r': out += ' '; break;
            default: out += c;
        }
    }
    out += '`';
    return out;
}

inline std::string md_number(double value, const char* format) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, format, value);
    return buffer;
}

inline std::string md_duration(double ns) {
    if (ns >= 1e9) {
        return md_number(ns / 1e9, "%.3f s");
    }
    if (ns >= 1e6) {
        return md_number(ns / 1e6, "%.3f ms");
    }
    if (ns >= 1e3) {
        return md_number(ns / 1e3, "%.1f us");
    }
    return md_number(ns, "%.0f ns");
}

inline std::string md_bytes(double bytes) {
    if (bytes >= 1024.0 * 1024 * 1024) {
        return md_number(bytes / (1024.0 * 1024 * 1024), "%.2f GiB");
    }
    if (bytes >= 1024.0 * 1024) {
        return md_number(bytes / (1024.0 * 1024), "%.2f MiB");
    }
    if (bytes >= 1024.0) {
        return md_number(bytes / 1024.0, "%.1f KiB");
    }
    return md_number(bytes, "%.0f B");
}

inline std::string md_location(const JsonValue& row) {
    const std::string file = row.get_string("file");
    const double line = row.get_number("line");
    if (file.empty()) {
        return "";
    }
    return md_code(line > 0 ? file + ":" + md_number(line, "%.0f") : file);
}

inline const JsonValue* health_list(const JsonValue& session, const char* key) {
    const JsonValue* list = session.find(key);
    if ((list == nullptr || !list->is_array()) && session.find("health") != nullptr) {
        list = session.find("health")->find(key);
    }
    return list != nullptr && list->is_array() ? list : nullptr;
}

inline void md_advice(std::string& out, const JsonValue& session, const char* key, const char* title,
                      std::size_t top) {
    out += std::string("\n## ") + title + "\n\n";
    const JsonValue* list = health_list(session, key);
    if (list == nullptr) {
        out += "_Not recorded in this run._\n";
        return;
    }
    if (list->items().empty()) {
        out += "None.\n";
        return;
    }
    std::size_t shown = 0;
    for (const auto& item : list->items()) {
        if (shown++ == top) {
            out += "- ... and " + std::to_string(list->items().size() - top) + " more (see report.html)\n";
            break;
        }
        out += "- ";
        const std::string severity = item.get_string("severity");
        if (!severity.empty()) {
            out += "**" + md_text(severity) + "** ";
        }
        const std::string where = md_location(item);
        if (!where.empty()) {
            out += where + " ";
        }
        const std::string function = item.get_string("function");
        if (!function.empty()) {
            out += "in " + md_code(function) + " ";
        }
        const std::string kind = item.get_string("kind");
        if (!kind.empty()) {
            out += "(" + md_text(kind) + ") ";
        }
        out += "- " + md_text(item.get_string("message"));
        const std::string suggestion = item.get_string("suggestion");
        if (!suggestion.empty()) {
            out += " Suggestion: " + md_text(suggestion);
        }
        if (item.find("time_share") != nullptr && item.find("time_share")->is_number()) {
            out += md_number(item.get_number("time_share") * 100, " (%.1f%% of the time");
            if (item.find("estimated_speedup") != nullptr && item.find("estimated_speedup")->is_number()) {
                out += md_number(item.get_number("estimated_speedup"), ", estimated speedup %.2fx");
            }
            out += ")";
        }
        out += "\n";
    }
}

} // namespace detail

// The markdown for already built report data (see report_data.hpp).
inline std::string render_markdown_report(const JsonValue& data, std::size_t top = 15) {
    using namespace detail;
    std::string out = "# Pycroscope report\n\n";
    const JsonValue* session = data.find("session");
    if (session == nullptr || !session->is_object()) {
        out += "_No session.json in this run: nothing was recorded._\n";
        if (const JsonValue* meta = data.find("report")) {
            if (const JsonValue* problems = meta->find("problems")) {
                for (const auto& problem : problems->items()) {
                    out += "- " + md_text(problem.text()) + "\n";
                }
            }
        }
        return out;
    }
    const JsonValue* process = session->find("process");
    const JsonValue* metadata = session->find("metadata");
    std::string script = metadata != nullptr ? metadata->get_string("script") : "";
    if (script.empty() && process != nullptr) {
        script = process->get_string("name");
    }
    out += "| | |\n|---|---|\n";
    out += "| script | " + (script.empty() ? std::string("-") : md_code(script)) + " |\n";
    out += "| duration | " + md_duration(session->get_number("duration_ns")) + " |\n";
    const JsonValue* threads = session->find("threads");
    if (threads != nullptr && threads->is_array()) {
        out += "| threads | " + std::to_string(threads->items().size()) + " |\n";
    }
    out += "| events | " + md_number(session->get_number("events_total"), "%.0f") + " (" +
           md_number(session->get_number("lost_events"), "%.0f") + " lost) |\n";
    if (const JsonValue* python = session->find("python")) {
        out += "| Python | " + md_text(python->get_string("version")) + ", backend " +
               md_text(python->get_string("backend")) + " |\n";
    }
    if (const JsonValue* system = session->find("system")) {
        if (const JsonValue* metrics = system->find("metrics")) {
            if (const JsonValue* cpu = metrics->find("cpu_percent")) {
                out += "| CPU | " + md_number(cpu->get_number("mean"), "%.1f%% mean, ") +
                       md_number(cpu->get_number("max"), "%.1f%% max |\n");
            }
            if (const JsonValue* rss = metrics->find("rss_bytes")) {
                out += "| RSS peak | " + md_bytes(rss->get_number("max")) + " |\n";
            }
        }
    }
    if (const JsonValue* memory = session->find("memory")) {
        out += "| Python heap peak | " + md_bytes(memory->get_number("peak_bytes")) + " (" +
               md_number(memory->get_number("allocations"), "%.0f") + " allocations) |\n";
    }
    if (const JsonValue* gc = session->find("gc")) {
        out += "| GC | " + md_number(gc->get_number("collections"), "%.0f collections, ") +
               md_duration(gc->get_number("time_ns")) + " |\n";
    }
    if (const JsonValue* health = session->find("health")) {
        const double score = health->is_number() ? health->as_double() : health->get_number("score");
        out += "| health | " + md_number(score, "%.0f") + " / 100 |\n";
    }

    md_advice(out, *session, "findings", "Findings", top);
    md_advice(out, *session, "recommendations", "Recommendations", top);

    out += "\n## Top functions by self time\n\n";
    std::vector<const JsonValue*> rows;
    for (const char* table : {"functions", "c_functions"}) {
        if (const JsonValue* list = session->find(table); list != nullptr && list->is_array()) {
            for (const auto& row : list->items()) {
                rows.push_back(&row);
            }
        }
    }
    const double duration = session->get_number("duration_ns");
    if (rows.empty()) {
        out += "_Not recorded in this run._\n";
    } else {
        std::stable_sort(rows.begin(), rows.end(), [](const JsonValue* a, const JsonValue* b) {
            return a->get_number("self_ns") > b->get_number("self_ns");
        });
        out += "| # | function | location | calls | self | inclusive | self % |\n";
        out += "|---:|---|---|---:|---:|---:|---:|\n";
        for (std::size_t i = 0; i < rows.size() && i < top; ++i) {
            const JsonValue& row = *rows[i];
            out += "| " + std::to_string(i + 1) + " | " + md_code(row.get_string("name")) + " | " +
                   md_location(row) + " | " + md_number(row.get_number("calls"), "%.0f") + " | " +
                   md_duration(row.get_number("self_ns")) + " | " + md_duration(row.get_number("inclusive_ns")) +
                   " | " + (duration > 0 ? md_number(100.0 * row.get_number("self_ns") / duration, "%.1f") : "-") +
                   " |\n";
        }
    }

    if (const JsonValue* hotspots = session->find("hotspots")) {
        out += "\n## Sampled hotspots (" + md_number(hotspots->get_number("samples"), "%.0f") + " samples)\n\n";
        const JsonValue* functions = hotspots->find("functions");
        if (functions == nullptr || !functions->is_array() || functions->items().empty()) {
            out += "_No samples._\n";
        } else {
            out += "| # | function | location | self % | total % | severity |\n|---:|---|---|---:|---:|---|\n";
            std::size_t i = 0;
            for (const auto& row : functions->items()) {
                if (i == top) {
                    break;
                }
                out += "| " + std::to_string(++i) + " | " + md_code(row.get_string("name")) + " | " +
                       md_location(row) + " | " + md_number(row.get_number("self_pct"), "%.1f") + " | " +
                       md_number(row.get_number("total_pct"), "%.1f") + " | " + md_text(row.get_string("severity")) +
                       " |\n";
            }
        }
    }

    if (const JsonValue* memory = session->find("memory")) {
        out += "\n## Top allocation sites\n\n";
        const JsonValue* sites = memory->find("sites");
        if (sites == nullptr || !sites->is_array() || sites->items().empty()) {
            out += "_None recorded._\n";
        } else {
            out += "| # | function | location | allocated | count |\n|---:|---|---|---:|---:|\n";
            std::size_t i = 0;
            for (const auto& row : sites->items()) {
                if (i == std::min<std::size_t>(top, 10)) {
                    break;
                }
                out += "| " + std::to_string(++i) + " | " + md_code(row.get_string("function")) + " | " +
                       md_location(row) + " | " + md_bytes(row.get_number("bytes")) + " | " +
                       md_number(row.get_number("count"), "%.0f") + " |\n";
            }
        }
    }
    out += "\nThe interactive report (flame graphs, call graph, source heatmap, memory, timeline) is report.html.\n";
    return out;
}

inline std::string render_markdown_report(const ReportInputs& inputs, std::size_t top = 15) {
    // Only session.json is needed; the flame graphs and sources are not read.
    ReportInputs session_only = inputs;
    session_only.stacks_folded.clear();
    session_only.memory_folded.clear();
    session_only.limits.source_files = 0;
    return render_markdown_report(build_report_data(session_only), top);
}

inline void write_markdown_report(const std::string& path, const ReportInputs& inputs, std::size_t top = 15) {
    write_report_file(path, render_markdown_report(inputs, top));
}

} // namespace report
} // namespace pycroscope
