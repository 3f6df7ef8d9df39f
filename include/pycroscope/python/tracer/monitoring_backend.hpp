#pragma once
// The sys.monitoring backend of PythonTracer (PEP 669, CPython 3.12+).
//
// One tool id (4, or 3 when 4 is taken: ids no convention claims) with C
// callbacks (METH_FASTCALL). Per interpreter: every thread, including threads
// started after start(), with no per-thread install and no profile or trace
// function, so the program's own sys.setprofile / sys.settrace / cProfile
// (tool 2) run beside it untouched.
//
// It records exactly what the profile backend records (CPython's legacy
// profile function is itself built on these events):
//  - PY_START: py_call; PY_RESUME: py_resume; PY_THROW: either, as the profile
//    function would tell them apart (a throw into a running generator is a resume);
//  - PY_RETURN, PY_YIELD: py_return; PY_UNWIND: py_return flagged exception;
//  - CALL of a PyCFunction, of a method descriptor with a self argument, or
//    of a bound method wrapping a PyCFunction: c_call; its C_RETURN / C_RAISE
//    (same test on the same callable): c_return (flagged exception on C_RAISE);
//  - LINE: py_line (TracerOptions::lines);
//  - RAISE (in every frame an exception reaches): py_exception, then
//    exception_info while the ExceptionCollector runs; EXCEPTION_HANDLED:
//    py_exception flagged handled (TracerOptions::exceptions).
// A thread's first event in a session opens synthetic spans for the frames
// already running (sync_thread), as the profile backend does.
//
// Only JUMP (with lines) returns sys.monitoring.DISABLE, at jumps that never
// make a line event: a disabled place stays so until the tool's events are
// turned off or sys.monitoring.restart_events(), which the tracer never
// calls (it would re-enable what every other tool, coverage, disabled too).
//
// Included at the end of tracer.hpp.

#include "pycroscope/python/tracer/tracer.hpp"

#if PYCROSCOPE_HAS_SYS_MONITORING

#include <string>

