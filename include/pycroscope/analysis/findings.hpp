#pragma once
// Findings: anti-patterns in the profiled Python sources, each tied to the
// time the run measured on the lines it covers. The sites come from the
// source pass (source_facts.hpp); this file joins them with the Profile and
// grades them, without Python.
//
//   time_share         fraction of the run on the site's lines [line, end_line] of
//                      its function (line data: traced line time, which
//                      includes the calls a line makes, or sampled line
//                      totals); without line data for that file, the
//                      function's own time: self plus the C functions it
//                      calls directly (time_basis "function", an upper bound)
//   severity           from time_share, with the hotspot thresholds
//                      (critical >= 25%, high >= 10%, medium >= 3%)
//   estimated_saving   fraction of the whole run the fix saves:
//                      time_share x the kind's expected gain (expected_gain())
//   estimated_speedup  the whole run's speedup from it (Amdahl):
//                      1 / (1 - estimated_saving)
//
// Maintainability kinds (high_complexity, dead_code, unused_import) are
// graded the same way; they carry no expected gain. Functions never called
// are dead_code only in a traced run: a sampled run cannot tell.

#include "pycroscope/analysis/hotspots.hpp"
#include "pycroscope/analysis/source_facts.hpp"
#include "pycroscope/model/profile.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pycroscope {
namespace analysis {

// Every kind, in the order options and docs list them.
inline const std::array<const char*, 11>& finding_kinds() {
    static const std::array<const char*, 11> kinds = {
        "nested_loop",   "membership_in_list", "string_concat_in_loop", "list_front_ops",
        "loop_invariant", "redundant_call",    "global_in_loop",        "exception_in_loop",
        "high_complexity", "dead_code",        "unused_import"};
    return kinds;
}

inline bool is_maintainability_kind(std::string_view kind) {
    return kind == "high_complexity" || kind == "dead_code" || kind == "unused_import";
}

// The fraction of the covered time a fix is expected to remove (see
// docs/analysis.md for why each figure).
inline double expected_gain(std::string_view kind) {
    if (kind == "membership_in_list" || kind == "list_front_ops") return 0.8;
    if (kind == "nested_loop" || kind == "redundant_call") return 0.5;
    if (kind == "string_concat_in_loop" || kind == "loop_invariant") return 0.3;
    if (kind == "exception_in_loop") return 0.1;
    if (kind == "global_in_loop") return 0.05;
    return 0.0;
}

// The whole run's speedup when a fraction saving of it disappears.
inline double amdahl_speedup(double saving) noexcept {
    return saving <= 0 ? 1.0 : saving >= 0.999 ? 1000.0 : 1.0 / (1.0 - saving);
}

inline bool parse_severity(std::string_view text, Severity& out) {
    for (const Severity s : {Severity::low, Severity::medium, Severity::high, Severity::critical}) {
        if (text == to_string(s)) {
            out = s;
            return true;
        }
    }
    return false;
}

struct FindingOptions {
    bool enabled = true;                      // --no-patterns turns the pass off
    Severity threshold = Severity::low;       // pattern_severity_threshold: this severity and above
    bool include_libraries = false;           // analyse the standard library and installed packages too
    std::uint32_t complexity_threshold = 10;  // high_complexity: McCabe above this
    SeverityThresholds thresholds;
    std::array<bool, 11> kinds{true, true, true, true, true, true, true, true, true, true, true};

    bool wants(std::string_view kind) const {
        const auto& names = finding_kinds();
        for (std::size_t i = 0; i < names.size(); ++i) {
            if (kind == names[i]) {
                return kinds[i];
            }
        }
        return false;
    }

