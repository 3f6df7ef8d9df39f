#pragma once
// The Python sections of session.json: "python" (version, backend,
// conflicts, program_hooks) and "functions" (one entry per Python function with calls,
// resumes, inclusive and self time), plus "c_functions" for builtins.

#include "pycroscope/python/runtime/cpython.hpp"
#include "pycroscope/python/tracer/tracer.hpp"
#include "pycroscope/sinks/json_summary_sink.hpp"

#include <memory>

namespace pycroscope {
namespace python {

namespace detail {
inline void write_functions(sinks::JsonWriter& json, const sinks::JsonSummarySink& sink, LocationKind kind) {
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
            .field("self_ns", static_cast<std::uint64_t>(stats.self_ns + 0.5))
            .end_object();
    }
    json.end_array();
}
} // namespace detail

// Registers the sections on sink; tracer must outlive the session's stop().
inline void add_summary_sections(sinks::JsonSummarySink& sink, const PythonTracer& tracer) {
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
    sink.add_section("functions", [source](sinks::JsonWriter& json, const SessionSummary&) {
        detail::write_functions(json, *source, LocationKind::python_function);
    });
    sink.add_section("c_functions", [source](sinks::JsonWriter& json, const SessionSummary&) {
        detail::write_functions(json, *source, LocationKind::c_function);
    });
}

} // namespace python
} // namespace pycroscope