namespace pycroscope {
namespace python {
namespace detail {

// sys.monitoring.MISSING (a CALL with no argument), read at start.
inline PyObject* monitoring_missing = nullptr;

// The thread's first event in this session: spans for the frames already
// running. starting: the event starts the current frame (PY_START, PY_RESUME,
// PY_THROW), whose own span the caller opens.
PYCROSCOPE_NOINLINE inline void monitoring_sync(std::uint64_t epoch, bool starting) {
    PyFrameObject* frame = PyEval_GetFrame(); // borrowed
    if (starting) {
        sync_thread(epoch, frame != nullptr ? PyFrame_GetBack(frame) : nullptr, false, frame);
    } else {
        Py_XINCREF(frame);
        sync_thread(epoch, frame);
    }
}

// The epoch when this thread records, synced; 0 otherwise.
PYCROSCOPE_FORCE_INLINE std::uint64_t monitoring_epoch(bool starting) {
    const std::uint64_t epoch = python_epoch.load(std::memory_order_relaxed);
    if (PYCROSCOPE_UNLIKELY(epoch != 0 && tls_trace.epoch != epoch)) {
        monitoring_sync(epoch, starting);
    }
    return epoch;
}

inline PyCodeObject* event_code(PyObject* const* args, Py_ssize_t nargs) noexcept {
    return nargs >= 1 && PyCode_Check(args[0]) ? reinterpret_cast<PyCodeObject*>(args[0]) : nullptr;
}

inline PyObject* monitoring_py_start(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    PyCodeObject* code = event_code(args, nargs);
    const std::uint64_t epoch = code != nullptr ? monitoring_epoch(true) : 0;
    if (epoch != 0) {
        record_py_call(epoch, tls_trace, code, false, nullptr);
    }
    Py_RETURN_NONE;
}

inline PyObject* monitoring_py_resume(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    PyCodeObject* code = event_code(args, nargs);
    const std::uint64_t epoch = code != nullptr ? monitoring_epoch(true) : 0;
    if (epoch != 0) {
        record_py_call(epoch, tls_trace, code, true, nullptr);
    }
    Py_RETURN_NONE;
}

// A throw into a generator or coroutine (gen.throw(), gen.close()): a
// resume when it had yielded, which the profile function reads from the frame.
inline PyObject* monitoring_py_throw(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    PyCodeObject* code = event_code(args, nargs);
    const std::uint64_t epoch = code != nullptr ? monitoring_epoch(true) : 0;
    if (epoch != 0) {
        PendingExceptionGuard pending; // the thrown exception is set
        PyFrameObject* frame = PyEval_GetFrame();
        const bool resume = frame != nullptr && compat::profile_call_is_resume(frame, code);
        record_py_call(epoch, tls_trace, code, resume, frame);
    }
    Py_RETURN_NONE;
}

PYCROSCOPE_FORCE_INLINE void monitoring_return(PyObject* const* args, Py_ssize_t nargs, bool exception) {
    PyCodeObject* code = event_code(args, nargs);
    const std::uint64_t epoch = code != nullptr ? monitoring_epoch(false) : 0;
    if (epoch != 0) {
        emit(epoch, EventKind::py_return, code_location(code), 0, exception ? event_flags::exception : 0);
        tls_trace.pop();
    }
}

inline PyObject* monitoring_py_return(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    monitoring_return(args, nargs, false);
    Py_RETURN_NONE;
}

inline PyObject* monitoring_py_unwind(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    PendingExceptionGuard pending; // interning a new code object must not see it
    monitoring_return(args, nargs, true);
    Py_RETURN_NONE;
}

// The C function a CALL (code, offset, callable, arg0) reaches, as the legacy
// profile function names it; null when it is not a C call. Without
// allocating after the first call of a method on a type.
inline const SourceLocation* c_call_location(PyObject* callable, PyObject* self_arg) {
    if (PyCFunction_Check(callable)) {
        return callable_location(callable);
    }
    if (Py_IS_TYPE(callable, &PyMethodDescr_Type)) {
        if (self_arg == nullptr || self_arg == monitoring_missing) {
            return nullptr;
        }
        // The bound method the profile function would get: m_ml of the
        // descriptor, m_self the argument (callable_location's cache key).
        const void* method = reinterpret_cast<PyMethodDescrObject*>(callable)->d_method;
        const void* owner =
            PyModule_Check(self_arg) ? static_cast<const void*>(self_arg) : static_cast<const void*>(Py_TYPE(self_arg));
        RecentCallable& recent = recent_callable(method, owner);
        if (recent.method == method && recent.owner == owner && recent.location != nullptr) {
            return recent.location;
        }
        auto found = callable_cache().find(CallableKey{method, owner});
        if (found != callable_cache().end()) {
            return found->second;
        }
        PendingExceptionGuard pending;
        PyObject* bound =
            Py_TYPE(callable)->tp_descr_get(callable, self_arg, reinterpret_cast<PyObject*>(Py_TYPE(self_arg)));
        const SourceLocation* location =
            bound != nullptr && PyCFunction_Check(bound) ? callable_location(bound) : nullptr;
        Py_XDECREF(bound);
        PyErr_Clear();
        return location;
    }
    if (PyMethod_Check(callable) && PyCFunction_Check(PyMethod_GET_FUNCTION(callable))) {
        return callable_location(PyMethod_GET_FUNCTION(callable));
    }
    return nullptr;
}

// The PyCFunction the call reaches (a new reference), for I/O byte counts.
inline PyObject* c_call_function(PyObject* callable, PyObject* self_arg) {
    if (PyCFunction_Check(callable)) {
        Py_INCREF(callable);
        return callable;
    }
    if (PyMethod_Check(callable)) {
        PyObject* function = PyMethod_GET_FUNCTION(callable);
        Py_INCREF(function);
        return function;
    }
    PendingExceptionGuard pending;
    PyObject* bound =
        Py_TYPE(callable)->tp_descr_get(callable, self_arg, reinterpret_cast<PyObject*>(Py_TYPE(self_arg)));
    PyErr_Clear();
    return bound;
}

// CALL and C_RETURN / C_RAISE: (code, offset, callable, arg0).
inline PyObject* monitoring_call(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs < 4 || python_epoch.load(std::memory_order_relaxed) == 0) {
        Py_RETURN_NONE;
    }
    const SourceLocation* location = c_call_location(args[2], args[3]);
    if (location == nullptr) {
        Py_RETURN_NONE;
    }
    const std::uint64_t epoch = monitoring_epoch(false);
    if (PYCROSCOPE_UNLIKELY(call_lines.active)) {
        PyObject* function = c_call_function(args[2], args[3]);
        record_c_call(epoch, location, PyEval_GetFrame(), function);
        Py_XDECREF(function);
    } else {
        record_c_call(epoch, location, nullptr, nullptr);
    }
    Py_RETURN_NONE;
}

PYCROSCOPE_FORCE_INLINE void monitoring_c_return(PyObject* const* args, Py_ssize_t nargs, bool raised) {
    if (nargs < 4 || python_epoch.load(std::memory_order_relaxed) == 0) {
        return;
    }
    const SourceLocation* location = c_call_location(args[2], args[3]);
    if (location == nullptr) {
        return;
    }
    const std::uint64_t epoch = monitoring_epoch(false);
    record_c_return(epoch, location, PYCROSCOPE_UNLIKELY(call_lines.active) ? PyEval_GetFrame() : nullptr, raised);
}

inline PyObject* monitoring_c_return_event(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    monitoring_c_return(args, nargs, false);
    Py_RETURN_NONE;
}

inline PyObject* monitoring_c_raise(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    PendingExceptionGuard pending;
    monitoring_c_return(args, nargs, true);
    Py_RETURN_NONE;
}

// LINE: (code, line_number).
inline PyObject* monitoring_line(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    PyCodeObject* code = event_code(args, nargs);
    const std::uint64_t epoch = code != nullptr && nargs >= 2 ? monitoring_epoch(false) : 0;
    if (epoch != 0) {
        const long line = PyLong_AsLong(args[1]);
        emit(epoch, EventKind::py_line, code_location(code), line > 0 ? static_cast<std::uint64_t>(line) : 0);
    }
    Py_RETURN_NONE;
}

// sys.monitoring.DISABLE, read at start.
inline PyObject* monitoring_disable = nullptr;

// JUMP: (code, from, to). A backward jump within one line is a new line
// event for a trace function (a loop on one line), not for LINE. Any other
// jump is never wanted again at that place: DISABLE (a local event).
inline PyObject* monitoring_jump(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    PyCodeObject* code = event_code(args, nargs);
    if (code == nullptr || nargs < 3) {
        Py_RETURN_NONE;
    }
    const long from = PyLong_AsLong(args[1]);
    const long to = PyLong_AsLong(args[2]);
    PyErr_Clear();
    const int line = to >= 0 && to <= from ? PyCode_Addr2Line(code, static_cast<int>(to)) : -1;
    if (line < 0 || line != PyCode_Addr2Line(code, static_cast<int>(from))) {
        if (monitoring_disable != nullptr) {
            Py_INCREF(monitoring_disable);
            return monitoring_disable;
        }
        Py_RETURN_NONE;
    }
    const std::uint64_t epoch = monitoring_epoch(false);
    if (epoch != 0) {
        emit(epoch, EventKind::py_line, code_location(code), static_cast<std::uint64_t>(line));
    }
    Py_RETURN_NONE;
}

// RAISE and EXCEPTION_HANDLED: (code, offset, exception).
inline void monitoring_exception(PyObject* const* args, Py_ssize_t nargs, bool handled) {
    PyCodeObject* code = event_code(args, nargs);
    const std::uint64_t epoch = code != nullptr && nargs >= 3 ? monitoring_epoch(false) : 0;
    if (epoch == 0) {
        return;
    }
    PendingExceptionGuard pending;
    const long offset = PyLong_AsLong(args[1]);
    PyErr_Clear();
    int line = offset >= 0 ? PyCode_Addr2Line(code, static_cast<int>(offset)) : -1;
    if (handled) {
        // The handler starts with PUSH_EXC_INFO, which has no line; the trace
        // function calls it handled at the handler's first line. Handlers the
        // compiler added (the generator's StopIteration guard, the cleanup
        // before a re-raise) have none: not handled here.
        const long end = static_cast<long>(Py_SIZE(code)) * 2;
        for (long at = offset + 2; line < 0 && at < end && at <= offset + 4; at += 2) {
            line = PyCode_Addr2Line(code, static_cast<int>(at));
        }
        if (line < 0) {
            return;
        }
    }
    const SourceLocation* location = code_location(code);
    const std::uint64_t payload = line > 0 ? static_cast<std::uint64_t>(line) : 0;
    if (handled) {
        emit(epoch, EventKind::py_exception, location, payload, event_flags::exception);
        return;
    }
    emit(epoch, EventKind::py_exception, location, payload);
    PyObject* exception = args[2];
    if (exception_details.load(std::memory_order_relaxed) && PyExceptionInstance_Check(exception)) {
        emit(epoch, EventKind::exception_info, exception_type_location(Py_TYPE(exception)),
             static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(exception)));
    }
}

inline PyObject* monitoring_raise(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    monitoring_exception(args, nargs, false);
    Py_RETURN_NONE;
}

inline PyObject* monitoring_exception_handled(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    monitoring_exception(args, nargs, true);
    Py_RETURN_NONE;
}

#define PYCROSCOPE_MONITORING_DEF(name, function, doc)                                                                 \
    PyMethodDef { name, reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&function)), METH_FASTCALL, doc }
