#pragma once
// The Python sections of session.json: "python" (version, backend,
// conflicts, program_hooks) and "functions" (one entry per Python function with calls,
// resumes, inclusive and self time), plus "c_functions" for builtins.
// Given the session's ProfileBuilder, every entry also lists its callers
// and callees (name, file, line, calls, time_ns, self_ns) from the call graph.

#include "pycroscope/model/profile_builder.hpp"
#include "pycroscope/python/runtime/cpython.hpp"
#include "pycroscope/python/tracer/tracer.hpp"
#include "pycroscope/sinks/json_summary_sink.hpp"

#include <algorithm>
#include <memory>
#include <vector>

namespace pycroscope {
namespace python {

namespace detail {
inline void write_edges(sinks::JsonWriter& json, const model::Profile& profile,
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

inline void write_functions(sinks::JsonWriter& json, const sinks::JsonSummarySink& sink, LocationKind kind,
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
        json.begin_object()
            .field("name", stats.location->display_name())
            .field("file", stats.location->file)
            .field("line", stats.location->line)
            .field("calls", stats.count)
            .field("resumes", stats.resumes)
            .field("inclusive_ns", static_cast<std::uint64_t>(stats.inclusive_ns + 0.5))
            .field("self_ns", static_cast<std::uint64_t>(stats.self_ns + 0.5));
        const std::uint32_t f = profile != nullptr ? builder->function_index(stats.location) : model::no_index;
        if (f < callers.size()) {
            json.key("callers");
            write_edges(json, *profile, callers[f], true);
            json.key("callees");
            write_edges(json, *profile, callees[f], false);
        }
        json.end_object();
    }
    json.end_array();
}
} // namespace detail

// Registers the sections on sink; tracer (and builder, a processor of the
// same session, when given) must outlive the session's stop().
inline void add_summary_sections(sinks::JsonSummarySink& sink, const PythonTracer& tracer,
                                 const model::ProfileBuilder* builder = nullptr) {
    const sinks::JsonSummarySink* source = &sink;
    const PythonTracer* collector = &tracer;
    sink.add_section("python", [collector](sinks::JsonWriter& json, const SessionSummary&) {
        json.begin_object()
            .field("version", PY_VERSION)
            .field("backend", to_string(collector->backend()))
            .field("c_calls", collector->options.c_calls)
            .field("lines", collector->options.lines)
            .field("exceptions", collector->options.exceptions);
        json.key("conflicts").begin_array();
        for (const auto& conflict : collector->conflicts()) {
            json.value(conflict);
        }
        json.end_array();
        // The program's own sys.setprofile/settrace (and C tools like cProfile): what they cost the profile.
        const ProgramHookReport& hooks = collector->program_hooks();
        json.key("program_hooks")
            .begin_object()
            .field("policy", to_string(collector->options.on_conflict))
            .field("chained_threads", hooks.chained_threads)
            .field("stepped_aside_threads", hooks.stepped_aside)
            .field("untraced_ns", hooks.untraced_ns)
            .field("ignored_calls", hooks.ignored_calls)
            .field("refused_calls", hooks.refused_calls)
            .end_object();
        json.end_object();
    });
    sink.add_section("functions", [source, builder](sinks::JsonWriter& json, const SessionSummary&) {
        detail::write_functions(json, *source, LocationKind::python_function, builder);
    });
    sink.add_section("c_functions", [source, builder](sinks::JsonWriter& json, const SessionSummary&) {
        detail::write_functions(json, *source, LocationKind::c_function, builder);
    });
}

} // namespace python
} // namespace pycroscope
