#pragma once
// The Profile's sections of session.json (schema in docs/session-format.md):
//
//   "profile"   the model itself: threads, functions, edges, tree, lines and
//               totals, read back by model::load_profile()
//   "ranking"   hotspots with severity (analysis/hotspots.hpp), functions
//               with their top callers and callees, and lines
//   "hot_path"  the chain of heaviest calls from the root
//
// Weights are in the profile's unit ("ns" or "samples").

#include "pycroscope/analysis/hotspots.hpp"
#include "pycroscope/model/profile.hpp"
#include "pycroscope/model/profile_builder.hpp"
#include "pycroscope/sinks/json_summary_sink.hpp"
#include "pycroscope/sinks/json_writer.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace pycroscope {
namespace sinks {

struct ProfileSectionOptions {
    // The tree keeps its heaviest nodes (and their ancestors) up to this
    // many; profile.tree_pruned counts the rest. 0 writes every node.
    std::size_t max_tree_nodes = 20000;
    analysis::RankingOptions ranking;
};

// Kind names of the "profile" section: unlike "zones", a dynamic zone keeps its own name.
inline const char* profile_kind_name(LocationKind kind) noexcept {
    return kind == LocationKind::dynamic_zone ? "dynamic_zone" : kind_name(kind);
}

inline void write_profile(JsonWriter& json, const model::Profile& profile, const ProfileSectionOptions& options = {}) {
    // Which tree nodes to write: all, or the heaviest and their ancestors.
    const std::size_t nodes = profile.tree.size();
    std::vector<bool> keep(nodes, true);
    if (options.max_tree_nodes > 0 && nodes > options.max_tree_nodes + 1) {
        std::vector<std::uint64_t> weights;
        for (std::size_t n = 1; n < nodes; ++n) {
            weights.push_back(profile.tree[n].inclusive);
        }
        std::nth_element(weights.begin(), weights.begin() + static_cast<std::ptrdiff_t>(options.max_tree_nodes - 1),
                         weights.end(), std::greater<std::uint64_t>());
        const std::uint64_t cutoff = weights[options.max_tree_nodes - 1];
        std::size_t kept = 0;
        for (std::size_t n = 1; n < nodes; ++n) {
            keep[n] = profile.tree[n].inclusive > cutoff ||
                      (profile.tree[n].inclusive == cutoff && kept < options.max_tree_nodes);
            kept += keep[n] ? 1 : 0;
        }
        for (std::size_t n = nodes; n-- > 1;) {
            if (keep[n] && profile.tree[n].parent < nodes) {
                keep[profile.tree[n].parent] = true;
            }
        }
    }
    std::vector<std::uint32_t> renumbered(nodes, model::no_index);
    std::uint32_t next = 0;
    for (std::size_t n = 0; n < nodes; ++n) {
        if (keep[n]) {
            renumbered[n] = next++;
        }
    }
    const std::uint64_t pruned = nodes == 0 ? 0 : nodes - next;

    json.begin_object()
        .field("schema", model::Profile::schema_version)
        .field("unit", model::to_string(profile.unit))
        .field("wall_ns", profile.wall_ns)
        .field("total", profile.total)
        .field("unclosed_spans", profile.unclosed_spans)
        .field("unmatched_ends", profile.unmatched_ends)
        .field("max_depth", profile.max_depth)
        .field("tree_pruned", profile.tree_pruned + pruned);
    json.key("threads").begin_array();
    for (const model::Thread& t : profile.threads) {
        json.begin_object()
            .field("index", t.index)
            .field("os_tid", t.os_tid)
            .field("name", t.name)
            .field("total", t.total)
            .end_object();
    }
    json.end_array();
    json.key("functions").begin_array();
    for (std::uint32_t i = 0; i < profile.functions.size(); ++i) {
        const model::Function& f = profile.functions[i];
        json.begin_object()
            .field("id", i)
            .field("name", f.name)
            .field("file", f.file)
            .field("line", f.line)
            .field("kind", profile_kind_name(f.kind))
            .field("calls", f.calls)
            .field("resumes", f.resumes)
            .field("self", f.self)
            .field("inclusive", f.inclusive)
            .field("unclosed", f.unclosed);
        json.key("threads").begin_array();
        for (const model::ThreadShare& s : f.threads) {
            json.begin_object()
                .field("thread", s.thread)
                .field("calls", s.calls)
                .field("self", s.self)
                .field("inclusive", s.inclusive)
                .end_object();
        }
        json.end_array().end_object();
    }
    json.end_array();
    json.key("edges").begin_array();
    for (const model::Edge& e : profile.edges) {
        json.begin_array().value(e.caller).value(e.callee).value(e.calls).value(e.inclusive).value(e.self).end_array();
    }
    json.end_array();
    // [function, parent, calls, self, inclusive]; node 0 (the root) is implied.
    json.key("tree").begin_array();
    for (std::size_t n = 1; n < nodes; ++n) {
        if (!keep[n]) {
            continue;
        }
        const model::TreeNode& node = profile.tree[n];
        json.begin_array()
            .value(node.function)
            .value(renumbered[node.parent])
            .value(node.calls)
            .value(node.self)
            .value(node.inclusive)
            .end_array();
    }
    json.end_array();
    json.key("lines").begin_array();
    for (const model::Line& l : profile.lines) {
        json.begin_object()
            .field("file", l.file)
            .field("line", l.line)
            .field("function", l.function)
            .field("hits", l.hits)
            .field("time", l.time)
            .field("total", l.total)
            .end_object();
    }
    json.end_array();
    json.end_object();
}

namespace detail {
inline void write_function_ref(JsonWriter& json, const model::Function& f) {
    json.field("name", f.name).field("file", f.file).field("line", f.line).field("kind", kind_name(f.kind));
}

inline void write_related(JsonWriter& json, const model::Profile& profile,
                          const std::vector<analysis::RelatedFunction>& related) {
    json.begin_array();
    for (const auto& r : related) {
        json.begin_object();
        write_function_ref(json, profile.functions[r.function]);
        json.field("calls", r.calls).field("time", r.inclusive).field("pct", r.pct).end_object();
    }
    json.end_array();
}
} // namespace detail

inline void write_ranking(JsonWriter& json, const model::Profile& profile, const analysis::HotspotRanking& ranking) {
    json.begin_object().field("unit", model::to_string(ranking.unit)).field("total", ranking.total);
    json.key("thresholds")
        .begin_object()
        .field("critical_pct", ranking.thresholds.critical_pct)
        .field("high_pct", ranking.thresholds.high_pct)
        .field("medium_pct", ranking.thresholds.medium_pct)
        .end_object();
    json.key("functions").begin_array();
    for (const auto& r : ranking.functions) {
        json.begin_object();
        detail::write_function_ref(json, profile.functions[r.function]);
        json.field("calls", r.calls)
            .field("self", r.self)
            .field("inclusive", r.inclusive)
            .field("self_pct", r.self_pct)
            .field("total_pct", r.total_pct)
            .field("severity", analysis::to_string(r.severity));
        json.key("callers");
        detail::write_related(json, profile, r.callers);
        json.key("callees");
        detail::write_related(json, profile, r.callees);
        json.end_object();
    }
    json.end_array();
    json.key("lines").begin_array();
    for (const auto& r : ranking.lines) {
        const model::Line& line = profile.lines[r.line];
        json.begin_object()
            .field("file", line.file)
            .field("line", line.line)
            .field("function", line.function < profile.functions.size() ? profile.functions[line.function].name
                                                                        : std::string())
            .field("hits", r.hits)
            .field("time", r.time)
            .field("pct", r.pct)
            .field("total_pct", r.total_pct)
            .field("severity", analysis::to_string(r.severity))
            .end_object();
    }
    json.end_array();
    json.end_object();
}

inline void write_hot_path(JsonWriter& json, const model::Profile& profile,
                           const std::vector<analysis::HotPathStep>& path) {
    json.begin_array();
    for (const auto& step : path) {
        json.begin_object();
        detail::write_function_ref(json, profile.functions[step.function]);
        json.field("inclusive", step.inclusive).field("self", step.self).field("pct", step.pct).end_object();
    }
    json.end_array();
}

// Registers "profile", "ranking" and "hot_path" on sink. builder must be a
// processor of the same session and outlive its stop(): processors close
// before sinks, so the Profile is complete when session.json is written.
inline void add_profile_sections(JsonSummarySink& sink, const model::ProfileBuilder& builder,
                                 ProfileSectionOptions options = {}) {
    const model::ProfileBuilder* source = &builder;
    sink.add_section("profile", [source, options](JsonWriter& json, const SessionSummary&) {
        write_profile(json, source->profile(), options);
    });
    sink.add_section("ranking", [source, options](JsonWriter& json, const SessionSummary&) {
        write_ranking(json, source->profile(), analysis::rank_hotspots(source->profile(), options.ranking));
    });
    sink.add_section("hot_path", [source, options](JsonWriter& json, const SessionSummary&) {
        write_hot_path(json, source->profile(),
                       analysis::hot_path(source->profile(), options.ranking.hot_path_min_pct));
    });
}

} // namespace sinks
} // namespace pycroscope