inline PyMethodDef monitoring_defs[] = {
    PYCROSCOPE_MONITORING_DEF("pycroscope_py_start", monitoring_py_start, "Pycroscope: a Python frame starts"),
    PYCROSCOPE_MONITORING_DEF("pycroscope_py_resume", monitoring_py_resume, "Pycroscope: a frame resumes"),
    PYCROSCOPE_MONITORING_DEF("pycroscope_py_throw", monitoring_py_throw, "Pycroscope: a throw into a frame"),
    PYCROSCOPE_MONITORING_DEF("pycroscope_py_return", monitoring_py_return, "Pycroscope: a frame returns or yields"),
    PYCROSCOPE_MONITORING_DEF("pycroscope_py_unwind", monitoring_py_unwind, "Pycroscope: an exception leaves a frame"),
    PYCROSCOPE_MONITORING_DEF("pycroscope_call", monitoring_call, "Pycroscope: a call (C calls recorded)"),
    PYCROSCOPE_MONITORING_DEF("pycroscope_c_return", monitoring_c_return_event, "Pycroscope: a C call returns"),
    PYCROSCOPE_MONITORING_DEF("pycroscope_c_raise", monitoring_c_raise, "Pycroscope: a C call raises"),
    PYCROSCOPE_MONITORING_DEF("pycroscope_line", monitoring_line, "Pycroscope: a line runs"),
    PYCROSCOPE_MONITORING_DEF("pycroscope_jump", monitoring_jump, "Pycroscope: a jump (a loop on one line)"),
    PYCROSCOPE_MONITORING_DEF("pycroscope_raise", monitoring_raise, "Pycroscope: an exception is raised here"),
    PYCROSCOPE_MONITORING_DEF("pycroscope_handled", monitoring_exception_handled, "Pycroscope: a handler runs"),
};
#undef PYCROSCOPE_MONITORING_DEF

