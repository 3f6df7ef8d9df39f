#pragma once
// Hotspots of a Profile, for every mode (traced, line, sampled): functions
// and lines ranked by their share of the run, each with a severity, the top
// callers and callees of each function, and the hot path.
//
//   self share    function self / Profile::total
//   total share   function inclusive / Profile::total
//   severity      from the self share (a line: its time share):
//                 critical >= 25%, high >= 10%, medium >= 3%, low below
//                 (SeverityThresholds; docs/analysis.md says why)
//   hot path      from the tree's root, the child with the most inclusive
//                 weight, while that child holds at least 5% of the run
//
// A caller's share is the part of the function's inclusive weight spent
// under that caller; a callee's share is the part of the function's
// inclusive weight spent in that callee.

#include "pycroscope/model/profile.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace pycroscope {
namespace analysis {

enum class Severity : std::uint8_t { low = 0, medium = 1, high = 2, critical = 3 };

inline const char* to_string(Severity severity) noexcept {
    switch (severity) {
    case Severity::critical: return "critical";
    case Severity::high: return "high";
    case Severity::medium: return "medium";
    case Severity::low: return "low";
    }
    return "low";
}

// Lower bounds in percent of the run.
struct SeverityThresholds {
    double critical_pct = 25.0;
    double high_pct = 10.0;
    double medium_pct = 3.0;

