#pragma once
// The profiled program's source files for the report's heatmap: the files
// session.json attributes time, samples, allocations or findings to, read
// from disk at render time, heaviest first, within the report's limits.
// Files of the program itself come before the standard library's and
// site-packages'; pseudo-files ("<frozen ...>", "<built-in>", "<string>")
// are skipped.
//
//     report::JsonValue files = report::collect_source_files(session, script, limits);
//     // [{"path", "text", "truncated", "bytes"}, ...]

#include "pycroscope/report/json_document.hpp"
#include "pycroscope/report/report_inputs.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace pycroscope {
namespace report {

namespace detail {

inline bool is_library_path(const std::string& path) {
    return path.find("/lib/python") != std::string::npos || path.find("site-packages") != std::string::npos ||
           path.find("dist-packages") != std::string::npos;
}

inline void weigh_files(const JsonValue* rows, const char* weight_key, double scale,
                        std::map<std::string, double>& weights) {
    if (rows == nullptr || !rows->is_array()) {
        return;
    }
    for (const auto& row : rows->items()) {
        const std::string file = row.get_string("file");
        if (file.empty() || file[0] == '<') {
            continue;
        }
        weights[file] += scale * (weight_key != nullptr ? row.get_number(weight_key) : 1.0) + 1e-9;
    }
}

// Reads at most max_bytes of path; false when it is not a readable file.
inline bool read_prefix(const std::string& path, std::size_t max_bytes, std::string& text, bool& truncated) {
    std::FILE* file = std::fopen(path.c_str(), "rb");
    if (file == nullptr) {
        return false;
    }
    text.assign(max_bytes + 1, '\0');
    const std::size_t got = std::fread(&text[0], 1, text.size(), file);
    const bool failed = std::ferror(file) != 0;
    std::fclose(file);
    if (failed) {
        return false;
    }
    truncated = got > max_bytes;
    text.resize(std::min(got, max_bytes));
    if (truncated) {
        const std::size_t last_line = text.rfind('\n');
        text.resize(last_line == std::string::npos ? 0 : last_line + 1);
    }
    return text.find('\0') == std::string::npos; // not a source file
}

} // namespace detail

inline JsonValue collect_source_files(const JsonValue& session, const ReportLimits& limits) {
    std::map<std::string, double> weights;
    const double huge = 1e30;
    detail::weigh_files(session.find("functions"), "self_ns", 1.0, weights);
    detail::weigh_files(session.find("lines"), "time_ns", 1.0, weights);
    if (const JsonValue* hotspots = session.find("hotspots")) {
        detail::weigh_files(hotspots->find("functions"), "self_samples", 1e6, weights);
        detail::weigh_files(hotspots->find("lines"), "samples", 1e6, weights);
    }
    if (const JsonValue* memory = session.find("memory")) {
        detail::weigh_files(memory->find("sites"), "bytes", 1.0, weights);
    }
    for (const char* key : {"findings", "recommendations"}) {
        detail::weigh_files(session.find(key), nullptr, huge, weights);
        if (const JsonValue* health = session.find("health")) {
            detail::weigh_files(health->find(key), nullptr, huge, weights);
        }
    }
    std::vector<std::pair<std::string, double>> ranked(weights.begin(), weights.end());
    for (auto& entry : ranked) {
        if (detail::is_library_path(entry.first)) {
            entry.second *= 1e-12; // after every file of the program itself
        }
    }
    std::stable_sort(ranked.begin(), ranked.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });

    JsonValue files = JsonValue::make_array();
    std::size_t total = 0;
    for (const auto& entry : ranked) {
        if (files.items().size() >= limits.source_files || total >= limits.source_total_bytes) {
            break;
        }
        std::string text;
        bool truncated = false;
        const std::size_t budget = std::min(limits.source_file_bytes, limits.source_total_bytes - total);
        if (!detail::read_prefix(entry.first, budget, text, truncated)) {
            continue;
        }
        total += text.size();
        JsonValue file = JsonValue::make_object();
        file.set("path", JsonValue::make_string(entry.first));
        file.set("truncated", JsonValue::make_bool(truncated));
        file.set("bytes", JsonValue::make_number_text(std::to_string(text.size())));
        file.set("text", JsonValue::make_string(std::move(text)));
        files.push_back(std::move(file));
    }
    return files;
}

} // namespace report
} // namespace pycroscope
