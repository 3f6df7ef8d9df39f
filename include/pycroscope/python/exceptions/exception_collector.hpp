#pragma once
// ExceptionCollector: raised and caught exceptions per site, and the time
// from the raise to the handler.
//
// The events come from the PythonTracer with TracerOptions::exceptions on
// (its trace function): py_exception when an exception is raised in a frame
// or reaches it from a callee, py_exception flagged handled when a line runs
// in the frame it reached, py_return flagged exception when a frame exits
// by one. While this collector runs, the tracer follows every unhandled
// py_exception with an exception_info event (the type's location and the
// exception object's identity), which tells a raise from a propagation.
// List the PythonTracer before this collector in the Session.
//
// ExceptionModel (a sink) follows each thread's current exception:
//  - a py_exception for the same object in the frame that an exception has
//    just propagated into continues it; any other is a raise at that site;
//  - a handled py_exception counts a catch with its raise-to-handler time;
//    when the same exception later leaves that frame anyway (finally, a
//    non-suppressing with, a bare `raise`), the catch is taken back;
//  - an exception swallowed by C code (hasattr, getattr with a default, a
//    C iterator ending on StopIteration) is neither caught nor propagated:
//    it counts as uncaught, like one that leaves the outermost frame.
// add_exceptions_section() writes the "exceptions" section.

#include "pycroscope/model/exception_model.hpp"
#include "pycroscope/core/error.hpp"
#include "pycroscope/core/session_core.hpp"
#include "pycroscope/python/tracer/tracer.hpp"
#include "pycroscope/sinks/base_sink.hpp"
#include "pycroscope/sinks/json_summary_sink.hpp"
#include "pycroscope/sinks/per_thread_state.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace pycroscope {
namespace python {

class ExceptionCollector {
public:
    static constexpr const char* name = "exceptions";

    bool enabled = true; // false: start() does nothing (one Session type for every flag set)

    void start(SessionCore&) {
        if (!enabled) {
            return;
        }
        const detail::TracerState& tracer = detail::tracer_state();
        if (!tracer.active || !tracer.options.exceptions) {
            throw ConfigError("ExceptionCollector needs the PythonTracer with TracerOptions::exceptions = true, "
                              "listed before it in the Session");
        }
        detail::exception_details.store(true, std::memory_order_relaxed);
    }

    void stop(SessionCore&) noexcept { detail::exception_details.store(false, std::memory_order_relaxed); }
};

} // namespace python
} // namespace pycroscope