enum class MonitoringWant : std::uint8_t { always, c_calls, lines, exceptions };
struct MonitoringEvent {
    const char* event;
    PyMethodDef* function;
    MonitoringWant want;
};
inline const MonitoringEvent monitoring_events[] = {
    {"PY_START", &monitoring_defs[0], MonitoringWant::always},
    {"PY_RESUME", &monitoring_defs[1], MonitoringWant::always},
    {"PY_THROW", &monitoring_defs[2], MonitoringWant::always},
    {"PY_RETURN", &monitoring_defs[3], MonitoringWant::always},
    {"PY_YIELD", &monitoring_defs[3], MonitoringWant::always},
    {"PY_UNWIND", &monitoring_defs[4], MonitoringWant::always},
    {"CALL", &monitoring_defs[5], MonitoringWant::c_calls},
    {"C_RETURN", &monitoring_defs[6], MonitoringWant::c_calls},
    {"C_RAISE", &monitoring_defs[7], MonitoringWant::c_calls},
    {"LINE", &monitoring_defs[8], MonitoringWant::lines},
    {"JUMP", &monitoring_defs[9], MonitoringWant::lines},
    {"RAISE", &monitoring_defs[10], MonitoringWant::exceptions},
    {"EXCEPTION_HANDLED", &monitoring_defs[11], MonitoringWant::exceptions},
};