    // A comma-separated list of presets ("all", "performance": the loop and
    // call kinds, "maintainability": complexity, dead code, unused imports)
    // and kind names, each optionally prefixed by '-' to turn it off. The
    // first item that is not a '-' item starts from nothing. Returns false
    // and sets error on an unknown name.
    bool select(std::string_view list, std::string& error) {
        bool first_positive = true;
        std::size_t at = 0;
        while (at <= list.size()) {
            const std::size_t end = std::min(list.find(',', at), list.size());
            std::string_view item = list.substr(at, end - at);
            at = end + 1;
            if (item.empty()) {
                continue;
            }
            const bool off = item.front() == '-';
            if (off) {
                item.remove_prefix(1);
            } else if (first_positive) {
                kinds.fill(false);
                first_positive = false;
            }
            const auto& names = finding_kinds();
            bool known = false;
            for (std::size_t i = 0; i < names.size(); ++i) {
                const bool preset = item == "all" || (item == "performance" && !is_maintainability_kind(names[i])) ||
                                    (item == "maintainability" && is_maintainability_kind(names[i]));
                if (preset || item == names[i]) {
                    kinds[i] = !off;
                    known = true;
                }
            }
            if (!known && (item == "performance" || item == "maintainability" || item == "all")) {
                known = true;
            }
            if (!known) {
                error = "unknown pattern '" + std::string(item) +
                        "' (accepted: all, performance, maintainability, or a kind such as nested_loop)";
                return false;
            }
        }
        return true;
    }
};

struct Finding {
    std::string kind;
    std::string file;
    std::uint32_t line = 0;
    std::uint32_t end_line = 0;
    std::string function;
    Severity severity = Severity::low;
    std::string message;
    std::string suggestion;
    double time_share = 0;        // fraction of the run (0..1)
    double estimated_saving = 0;  // fraction of the run the fix saves
    double estimated_speedup = 1; // the whole run's speedup from the fix: 1 / (1 - saving)
    const char* time_basis = "lines"; // "lines", "function" or "none"
};

struct SkippedSource {
    std::string file;
    std::string reason;
};

struct FindingReport {
    bool enabled = false;            // the pass ran (FindingOptions::enabled)
    std::vector<Finding> findings; // most time first
    std::size_t files_analysed = 0;
    std::vector<std::string> files;  // the files analysed
    std::vector<SkippedSource> skipped;
    std::size_t below_threshold = 0; // findings left out by FindingOptions::threshold
    bool line_data = false;          // the profile had line data for some analysed file
    double seconds = 0;              // time the source pass took
    std::string error;               // the source pass failed (no findings then)
};

namespace detail {

inline std::string suggestion_for(std::string_view kind) {
    if (kind == "nested_loop") return "index the inner collection (a dict or set keyed by what the inner loop looks for) so the work grows as n, not n*m";
    if (kind == "membership_in_list") return "make the collection a set (or dict) once, before the loop: `in` on a list scans it";
    if (kind == "string_concat_in_loop") return "collect the pieces in a list and \"\".join() them after the loop";
    if (kind == "list_front_ops") return "use collections.deque (popleft/appendleft) or walk the list with an index";
    if (kind == "loop_invariant") return "compute it once before the loop and reuse the value";
    if (kind == "redundant_call") return "keep the first result in a local variable and reuse it";
    if (kind == "global_in_loop") return "bind the global to a local (or a default argument) before the loop";
    if (kind == "exception_in_loop") return "check the condition before the operation, or move the try outside the loop";
    if (kind == "high_complexity") return "split the function into smaller ones, or replace branch chains with a table";
    if (kind == "dead_code") return "remove it, or test it if it is meant to run";
    if (kind == "unused_import") return "remove the import";
    return "";
}

inline std::string message_for(const SourceSite& site) {
    std::string text;
    if (site.kind == "nested_loop") text = "nested loop: ";
    else if (site.kind == "membership_in_list") text = "membership test on a list in a loop: ";
    else if (site.kind == "string_concat_in_loop") text = "string concatenation in a loop: ";
    else if (site.kind == "list_front_ops") text = "list front operation in a loop: ";
    else if (site.kind == "loop_invariant") text = "loop-invariant computation: ";
    else if (site.kind == "redundant_call") text = "redundant call: ";
    else if (site.kind == "global_in_loop") text = "global lookup in a loop: ";
    else if (site.kind == "exception_in_loop") text = "exception handling in a loop: ";
    else if (site.kind == "dead_code") text = "dead code: ";
    else if (site.kind == "unused_import") text = "unused import: ";
    return text + site.detail;
}

// The Profile's Python functions of one file by first line, and whether it
// has line data.
struct FileIndex {
    std::map<std::uint32_t, std::uint32_t> by_line; // co_firstlineno -> function
    std::vector<std::uint32_t> lines;               // indexes into Profile::lines
};

inline std::uint32_t function_at(const FileIndex* index, std::uint32_t first_line, std::uint32_t def_line) {
    if (index == nullptr) {
        return model::no_index;
    }
    for (const std::uint32_t line : {first_line, def_line}) {
        const auto it = index->by_line.find(line);
        if (it != index->by_line.end()) {
            return it->second;
        }
    }
    return model::no_index;
}

// The function's own time: self plus the C functions it calls directly.
inline std::uint64_t own_time(const model::Profile& profile, std::uint32_t f) {
    std::uint64_t time = profile.functions[f].self;
    for (const model::Edge& e : profile.edges) {
        if (e.caller == f && e.callee < profile.functions.size() &&
            profile.functions[e.callee].kind == LocationKind::c_function) {
            time += e.inclusive;
        }
    }
    return std::min(time, std::max(profile.functions[f].inclusive, profile.functions[f].self));
}

} // namespace detail

// The message without the note on its time basis.
inline std::string message_without_basis(const std::string& message) {
    const std::size_t at = message.find(" (no line data:");
    return at == std::string::npos ? message : message.substr(0, at);
}

// Joins the source facts with the profile (see the top of this file).
inline FindingReport find_patterns(const model::Profile& profile, const SourceFacts& facts,
                                   const FindingOptions& options = {}) {
    FindingReport report;
    report.seconds = facts.seconds;
    if (!options.enabled) {
        return report;
    }
    report.enabled = true;
    report.error = facts.error;
    std::map<std::string, detail::FileIndex> files;
    for (std::uint32_t f = 0; f < profile.functions.size(); ++f) {
        const model::Function& fn = profile.functions[f];
        if (fn.kind == LocationKind::python_function) {
            files[fn.file].by_line.emplace(fn.line, f);
        }
    }
    for (std::uint32_t i = 0; i < profile.lines.size(); ++i) {
        files[profile.lines[i].file].lines.push_back(i);
    }
    const bool samples = profile.unit == model::Unit::samples;
    const auto share = [&](std::uint64_t part) { return detail::share(part, profile.total) / 100.0; };

    for (const SourceFile& source : facts.files) {
        if (!source.skipped.empty()) {
            report.skipped.push_back(SkippedSource{source.file, source.skipped});
            continue;
        }
        ++report.files_analysed;
        report.files.push_back(source.file);
        const auto found = files.find(source.file);
        const detail::FileIndex* index = found == files.end() ? nullptr : &found->second;
        const bool has_lines = index != nullptr && !index->lines.empty();
        report.line_data = report.line_data || has_lines;

        // Time on [line, end_line] of function f (any function when f is no_index).
        const auto lines_time = [&](std::uint32_t from, std::uint32_t to, std::uint32_t f) {
            std::uint64_t time = 0;
            for (const std::uint32_t i : index->lines) {
                const model::Line& l = profile.lines[i];
                if (l.line >= from && l.line <= to && (f == model::no_index || l.function == f)) {
                    time += samples ? l.total : l.time;
                }
            }
            return std::min(time, profile.total);
        };
        const auto emit = [&](Finding finding, std::uint32_t f, bool whole_function) {
            if (has_lines) {
                finding.time_share = share(lines_time(finding.line, finding.end_line, f));
                finding.time_basis = "lines";
            } else if (f != model::no_index) {
                finding.time_share = share(whole_function ? profile.functions[f].inclusive
                                                          : detail::own_time(profile, f));
                finding.time_basis = "function";
                finding.message += whole_function ? " (no line data: the function's share)"
                                                  : " (no line data: the function's own share)";
            } else {
                finding.time_share = 0;
                finding.time_basis = "none";
            }
            finding.severity = options.thresholds.grade(100.0 * finding.time_share);
            finding.estimated_saving = finding.time_share * expected_gain(finding.kind);
            finding.estimated_speedup = amdahl_speedup(finding.estimated_saving);
            if (finding.severity < options.threshold) {
                ++report.below_threshold;
                return;
            }
            finding.suggestion = detail::suggestion_for(finding.kind);
            report.findings.push_back(std::move(finding));
        };

        for (const SourceSite& site : source.sites) {
            if (!options.wants(site.kind)) {
                continue;
            }
            Finding finding;
            finding.kind = site.kind;
            finding.file = source.file;
            finding.line = site.line;
            finding.end_line = site.end_line;
            finding.function = site.function;
            finding.message = detail::message_for(site);
            const std::uint32_t f = site.function_line == 0
                                        ? detail::function_at(index, 1, 0)
                                        : detail::function_at(index, site.function_line, site.function_line);
            // Unreachable code and imports take no time of their function.
            const bool timeless = site.kind == "dead_code" || site.kind == "unused_import";
            emit(std::move(finding), timeless || site.function_line == 0 ? model::no_index : f, false);
        }
        for (const SourceFunction& fn : source.functions) {
            const std::uint32_t f = detail::function_at(index, fn.first_line, fn.def_line);
            const bool ran = f != model::no_index &&
                             (profile.functions[f].calls > 0 || profile.functions[f].self > 0 ||
                              profile.functions[f].inclusive > 0 || profile.functions[f].resumes > 0);
            if (options.wants("high_complexity") && fn.complexity > options.complexity_threshold) {
                Finding finding;
                finding.kind = "high_complexity";
                finding.file = source.file;
                finding.line = fn.def_line;
                finding.end_line = fn.end_line;
                finding.function = fn.name;
                char text[96];
                std::snprintf(text, sizeof text, "high complexity: McCabe %u (above %u)", fn.complexity,
                              options.complexity_threshold);
                finding.message = text;
                emit(std::move(finding), ran ? f : model::no_index, true);
            }
            if (options.wants("dead_code") && !samples && !ran) {
                Finding finding;
                finding.kind = "dead_code";
                finding.file = source.file;
                finding.line = fn.def_line;
                finding.end_line = fn.end_line;
                finding.function = fn.name;
                finding.message = "dead code: " + fn.name + " was never called during the run";
                emit(std::move(finding), model::no_index, false);
            }
        }
    }
    std::stable_sort(report.findings.begin(), report.findings.end(), [](const Finding& a, const Finding& b) {
        if (a.time_share != b.time_share) {
            return a.time_share > b.time_share;
        }
        if (a.file != b.file) {
            return a.file < b.file;
        }
        return a.line != b.line ? a.line < b.line : a.kind < b.kind;
    });
    return report;
}

} // namespace analysis
} // namespace pycroscope
