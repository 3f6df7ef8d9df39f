#pragma once
// session.json's "functions" and "c_functions" entries: per function calls,
// resumes, inclusive and self time from the summary sink, and, given the
// session's ProfileBuilder on a traced run, its callers and callees (name,
// file, line, calls, time_ns, self_ns), heaviest first. Written the same by
// the live tracer's sections and by a replay.

#include "pycroscope/core/source_location.hpp"
#include "pycroscope/model/profile.hpp"
#include "pycroscope/model/profile_builder.hpp"
#include "pycroscope/sinks/json_summary_sink.hpp"
#include "pycroscope/sinks/json_writer.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace pycroscope {
namespace sinks {

inline void write_call_edges(JsonWriter& json, const model::Profile& profile,
                             const std::vector<const model::Edge*>& edges, bool callers) {
    json.begin_array();
    for (const model::Edge* e : edges) {
        const model::Function& f = profile.functions[callers ? e->caller : e->callee];
        json.begin_object()
            .field("name", f.name)
            .field("file", f.file)
            .field("line", f.line)
            .field("calls", e->calls)
            .field("time_ns", e->inclusive)
            .field("self_ns", e->self)
            .end_object();
    }
    json.end_array();
}

inline void write_function_entries(JsonWriter& json, const JsonSummarySink& sink, LocationKind kind,
                                   const model::ProfileBuilder* builder) {
    // The call graph by function, heaviest first (traced runs only: weights in ns).
    const model::Profile* profile =
        builder != nullptr && builder->profile().unit == model::Unit::nanoseconds ? &builder->profile() : nullptr;
    std::vector<std::vector<const model::Edge*>> callers, callees;
    if (profile != nullptr) {
        callers.resize(profile->functions.size());
        callees.resize(profile->functions.size());
        for (const model::Edge& e : profile->edges) {
            callers[e.callee].push_back(&e);
            callees[e.caller].push_back(&e);
        }
        const auto heavier = [](const model::Edge* a, const model::Edge* b) {
            return a->inclusive != b->inclusive ? a->inclusive > b->inclusive : a->calls > b->calls;
        };
        for (auto& list : callers) {
            std::stable_sort(list.begin(), list.end(), heavier);
        }
        for (auto& list : callees) {
            std::stable_sort(list.begin(), list.end(), heavier);
        }
    }
    json.begin_array();
    for (const auto& stats : sink.location_stats()) {
        if (stats.location->kind != kind) {
            continue;
        }
        // The sink's times: the Profile's own (overhead-compensated) when the
        // sink reads the ProfileBuilder (JsonSummarySink::use_profile).
        const std::uint32_t f = profile != nullptr ? builder->function_index(stats.location) : model::no_index;
        json.begin_object()
            .field("name", stats.location->display_name())
            .field("file", stats.location->file)
            .field("line", stats.location->line)
            .field("calls", stats.count)
            .field("resumes", stats.resumes)
            .field("inclusive_ns", static_cast<std::uint64_t>(stats.inclusive_ns + 0.5))
            .field("self_ns", static_cast<std::uint64_t>(stats.self_ns + 0.5));
        if (f < callers.size()) {
            json.key("callers");
            write_call_edges(json, *profile, callers[f], true);
            json.key("callees");
            write_call_edges(json, *profile, callees[f], false);
        }
        json.end_object();
    }
    json.end_array();
}

} // namespace sinks
} // namespace pycroscope