inline bool monitoring_wanted(MonitoringWant want, const TracerOptions& options) noexcept {
    switch (want) {
    case MonitoringWant::always: return true;
    case MonitoringWant::c_calls: return options.c_calls;
    case MonitoringWant::lines: return options.lines;
    case MonitoringWant::exceptions: return options.exceptions;
    }
    return false;
}

// "4 (coverage), 3 (debugger)": who holds the tool ids the backend may use.
inline std::string monitoring_tool_owners(PyObject* monitoring) {
    std::string out;
    for (int tool : discovery_tool_ids) {
        PyObject* owner = monitoring != nullptr ? PyObject_CallMethod(monitoring, "get_tool", "i", tool) : nullptr;
        const char* name = owner != nullptr && PyUnicode_Check(owner) ? PyUnicode_AsUTF8(owner) : nullptr;
        out += (out.empty() ? "" : ", ") + std::to_string(tool) + " (" + (name != nullptr ? name : "?") + ")";
        Py_XDECREF(owner);
        PyErr_Clear();
    }
    return out;
}

inline void stop_monitoring_backend(int tool) { release_monitoring_tool(tool, monitoring_events); }

inline int start_monitoring_backend(const TracerOptions& options, std::string& why) {
    PendingExceptionGuard keep;                           // an exception the caller has set survives
    PyObject* monitoring = PySys_GetObject("monitoring"); // borrowed
    const int tool = free_discovery_tool();
    if (monitoring == nullptr || tool < 0) {
        why = "sys.monitoring tool ids 4 and 3 are both in use: " + monitoring_tool_owners(monitoring);
        return -1;
    }
    if (!call_monitoring(monitoring, "use_tool_id", "is", tool, "pycroscope")) {
        why =
            "sys.monitoring refused tool id " + std::to_string(tool) + " (" + monitoring_tool_owners(monitoring) + ")";
        return -1;
    }
    if (monitoring_missing == nullptr) {
        monitoring_missing = PyObject_GetAttrString(monitoring, "MISSING"); // kept for the process
        PyErr_Clear();
    }
    if (monitoring_disable == nullptr) {
        monitoring_disable = PyObject_GetAttrString(monitoring, "DISABLE"); // kept for the process
        PyErr_Clear();
    }
    const bool ok = enable_monitoring_events(monitoring, tool, monitoring_events, [&](const MonitoringEvent& entry) {
        return monitoring_wanted(entry.want, options);
    });
    if (!ok) {
        stop_monitoring_backend(tool);
        why = "sys.monitoring refused the events of tool id " + std::to_string(tool);
        return -1;
    }
    return tool;
}

} // namespace detail
} // namespace python
} // namespace pycroscope

#endif
