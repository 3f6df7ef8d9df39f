#pragma once
// The Python sections of session.json: "python" (version, backend,
// conflicts, program_hooks) and "functions" (one entry per Python function with calls,
// resumes, inclusive and self time), plus "c_functions" for builtins.
// Given the session's ProfileBuilder, every entry also lists its callers
// and callees (name, file, line, calls, time_ns, self_ns) from the call graph.

#include "pycroscope/model/profile_builder.hpp"
#include "pycroscope/python/runtime/cpython.hpp"
#include "pycroscope/python/tracer/tracer.hpp"
#include "pycroscope/sinks/function_entries.hpp"
#include "pycroscope/sinks/json_summary_sink.hpp"

#include <algorithm>
#include <memory>
#include <vector>

namespace pycroscope {
namespace python {


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
        sinks::write_function_entries(json, *source, LocationKind::python_function, builder);
    });
    sink.add_section("c_functions", [source, builder](sinks::JsonWriter& json, const SessionSummary&) {
        sinks::write_function_entries(json, *source, LocationKind::c_function, builder);
    });
}

} // namespace python
} // namespace pycroscope