    Severity grade(double pct) const noexcept {
        return pct >= critical_pct ? Severity::critical
               : pct >= high_pct   ? Severity::high
               : pct >= medium_pct ? Severity::medium
                                   : Severity::low;
    }
};

struct RankingOptions {
    std::size_t top = 20;           // functions and lines kept; 0 keeps all
    std::size_t related = 3;        // callers and callees kept per function; 0 keeps all
    double hot_path_min_pct = 5.0;  // the hot path stops at a child below this share
    SeverityThresholds thresholds;
};

// A caller or callee of a ranked function.
struct RelatedFunction {
    std::uint32_t function = model::no_index;
    std::uint64_t calls = 0;
    std::uint64_t inclusive = 0; // the edge's inclusive weight
    double pct = 0;              // of the ranked function's inclusive weight
};

struct RankedFunction {
    std::uint32_t function = model::no_index;
    std::uint64_t calls = 0;
    std::uint64_t self = 0;
    std::uint64_t inclusive = 0;
    double self_pct = 0;
    double total_pct = 0;
    Severity severity = Severity::low;
    std::vector<RelatedFunction> callers; // most inclusive weight first
    std::vector<RelatedFunction> callees;
};

struct RankedLine {
    std::uint32_t line = model::no_index; // index into Profile::lines
    std::uint64_t hits = 0;
    std::uint64_t time = 0;
    double pct = 0;       // time share
    double total_pct = 0; // total share (sampled: the line anywhere on the stack)
    Severity severity = Severity::low;
};

struct HotPathStep {
    std::uint32_t function = model::no_index;
    std::uint64_t inclusive = 0;
    std::uint64_t self = 0;
    double pct = 0; // inclusive share of the run
};

struct HotspotRanking {
    model::Unit unit = model::Unit::nanoseconds;
    std::uint64_t total = 0;
    SeverityThresholds thresholds;
    std::vector<RankedFunction> functions; // by self weight, then inclusive
    std::vector<RankedLine> lines;         // by time, then total
    std::vector<HotPathStep> hot_path;     // outermost first
};

namespace detail {
inline double share(std::uint64_t part, std::uint64_t whole) noexcept {
    return whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

inline std::vector<RelatedFunction> related(const model::Profile& profile, std::uint32_t f, bool callers,
                                            std::size_t keep) {
    std::vector<RelatedFunction> out;
    const std::uint64_t whole = profile.functions[f].inclusive;
    for (const model::Edge& e : profile.edges) {
        if ((callers ? e.callee : e.caller) != f) {
            continue;
        }
        out.push_back(RelatedFunction{callers ? e.caller : e.callee, e.calls, e.inclusive, share(e.inclusive, whole)});
    }
    std::sort(out.begin(), out.end(), [](const RelatedFunction& a, const RelatedFunction& b) {
        return a.inclusive != b.inclusive ? a.inclusive > b.inclusive : a.function < b.function;
    });
    if (keep > 0 && out.size() > keep) {
        out.resize(keep);
    }
    return out;
}

// Without a tree (a file written without one): follow the heaviest edges
// from the heaviest function that has no caller, never revisiting one.
inline std::vector<HotPathStep> hot_path_from_edges(const model::Profile& profile, double min_pct) {
    std::vector<HotPathStep> path;
    std::uint32_t at = model::no_index;
    for (std::uint32_t f = 0; f < profile.functions.size(); ++f) {
        if (profile.callers_of(f).empty() &&
            (at == model::no_index || profile.functions[f].inclusive > profile.functions[at].inclusive)) {
            at = f;
        }
    }
    std::vector<bool> visited(profile.functions.size(), false);
    while (at != model::no_index && !visited[at]) {
        const model::Function& fn = profile.functions[at];
        const double pct = share(fn.inclusive, profile.total);
        if (pct < min_pct) {
            break;
        }
        visited[at] = true;
        path.push_back(HotPathStep{at, fn.inclusive, fn.self, pct});
        std::uint32_t next = model::no_index;
        std::uint64_t best = 0;
        for (const model::Edge& e : profile.edges) {
            if (e.caller == at && !visited[e.callee] && (next == model::no_index || e.inclusive > best)) {
                next = e.callee;
                best = e.inclusive;
            }
        }
        at = next;
    }
    return path;
}
} // namespace detail

// The hot path: from the root, the heaviest child while it holds min_pct.
inline std::vector<HotPathStep> hot_path(const model::Profile& profile, double min_pct = 5.0) {
    if (profile.tree.size() <= 1) {
        return detail::hot_path_from_edges(profile, min_pct);
    }
    // Heaviest child of each node, in one pass (parents precede children).
    std::vector<std::uint32_t> heaviest(profile.tree.size(), model::no_index);
    for (std::uint32_t n = 1; n < profile.tree.size(); ++n) {
        const std::uint32_t parent = profile.tree[n].parent;
        if (parent >= profile.tree.size()) {
            continue;
        }
        std::uint32_t& best = heaviest[parent];
        if (best == model::no_index || profile.tree[n].inclusive > profile.tree[best].inclusive) {
            best = n;
        }
    }
    std::vector<HotPathStep> path;
    for (std::uint32_t n = heaviest[0]; n != model::no_index && path.size() < profile.tree.size(); n = heaviest[n]) {
        const model::TreeNode& node = profile.tree[n];
        const double pct = detail::share(node.inclusive, profile.total);
        if (pct < min_pct || node.function >= profile.functions.size()) {
            break;
        }
        path.push_back(HotPathStep{node.function, node.inclusive, node.self, pct});
    }
    return path;
}

inline HotspotRanking rank_hotspots(const model::Profile& profile, const RankingOptions& options = {}) {
    HotspotRanking out;
    out.unit = profile.unit;
    out.total = profile.total;
    out.thresholds = options.thresholds;
    for (std::uint32_t f = 0; f < profile.functions.size(); ++f) {
        const model::Function& fn = profile.functions[f];
        if (fn.self == 0 && fn.inclusive == 0 && fn.calls == 0) {
            continue;
        }
        RankedFunction r;
        r.function = f;
        r.calls = fn.calls;
        r.self = fn.self;
        r.inclusive = fn.inclusive;
        r.self_pct = detail::share(fn.self, profile.total);
        r.total_pct = detail::share(fn.inclusive, profile.total);
        r.severity = options.thresholds.grade(r.self_pct);
        out.functions.push_back(std::move(r));
    }
    std::sort(out.functions.begin(), out.functions.end(), [](const RankedFunction& a, const RankedFunction& b) {
        if (a.self != b.self) {
            return a.self > b.self;
        }
        return a.inclusive != b.inclusive ? a.inclusive > b.inclusive : a.function < b.function;
    });
    if (options.top > 0 && out.functions.size() > options.top) {
        out.functions.resize(options.top);
    }
    for (RankedFunction& r : out.functions) {
        r.callers = detail::related(profile, r.function, true, options.related);
        r.callees = detail::related(profile, r.function, false, options.related);
    }
    for (std::uint32_t i = 0; i < profile.lines.size(); ++i) {
        const model::Line& line = profile.lines[i];
        if (line.time == 0 && line.total == 0 && line.hits == 0) {
            continue;
        }
        RankedLine r;
        r.line = i;
        r.hits = line.hits;
        r.time = line.time;
        r.pct = detail::share(line.time, profile.total);
        r.total_pct = detail::share(line.total, profile.total);
        r.severity = options.thresholds.grade(r.pct);
        out.lines.push_back(r);
    }
    std::sort(out.lines.begin(), out.lines.end(), [&](const RankedLine& a, const RankedLine& b) {
        if (a.time != b.time) {
            return a.time > b.time;
        }
        const std::uint64_t at = profile.lines[a.line].total, bt = profile.lines[b.line].total;
        return at != bt ? at > bt : a.line < b.line;
    });
    if (options.top > 0 && out.lines.size() > options.top) {
        out.lines.resize(options.top);
    }
    out.hot_path = hot_path(profile, options.hot_path_min_pct);
    return out;
}

} // namespace analysis
} // namespace pycroscope
