#pragma once
// PythonTracer: the collector that puts Python calls into the session's
// per-thread buffers, in the same timeline as native zones.
//
// Three backends behind one seam:
//  - eval_frame: a PEP 523 frame-evaluation hook, Python functions only.
//    The cheaper one: opcodes stay on their fast path, which any profile
//    function takes them off. Per interpreter, so it covers every thread. It never
//    sees frames that were running at start return: their synthetic spans
//    are closed by a py_return flagged synthetic at the thread's next call
//    made outside them (or at session stop).
//  - profile: PyEval_SetProfile (calls, C calls) plus PyEval_SetTrace when
//    lines or exceptions are wanted. Per thread: installed on every thread
//    at start, and on threads that appear later (threading, _thread,
//    PyGILState_Ensure) by a hook that only looks for threads without it:
//    the PEP 523 one on 3.9-3.11, a sys.monitoring callback on frame starts
//    on 3.12+ (see cpython.hpp for why not PEP 523 there).
//  - monitoring (3.12+): sys.monitoring callbacks, per interpreter, every
//    thread; calls, C calls, lines, exceptions (monitoring_backend.hpp).
// Backend::automatic picks eval_frame when only Python calls are wanted
// (3.9-3.11), else profile; monitoring on 3.12+.
//
// start() and stop() need the GIL (stop() takes it when it can). The host
// stops the session before Py_FinalizeEx: see stop_session_at_exit().

#include "pycroscope/core/fork_child.hpp"
#include "pycroscope/core/error.hpp"
#include "pycroscope/core/recorder.hpp"
#include "pycroscope/core/session_core.hpp"
#include "pycroscope/python/runtime/code_registry.hpp"
#include "pycroscope/python/runtime/cpython.hpp"
#include "pycroscope/python/exceptions/exception_types.hpp"
#include "pycroscope/python/io/io_bytes.hpp"
#include "pycroscope/python/tracer/hook_slots.hpp"
#include "pycroscope/python/tracer/program_hooks.hpp"
#include "pycroscope/python/tracer/python_thread_name.hpp"
#include "pycroscope/python/tracer/subscript_sites.hpp"
#include "pycroscope/python/tracer/thread_trace_state.hpp"

#include <atomic>
#include <pthread.h>
#if defined(__linux__)
#include <fcntl.h>
#include <unistd.h>
#endif
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace pycroscope {
namespace python {

enum class Backend : std::uint8_t { automatic, eval_frame, profile, monitoring };

inline const char* to_string(Backend backend) noexcept {
    switch (backend) {
    case Backend::automatic: return "automatic";
    case Backend::eval_frame: return "eval_frame";
    case Backend::profile: return "profile";
    case Backend::monitoring: return "monitoring";
    }
    return "unknown";
}

// What to do when the program (or another tool: cProfile, a debugger,
// coverage) sets a profile or trace function on a thread the tracer records.
enum class ConflictPolicy : std::uint8_t {
    chain,      // both run: the program's function is called after the tracer's, with
                // sys.getprofile()/sys.gettrace() and frame.f_trace as without the tracer
    step_aside, // the program's function takes the thread, which goes untraced (reported)
    take_over,  // the tracer keeps the thread; the program's sys.setprofile/settrace does nothing
    fail,       // start() throws over an existing hook; sys.setprofile/settrace(func) raises RuntimeError
};

inline const char* to_string(ConflictPolicy policy) noexcept {
    switch (policy) {
    case ConflictPolicy::chain: return "chain";
    case ConflictPolicy::step_aside: return "step_aside";
    case ConflictPolicy::take_over: return "take_over";
    case ConflictPolicy::fail: return "fail";
    }
    return "unknown";
}

// "chain", "step_aside", "take_over" or "fail"; false for anything else.
inline bool parse_conflict_policy(std::string_view text, ConflictPolicy& policy) noexcept {
    for (ConflictPolicy p : {ConflictPolicy::chain, ConflictPolicy::step_aside, ConflictPolicy::take_over,
                             ConflictPolicy::fail}) {
        if (text == to_string(p)) {
            policy = p;
            return true;
        }
    }
    return false;
}

struct TracerOptions {
    Backend backend = Backend::automatic;
    bool c_calls = true;     // builtins and methods (profile and monitoring backends)
    bool lines = false;      // py_line events (trace function, or sys.monitoring)
    bool exceptions = false; // raised and handled exceptions (trace function, or sys.monitoring)
    ConflictPolicy on_conflict = ConflictPolicy::chain; // the program behaves as without the tracer
    // start() before Py_Initialize only marks the tracer pending (instead of
    // throwing); the host calls PythonTracer::attach() once the interpreter
    // runs, with the GIL held. Lets a session (and the memory peak) begin
    // before the interpreter does.
    bool deferred = false;
    // false: start() installs nothing (StandardProfile's sampling mode keeps
    // one session type for both modes).
    bool enabled = true;
};

namespace detail {

// Equal to the session epoch while the tracer records, else zero.
inline std::atomic<std::uint64_t> python_epoch{0};

struct TracerState {
    bool active = false;
    TracerOptions options;
    Backend backend = Backend::profile;
    bool eval_hook_installed = false;
    ThreadSet stepped_aside;
    ThreadSet trace_refused; // threads whose trace slot could not be set
    std::vector<std::string> conflicts;
    bool audit_hook_added = false;
    // sys.setprofile/settrace (and their all-threads forms, 3.12+) while the
    // profile backend runs: the originals, and whether sys holds ours.
    PyObject* original_setprofile = nullptr;
    PyObject* original_settrace = nullptr;
    PyObject* original_setprofile_all = nullptr;
    PyObject* original_settrace_all = nullptr;
    bool sys_functions_replaced = false;
    int monitoring_tool = -1; // 3.12+: the sys.monitoring tool id thread discovery holds
};

// What the hooks read on every event: constant-initialised, so no guard and
// no indirection on the hot path. Written by start() with the GIL held.
struct HotState {
#if PYCROSCOPE_HAS_EVAL_FRAME_BACKEND
    compat::EvalFrameFunction next_eval;
#endif
    bool discovery_only; // profile backend: the eval hook only finds new threads
    bool c_calls;
    bool trace;          // profile backend: the trace function is installed too
    bool monitoring;     // the sys.monitoring backend records (monitoring_backend.hpp)
};
inline HotState hot{};

// Set by the ExceptionCollector: each raise or propagation (py_exception
// without the handled flag) is followed by an exception_info event.
inline std::atomic<bool> exception_details{false};

inline TracerState& tracer_state() {
    static TracerState* state = new TracerState(); // outlives atexit handlers
    return *state;
}

PYCROSCOPE_FORCE_INLINE void emit(std::uint64_t epoch, EventKind kind, const SourceLocation* location,
                                  std::uint64_t payload = 0, std::uint8_t flags = 0) noexcept {
    pycroscope::detail::push_event(epoch, Event{clock::now(), location_id(location), payload, 0, kind, flags, 0});
}

// arg of a PyTrace_EXCEPTION event: (type, value, traceback), normalized.
inline void emit_exception_info(std::uint64_t epoch, PyObject* arg) {
    if (arg == nullptr || !PyTuple_Check(arg) || PyTuple_GET_SIZE(arg) < 2 || !PyType_Check(PyTuple_GET_ITEM(arg, 0))) {
        return;
    }
    PyObject* value = PyTuple_GET_ITEM(arg, 1);
    emit(epoch, EventKind::exception_info,
         exception_type_location(reinterpret_cast<PyTypeObject*>(PyTuple_GET_ITEM(arg, 0))),
         static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(value)));
}

// First event of this thread in this session: open synthetic spans for the
// frames already running (outermost first), so their returns are balanced.
// Takes ownership of the reference to innermost. track_frames (eval_frame
// backend) remembers which frames those are: that hook never sees them return.
// starting: the frame being entered, outermost when innermost is null.
inline void sync_thread(std::uint64_t epoch, PyFrameObject* innermost, bool track_frames = false,
                        PyFrameObject* starting = nullptr) {
    ThreadTraceState& state = tls_trace;
    state.epoch = epoch;
    state.depth = 0;
    state.synthetic = 0;
    state.exception_frame = nullptr;
    state.raising_frame = nullptr;
    std::vector<PyFrameObject*> frames;
    for (PyFrameObject* frame = innermost; frame != nullptr; frame = PyFrame_GetBack(frame)) {
        frames.push_back(frame);
    }
    name_thread_from_outermost(frames.empty() ? starting : frames.back());
    for (auto it = frames.rbegin(); it != frames.rend(); ++it) {
        const SourceLocation* location = code_location(compat::frame_code(*it));
        emit(epoch, EventKind::py_call, location, 0, event_flags::synthetic);
        state.push(location);
#if PYCROSCOPE_HAS_EVAL_FRAME_BACKEND
        if (track_frames && state.depth <= ThreadTraceState::max_depth) {
            state.synthetic_frames[state.depth - 1] = compat::frame_id(*it);
            state.synthetic = state.depth;
        }
#else
        (void)track_frames;
#endif
    }
    for (PyFrameObject* frame : frames) {
        Py_DECREF(frame);
    }
}

// What both call-recording backends (profile, monitoring) record for a
// Python frame that starts (resume false) or re-enters. frame: the frame, or
// null to look it up (needed only for a watched function's argument size).
PYCROSCOPE_FORCE_INLINE void record_py_call(std::uint64_t epoch, ThreadTraceState& state, PyCodeObject* code,
                                            bool resume, PyFrameObject* frame) {
    const SourceLocation* location = code_location(code);
    if (PYCROSCOPE_UNLIKELY(is_watched(location)) && !resume) {
        if (frame == nullptr) {
            frame = PyEval_GetFrame(); // borrowed
        }
        // The size is read before the call's timestamp: not in its time.
        emit(epoch, EventKind::py_call, location, frame != nullptr ? frame_argument_size(frame, code) : 0,
             event_flags::watched);
    } else {
        emit(epoch, resume ? EventKind::py_resume : EventKind::py_call, location);
    }
    state.push(location);
}

// A C call made by frame. function: the PyCFunction called (read only for
// I/O byte counts, when call_lines is active; frame too).
PYCROSCOPE_FORCE_INLINE void record_c_call(std::uint64_t epoch, const SourceLocation* location, PyFrameObject* frame,
                                           PyObject* function) {
    std::uint64_t line = 0;
    if (PYCROSCOPE_UNLIKELY(call_lines.active)) {
        if (const CallLineTable::Slot* slot = find_call_line(location)) {
            line = static_cast<std::uint64_t>(compat::frame_line(frame));
            // The counters are read before the c_call event, so the read is not in the span.
            if (slot->bytes == IoBytesMode::direct ||
                (slot->bytes == IoBytesMode::buffered && function != nullptr && io_object_on_file(function))) {
                begin_io_bytes(epoch, frame, location);
            } else if (tls_io_bytes.depth != 0) {
                drop_io_bytes_of(tls_io_bytes, frame); // so its return takes no stale bytes
            }
        }
    }
    emit(epoch, EventKind::c_call, location, line);
}

PYCROSCOPE_FORCE_INLINE void record_c_return(std::uint64_t epoch, const SourceLocation* location, PyFrameObject* frame,
                                             bool raised) {
    const std::uint8_t flags = raised ? event_flags::exception : 0;
    if (PYCROSCOPE_UNLIKELY(call_lines.active) && tls_io_bytes.depth != 0) {
        // Timestamp first: the counter read is not in the span. payload: bytes + 1, or 0.
        const std::uint64_t now = clock::now();
        const std::uint64_t bytes = end_io_bytes(epoch, frame, location);
        pycroscope::detail::push_event(epoch,
                                       Event{now, location_id(location), bytes, 0, EventKind::c_return, flags, 0});
    } else {
        emit(epoch, EventKind::c_return, location, 0, flags);
    }
}

// The tail of both callbacks: the program's own function, when the slot
// holds one (ConflictPolicy::chain), sees the event as it would alone.
PYCROSCOPE_FORCE_INLINE int then_program(HookSlot slot, Py_tracefunc ours, PyObject* program, PyFrameObject* frame,
                                         int what, PyObject* arg) {
    if (PYCROSCOPE_LIKELY(program == nullptr)) {
        return 0;
    }
    return forward_to_program(slot, ours, program, frame, what, arg);
}

// program: the slot's object, the program's own profile function or null.
inline int profile_callback(PyObject* program, PyFrameObject* frame, int what, PyObject* arg) {
    const std::uint64_t epoch = python_epoch.load(std::memory_order_relaxed);
    if (epoch == 0) {
        return then_program(HookSlot::profile, &profile_callback, program, frame, what, arg);
    }
    ThreadTraceState& state = tls_trace;
    if (PYCROSCOPE_UNLIKELY(state.epoch != epoch)) {
        if (what == PyTrace_CALL) {
            sync_thread(epoch, PyFrame_GetBack(frame), false, frame);
        } else {
            Py_INCREF(frame);
            sync_thread(epoch, frame);
        }
    }
    switch (what) {
    case PyTrace_CALL: {
        PyCodeObject* code = compat::frame_code(frame);
        record_py_call(epoch, state, code, compat::profile_call_is_resume(frame, code), frame);
        break;
    }
    case PyTrace_RETURN: {
        const SourceLocation* location = code_location(compat::frame_code(frame));
        bool exception_exit = arg == nullptr;
#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030D0000
        // 3.12 passes None for a frame left by an exception (3.13 NULL again).
        if (state.raising_frame == frame) {
            state.raising_frame = nullptr;
            exception_exit = exception_exit || arg == Py_None;
        }
#endif
        emit(epoch, EventKind::py_return, location, 0, exception_exit ? event_flags::exception : 0);
        state.pop();
        if (state.exception_frame == frame) {
            state.exception_frame = nullptr;
        }
        break;
    }
    case PyTrace_C_CALL:
        if (hot.c_calls) {
            record_c_call(epoch, callable_location(arg), frame, arg);
        }
        break;
    case PyTrace_C_RETURN:
    case PyTrace_C_EXCEPTION:
        if (hot.c_calls) {
            record_c_return(epoch, callable_location(arg), frame, what == PyTrace_C_EXCEPTION);
        }
        break;
    default: break;
    }
    return then_program(HookSlot::profile, &profile_callback, program, frame, what, arg);
}

// From the IoCollector's audit hook: the C call running in frame raised an
// I/O audit event. Measured when the tracer reports this thread's C calls,
// unless that call is a measured blocking call (its own entry covers it).
inline void begin_audited_io_bytes(PyFrameObject* frame) noexcept {
    const std::uint64_t epoch = python_epoch.load(std::memory_order_relaxed);
    if (epoch == 0 || !hot.c_calls || frame == nullptr ||
        (!hot.monitoring && compat::profile_function(PyThreadState_Get()) != &profile_callback)) {
        return;
    }
    const IoBytesThread& t = tls_io_bytes;
    if (t.epoch == epoch && t.depth > 0 && t.entries[t.depth - 1].frame == frame &&
        t.entries[t.depth - 1].location != nullptr) {
        return;
    }
    begin_io_bytes(epoch, frame, nullptr);
}

// Lines and exceptions. Calls and returns come from the profile function.
// program: the slot's object, the program's own trace function or null.
inline int trace_callback(PyObject* program, PyFrameObject* frame, int what, PyObject* arg) {
    const std::uint64_t epoch = python_epoch.load(std::memory_order_relaxed);
    if ((what != PyTrace_LINE && what != PyTrace_EXCEPTION) || epoch == 0 || !hot.trace) {
        const int result = then_program(HookSlot::trace, &trace_callback, program, frame, what, arg);
#if PY_VERSION_HEX >= 0x030B0000
        // The program's tracer raised on a call: CPython skips the profile
        // function's call event but still reports the frame's return.
        if (PYCROSCOPE_UNLIKELY(result != 0) && what == PyTrace_CALL && epoch != 0 &&
            compat::profile_function(PyThreadState_Get()) == &profile_callback) {
            profile_callback(nullptr, frame, PyTrace_CALL, Py_None);
        }
#endif
        return result;
    }
    ThreadTraceState& state = tls_trace;
    if (PYCROSCOPE_UNLIKELY(state.epoch != epoch)) {
        Py_INCREF(frame);
        sync_thread(epoch, frame);
    }
    const TracerOptions& options = tracer_state().options;
    const SourceLocation* location = code_location(compat::frame_code(frame));
    const auto line = static_cast<std::uint64_t>(compat::frame_line(frame));
    if (what == PyTrace_LINE) {
        if (state.exception_frame == frame) {
            // A line runs in the frame the exception reached: it was handled here.
            state.exception_frame = nullptr;
            if (options.exceptions) {
                emit(epoch, EventKind::py_exception, location, line, event_flags::exception);
            }
        }
        if (options.lines) {
            emit(epoch, EventKind::py_line, location, line);
        }
    } else {
        state.exception_frame = frame;
        if (options.exceptions) {
            emit(epoch, EventKind::py_exception, location, line);
            if (exception_details.load(std::memory_order_relaxed)) {
                emit_exception_info(epoch, arg);
            }
        }
    }
    return then_program(HookSlot::trace, &trace_callback, program, frame, what, arg);
}

inline bool wants_trace_function(const TracerOptions& options) noexcept { return options.lines || options.exceptions; }

inline std::string thread_label(PyThreadState* tstate) {
    return "thread " + std::to_string(static_cast<unsigned long long>(PyThreadState_GetID(tstate)));
}

// The program's function is already in the slot (set before start(), or
// since by C code such as cProfile.enable() on 3.9-3.11, which bypasses
// sys.setprofile): what the policy makes of it. False: the thread is left to it.
inline bool take_slot(PyThreadState* tstate, HookSlot slot, Py_tracefunc ours) {
    const Py_tracefunc current = slot_function(tstate, slot);
    if (current == ours) {
        return true;
    }
    TracerState& tracer = tracer_state();
    PyObject* keep = nullptr;
    if (current != nullptr) {
        switch (tracer.options.on_conflict) {
        case ConflictPolicy::chain:
            keep = slot_object(tstate, slot);
            remember_program_function(tstate, slot, current, keep);
            break;
        case ConflictPolicy::take_over:
            tracer.conflicts.push_back(thread_label(tstate) + ": another " +
                                       (slot == HookSlot::profile ? "profile" : "trace") +
                                       " function was replaced (take_over); it no longer runs");
            break;
        case ConflictPolicy::step_aside:
        case ConflictPolicy::fail: return false;
        }
    }
    OwnSlotChange own;
    if (set_quietly(tstate, slot, ours, keep) != 0) {
        PyErr_Clear();
        return false;
    }
    return true;
}

// Installs the profile (and trace) function on one thread; false when the
// thread is left untraced. An exception pending in the program survives.
inline bool install_on(PyThreadState* tstate) {
    PendingExceptionGuard pending;
    TracerState& tracer = tracer_state();
    if (!take_slot(tstate, HookSlot::profile, &profile_callback)) {
        tracer.stepped_aside.insert(tstate);
        step_aside_from(tstate);
        tracer.conflicts.push_back(thread_label(tstate) +
                                   ": its profile function belongs to another tool or was refused by an audit "
                                   "hook; stepped aside, the thread is not traced");
        return false;
    }
    if (wants_trace_function(tracer.options) && tracer.trace_refused.count(tstate) == 0 &&
        !take_slot(tstate, HookSlot::trace, &trace_callback)) {
        tracer.trace_refused.insert(tstate);
        tracer.conflicts.push_back(thread_label(tstate) +
                                   ": its trace function belongs to another tool or cannot be set; lines and "
                                   "exceptions of this thread are not recorded");
    }
    return true;
}

// Removes the tracer from one thread; a program function it chained goes
// back into the slot, as if the tracer had never been there.
inline void uninstall_from(PyThreadState* tstate) {
    PendingExceptionGuard pending;
    OwnSlotChange own;
    const std::pair<HookSlot, Py_tracefunc> slots[] = {{HookSlot::profile, &profile_callback},
                                                       {HookSlot::trace, &trace_callback}};
    for (const auto& entry : slots) {
        if (slot_function(tstate, entry.first) != entry.second) {
            continue;
        }
        PyObject* program = slot_object(tstate, entry.first);
        const Py_tracefunc function = program != nullptr ? program_function(tstate, entry.first) : nullptr;
        if (set_quietly(tstate, entry.first, function, function != nullptr ? program : nullptr) != 0) {
            PyErr_Clear();
        }
        program_hooks().foreign(entry.first).erase(thread_key(tstate));
    }
}

// Per frame on the discovery path: does this thread lack the tracer?
PYCROSCOPE_FORCE_INLINE bool thread_needs_install(PyThreadState* tstate) {
    const bool profile_missing = compat::profile_function(tstate) != &profile_callback;
    const bool trace_missing = hot.trace && compat::trace_function(tstate) != &trace_callback;
    if (PYCROSCOPE_LIKELY(!profile_missing && !trace_missing)) {
        return false;
    }
    const TracerState& tracer = tracer_state();
    if (tracer.stepped_aside.count(tstate) != 0) {
        return false;
    }
    return profile_missing || tracer.trace_refused.count(tstate) == 0;
}

#if PYCROSCOPE_HAS_EVAL_FRAME_BACKEND
// The innermost shadow entry is a frame that was running at sync. Frames that
// are no longer running (the hook's caller is not them) returned unseen:
// close them now, with a py_return flagged synthetic (its time is inferred).
inline void close_finished_synthetic(std::uint64_t epoch, ThreadTraceState& state, const void* running) {
    if (state.synthetic > state.depth) {
        state.synthetic = state.depth;
    }
    while (state.synthetic > 0 && state.depth == state.synthetic &&
           state.synthetic_frames[state.depth - 1] != running) {
        emit(epoch, EventKind::py_return, state.top(), 0, event_flags::synthetic);
        state.pop();
        --state.synthetic;
    }
}

inline PyObject* eval_frame_hook(PyThreadState* tstate, compat::EvalFrame* frame, int throwflag) {
    const std::uint64_t epoch = python_epoch.load(std::memory_order_relaxed);
    if (epoch == 0) {
        return hot.next_eval(tstate, frame, throwflag);
    }
    if (hot.discovery_only) {
        if (PYCROSCOPE_UNLIKELY(thread_needs_install(tstate))) {
            install_on(tstate);
        }
        return hot.next_eval(tstate, frame, throwflag);
    }
#if PY_VERSION_HEX >= 0x030B0000
    if (subscript_sites::guard_active) {
        subscript_sites::on_frame_start(tstate);
    }
#endif
    const compat::FrameEntry entry = compat::eval_frame_entry(frame);
    if (entry == compat::FrameEntry::generator_creation) {
        return hot.next_eval(tstate, frame, throwflag); // generator creation: no call
    }
    if (PYCROSCOPE_UNLIKELY(compat::frame_will_hit_recursion_limit(tstate))) {
        return hot.next_eval(tstate, frame, throwflag); // refused before it runs: no call
    }
    ThreadTraceState& state = tls_trace;
    if (PYCROSCOPE_UNLIKELY(state.epoch != epoch)) {
        PyFrameObject* running = PyThreadState_GetFrame(tstate);
        if (running == nullptr && is_thread_bootstrap(compat::eval_frame_code(frame))) {
            adopt_python_thread_name(compat::eval_frame_fast_locals(frame)[0]);
        }
        sync_thread(epoch, running, true);
    }
    if (PYCROSCOPE_UNLIKELY(state.synthetic != 0) && state.depth <= state.synthetic) {
        close_finished_synthetic(epoch, state, compat::running_frame_id(tstate));
    }
    const SourceLocation* location = code_location(compat::eval_frame_code(frame));
    if (PYCROSCOPE_UNLIKELY(is_watched(location)) && entry == compat::FrameEntry::call) {
        PyCodeObject* code = compat::eval_frame_code(frame);
        emit(epoch, EventKind::py_call, location, argument_size(code, compat::eval_frame_fast_locals(frame)),
             event_flags::watched);
    } else {
        emit(epoch, entry == compat::FrameEntry::resume ? EventKind::py_resume : EventKind::py_call, location);
    }
    state.push(location);
    PyObject* result = hot.next_eval(tstate, frame, throwflag);
    if (python_epoch.load(std::memory_order_relaxed) == epoch) {
        emit(epoch, EventKind::py_return, location, 0, result == nullptr ? event_flags::exception : 0);
        state.pop();
    }
    return result;
}
#endif

#if PYCROSCOPE_HAS_SYS_MONITORING
// Thread discovery on 3.12+: called by sys.monitoring on every event that
// starts or re-enters a Python frame on any thread (the events the legacy
// profile function reports as calls). It runs after the profile function's
// own callback for the same event (tools run from the highest id down, and
// the profile function is tool 6), so on a thread that had none yet it
// installs one and records this frame's call itself.
inline PyObject* monitoring_discovery(PyObject*, PyObject* const*, Py_ssize_t) {
    if (python_epoch.load(std::memory_order_relaxed) == 0) {
        Py_RETURN_NONE;
    }
    PyThreadState* tstate = PyThreadState_Get();
    if (PYCROSCOPE_UNLIKELY(thread_needs_install(tstate))) {
        const bool had_profile = compat::profile_function(tstate) == &profile_callback;
        if (install_on(tstate) && !had_profile) {
            PyFrameObject* frame = PyEval_GetFrame(); // borrowed: the frame that starts
            if (frame != nullptr) {
                // The program's function (if any) had this event already.
                profile_callback(nullptr, frame, PyTrace_CALL, Py_None);
            }
        }
    }
    Py_RETURN_NONE;
}

inline PyMethodDef monitoring_discovery_def = {
    "pycroscope_thread_discovery",
    reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&monitoring_discovery)), METH_FASTCALL,
    "Pycroscope: installs its profile function on threads started after the session"};

#if PY_VERSION_HEX < 0x030D0000
// 3.12: RAISE and RERAISE mark the frame an exception propagates in,
// EXCEPTION_HANDLED unmarks it; its PY_UNWIND reaches the profile function
// as a return with arg None (see profile_callback).
inline PyObject* monitoring_raised(PyObject*, PyObject* const*, Py_ssize_t) {
    if (python_epoch.load(std::memory_order_relaxed) != 0) {
        tls_trace.raising_frame = PyEval_GetFrame();
    }
    Py_RETURN_NONE;
}
inline PyObject* monitoring_handled(PyObject*, PyObject* const*, Py_ssize_t) {
    if (tls_trace.raising_frame != nullptr && tls_trace.raising_frame == PyEval_GetFrame()) {
        tls_trace.raising_frame = nullptr;
    }
    Py_RETURN_NONE;
}
inline PyMethodDef monitoring_raised_def = {
    "pycroscope_raised", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&monitoring_raised)),
    METH_FASTCALL, "Pycroscope: an exception propagates in this frame"};
inline PyMethodDef monitoring_handled_def = {
    "pycroscope_handled", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&monitoring_handled)),
    METH_FASTCALL, "Pycroscope: a handler of this frame took the exception"};
#endif

// Tool ids no convention claims (0 debugger, 1 coverage, 2 profiler, which
// cProfile takes, 5 optimizer).
constexpr int discovery_tool_ids[] = {4, 3};
struct MonitoringCallback {
    const char* event;
    PyMethodDef* function;
};
inline const MonitoringCallback discovery_events[] = {
    {"PY_START", &monitoring_discovery_def},
    {"PY_RESUME", &monitoring_discovery_def},
    {"PY_THROW", &monitoring_discovery_def},
#if PY_VERSION_HEX < 0x030D0000
    {"RAISE", &monitoring_raised_def},
    {"RERAISE", &monitoring_raised_def},
    {"EXCEPTION_HANDLED", &monitoring_handled_def},
#endif
};

// True when the call returned; its result is dropped.
template <class... Args>
bool call_monitoring(PyObject* monitoring, const char* method, const char* format, Args... args) {
    PyObject* result = PyObject_CallMethod(monitoring, method, format, args...);
    Py_XDECREF(result);
    PyErr_Clear();
    return result != nullptr;
}

// A free tool id for discovery, or -1.
inline int free_discovery_tool() {
    PendingExceptionGuard keep; // an exception the caller has set survives
    PyObject* monitoring = PySys_GetObject("monitoring"); // borrowed
    for (int tool : discovery_tool_ids) {
        PyObject* owner = monitoring != nullptr ? PyObject_CallMethod(monitoring, "get_tool", "i", tool) : nullptr;
        const bool free = owner == Py_None;
        Py_XDECREF(owner);
        PyErr_Clear();
        if (free) {
            return tool;
        }
    }
    return -1;
}

// Turns tool's events off, unregisters the callback of each entry's event
// (entries: anything with a .event name) and frees the tool id.
template <class Entries>
void release_monitoring_tool(int tool, const Entries& entries) {
    PendingExceptionGuard keep;                           // an exception the caller has set survives
    PyObject* monitoring = PySys_GetObject("monitoring"); // borrowed
    if (monitoring == nullptr) {
        return;
    }
    call_monitoring(monitoring, "set_events", "ii", tool, 0);
    PyObject* events = PyObject_GetAttrString(monitoring, "events");
    for (const auto& entry : entries) {
        PyObject* event = events != nullptr ? PyObject_GetAttrString(events, entry.event) : nullptr;
        if (event != nullptr) {
            call_monitoring(monitoring, "register_callback", "iOO", tool, event, Py_None);
        }
        Py_XDECREF(event);
    }
    Py_XDECREF(events);
    PyErr_Clear();
    call_monitoring(monitoring, "free_tool_id", "i", tool);
}

inline void stop_monitoring_discovery(int tool) { release_monitoring_tool(tool, discovery_events); }

// Registers the callback of each entry that wanted(entry) accepts (entries:
// anything with .event and .function) and turns those events on for tool;
// false at the first refusal (the caller releases the tool).
template <class Entries, class Wanted>
bool enable_monitoring_events(PyObject* monitoring, int tool, const Entries& entries, Wanted&& wanted) {
    PyObject* events = PyObject_GetAttrString(monitoring, "events");
    bool ok = events != nullptr;
    long mask = 0;
    for (const auto& entry : entries) {
        if (!ok || !wanted(entry)) {
            continue;
        }
        PyObject* event = PyObject_GetAttrString(events, entry.event);
        PyObject* function = event != nullptr ? PyCFunction_New(entry.function, nullptr) : nullptr;
        const long bit = event != nullptr ? PyLong_AsLong(event) : -1;
        ok = bit > 0 && function != nullptr &&
             call_monitoring(monitoring, "register_callback", "iOO", tool, event, function);
        mask |= ok ? bit : 0;
        Py_XDECREF(function);
        Py_XDECREF(event);
    }
    Py_XDECREF(events);
    PyErr_Clear();
    return ok && call_monitoring(monitoring, "set_events", "il", tool, mask);
}

// Claims tool and turns discovery on; false (and nothing claimed) on failure.
inline bool start_monitoring_discovery(int tool) {
    PendingExceptionGuard keep; // an exception the caller has set survives
    PyObject* monitoring = PySys_GetObject("monitoring");
    if (monitoring == nullptr || !call_monitoring(monitoring, "use_tool_id", "is", tool, "pycroscope")) {
        PyErr_Clear();
        return false;
    }
    const bool ok = enable_monitoring_events(monitoring, tool, discovery_events, [](const auto&) { return true; });
    if (!ok) {
        stop_monitoring_discovery(tool);
    }
    return ok;
}
#endif

#if PYCROSCOPE_HAS_SYS_MONITORING
// The sys.monitoring backend (monitoring_backend.hpp, included at the end).
// Claims a free tool id and registers its callbacks: the tool, or -1 with
// what stood in the way in why (nothing claimed).
inline int start_monitoring_backend(const TracerOptions& options, std::string& why);
inline void stop_monitoring_backend(int tool);
#endif

constexpr const char* fail_message = "pycroscope is profiling this interpreter and owns the profile/trace hook "
                                     "(--on-conflict fail); stop the pycroscope session first";

// Sees changes of a slot that do not go through sys.setprofile/sys.settrace
// (those are the tracer's own, below): C code such as cProfile on 3.9-3.11
// or a C tracer. The change happens after this returns; under chain and
// take_over the thread's next frame puts the tracer back (take_slot).
inline int audit_hook(const char* event, PyObject*, void*) {
    TracerState& tracer = tracer_state();
    if (!tracer.active || tls_own_slot_change > 0) {
        return 0;
    }
    const bool profile = std::strcmp(event, "sys.setprofile") == 0;
    const bool trace = std::strcmp(event, "sys.settrace") == 0;
    if (!(profile && tracer.backend == Backend::profile) && !(trace && wants_trace_function(tracer.options))) {
        return 0;
    }
    PyThreadState* tstate = PyThreadState_Get();
    if (tracer.stepped_aside.count(tstate) != 0) {
        return 0;
    }
    const std::string what = std::string(event) + " called from C on " + thread_label(tstate);
    switch (tracer.options.on_conflict) {
    case ConflictPolicy::fail:
        tracer.conflicts.push_back(what + ": refused");
        ++program_hooks().report.refused_calls;
        PyErr_SetString(PyExc_RuntimeError, fail_message);
        return -1;
    case ConflictPolicy::step_aside:
        tracer.conflicts.push_back(what + ": stepped aside, this thread is no longer traced");
        tracer.stepped_aside.insert(tstate);
        step_aside_from(tstate);
        uninstall_from(tstate);
        return 0;
    case ConflictPolicy::chain:
    case ConflictPolicy::take_over: return 0;
    }
    return 0;
}

// sys.setprofile(function) / sys.settrace(function), replaced while the
// profile backend runs, so that the program's function joins the tracer in
// the slot instead of evicting it. Without the tracer in the way they are
// the originals.
inline PyObject* program_sets_hook(HookSlot slot, PyObject* function) {
    TracerState& tracer = tracer_state();
    PyObject* original = slot == HookSlot::profile ? tracer.original_setprofile : tracer.original_settrace;
    PyThreadState* tstate = PyThreadState_Get();
    const bool ours_wanted = tracer.active && tracer.backend == Backend::profile &&
                             tracer.stepped_aside.count(tstate) == 0 &&
                             (slot == HookSlot::profile || tracer.trace_refused.count(tstate) == 0);
    if (!ours_wanted) {
        return PyObject_CallOneArg(original, function);
    }
    PyObject* program = function == Py_None ? nullptr : function;
    // Without lines or exceptions the tracer needs no trace function: it
    // wraps the program's only to see a call its error cancels for the
    // profile function (trace_callback), which is no conflict.
    const bool forward_only = slot == HookSlot::trace && !wants_trace_function(tracer.options);
    const Py_tracefunc ours = slot == HookSlot::profile ? &profile_callback
                              : forward_only && program == nullptr ? nullptr
                                                                   : &trace_callback;
    // Removing a function: nothing of the program's left in the slot, the tracer stays.
    const ConflictPolicy policy =
        program == nullptr || forward_only ? ConflictPolicy::chain : tracer.options.on_conflict;
    ProgramHooks& hooks = program_hooks();
    OwnSlotChange own; // the one audit event below is the program's, as without the tracer
    switch (policy) {
    case ConflictPolicy::chain: {
        const bool first = slot_object(tstate, slot) == nullptr;
        if (set_audited(tstate, slot, ours, program) != 0) {
            return nullptr; // a program audit hook refused it: its exception, as without the tracer
        }
        remember_program_function(tstate, slot, nullptr, program);
        tls_profile_just_set = slot == HookSlot::profile && first && program != nullptr;
        Py_RETURN_NONE;
    }
    case ConflictPolicy::take_over:
        if (PySys_Audit(audit_event(slot), nullptr) < 0) {
            return nullptr;
        }
        if (hooks.report.ignored_calls++ == 0) {
            tracer.conflicts.push_back(std::string(audit_event(slot)) + " called by the program on " +
                                       thread_label(tstate) + ": ignored (take_over)");
        }
        Py_RETURN_NONE;
    case ConflictPolicy::fail:
        if (PySys_Audit(audit_event(slot), nullptr) < 0) {
            return nullptr;
        }
        ++hooks.report.refused_calls;
        tracer.conflicts.push_back(std::string(audit_event(slot)) + " called by the program on " +
                                   thread_label(tstate) + ": refused");
        PyErr_SetString(PyExc_RuntimeError, fail_message);
        return nullptr;
    case ConflictPolicy::step_aside:
        tracer.conflicts.push_back(std::string(audit_event(slot)) + " called by the program on " +
                                   thread_label(tstate) + ": stepped aside, this thread is no longer traced");
        tracer.stepped_aside.insert(tstate);
        step_aside_from(tstate);
        uninstall_from(tstate);
        return PyObject_CallOneArg(original, function);
    }
    Py_RETURN_NONE;
}

inline PyObject* sys_setprofile(PyObject*, PyObject* function) { return program_sets_hook(HookSlot::profile, function); }
inline PyObject* sys_settrace(PyObject*, PyObject* function) { return program_sets_hook(HookSlot::trace, function); }

#if PY_VERSION_HEX >= 0x030C0000
// sys._setprofileallthreads / sys._settraceallthreads (threading's
// setprofile_all_threads / settrace_all_threads): chained on every thread.
inline PyObject* program_sets_hook_everywhere(HookSlot slot, PyObject* function) {
    TracerState& tracer = tracer_state();
    PyObject* original = slot == HookSlot::profile ? tracer.original_setprofile_all : tracer.original_settrace_all;
    const bool forward_only = slot == HookSlot::trace && !wants_trace_function(tracer.options);
    const bool ours_wanted = tracer.active && tracer.backend == Backend::profile &&
                             (tracer.options.on_conflict == ConflictPolicy::chain || forward_only);
    if (!ours_wanted) {
        return PyObject_CallOneArg(original, function);
    }
    PyObject* program = function == Py_None ? nullptr : function;
    OwnSlotChange own;
    if (slot == HookSlot::profile) {
        PyEval_SetProfileAllThreads(&profile_callback, program);
    } else {
        PyEval_SetTraceAllThreads(forward_only && program == nullptr ? nullptr : &trace_callback, program);
    }
    if (PyErr_Occurred() != nullptr) {
        return nullptr;
    }
    program_hooks().foreign(slot).clear();
    for (PyThreadState* t = PyInterpreterState_ThreadHead(PyInterpreterState_Get()); t != nullptr;
         t = PyThreadState_Next(t)) {
        remember_program_function(t, slot, nullptr, program);
    }
    Py_RETURN_NONE;
}
inline PyObject* sys_setprofile_all(PyObject*, PyObject* function) {
    return program_sets_hook_everywhere(HookSlot::profile, function);
}
inline PyObject* sys_settrace_all(PyObject*, PyObject* function) {
    return program_sets_hook_everywhere(HookSlot::trace, function);
}
#endif

struct SysFunction {
    const char* name;
    PyMethodDef def;
    PyObject* TracerState::*original;
};
inline SysFunction sys_functions[] = {
    {"setprofile", {"setprofile", &sys_setprofile, METH_O, "Set the profiling function."},
     &TracerState::original_setprofile},
    {"settrace", {"settrace", &sys_settrace, METH_O, "Set the global debug tracing function."},
     &TracerState::original_settrace},
#if PY_VERSION_HEX >= 0x030C0000
    {"_setprofileallthreads",
     {"_setprofileallthreads", &sys_setprofile_all, METH_O, "Set the profiling function in all running threads."},
     &TracerState::original_setprofile_all},
    {"_settraceallthreads",
     {"_settraceallthreads", &sys_settrace_all, METH_O, "Set the global debug tracing function in all running threads."},
     &TracerState::original_settrace_all},
#endif
};

inline bool is_ours(PyObject* object, const SysFunction& function) {
    return object != nullptr && PyCFunction_Check(object) &&
           PyCFunction_GET_FUNCTION(object) == function.def.ml_meth;
}

// Puts the functions above into sys (keeping the originals), and reads
// CPython's trampolines through the originals.
inline void replace_sys_functions(TracerState& tracer) {
    PendingExceptionGuard pending;
    PyObject* sys = PyImport_AddModule("sys"); // borrowed; __self__ of sys's functions
    PyObject* module_name = PyUnicode_FromString("sys");
    if (sys == nullptr || module_name == nullptr) {
        Py_XDECREF(module_name);
        PyErr_Clear();
        return;
    }
    for (SysFunction& function : sys_functions) {
        PyObject* current = PyObject_GetAttrString(sys, function.name);
        if (current == nullptr) {
            PyErr_Clear();
            continue;
        }
        if (is_ours(current, function)) {
            Py_DECREF(current);
            continue;
        }
        Py_XDECREF(tracer.*function.original);
        tracer.*function.original = current; // kept: a saved reference to ours still works after stop
    }
    capture_trampolines(tracer.original_setprofile, tracer.original_settrace);
    for (SysFunction& function : sys_functions) {
        if (tracer.*function.original == nullptr) {
            continue;
        }
        PyObject* ours = PyCFunction_NewEx(&function.def, sys, module_name);
        if (ours == nullptr || PyObject_SetAttrString(sys, function.name, ours) != 0) {
            tracer.conflicts.push_back(std::string("cannot replace sys.") + function.name +
                                       ": the program's calls of it replace the tracer");
        } else {
            tracer.sys_functions_replaced = true;
        }
        Py_XDECREF(ours);
        PyErr_Clear();
    }
    Py_DECREF(module_name);
}

// Puts back the originals that are still ours in sys.
inline void restore_sys_functions(TracerState& tracer) {
    if (!tracer.sys_functions_replaced) {
        return;
    }
    tracer.sys_functions_replaced = false;
    PendingExceptionGuard pending;
    PyObject* sys = PyImport_AddModule("sys");
    for (SysFunction& function : sys_functions) {
        PyObject* current = sys != nullptr ? PyObject_GetAttrString(sys, function.name) : nullptr;
        if (is_ours(current, function) && tracer.*function.original != nullptr) {
            PyObject_SetAttrString(sys, function.name, tracer.*function.original);
        }
        Py_XDECREF(current);
        PyErr_Clear();
    }
}

template <class F>
void for_each_thread(PyInterpreterState* interp, F&& f) {
    for (PyThreadState* t = PyInterpreterState_ThreadHead(interp); t != nullptr; t = PyThreadState_Next(t)) {
        f(t);
    }
}

// os.fork(): the child detaches like the core does (session_core.hpp); its
// hooks stay installed but inert, since nothing drains its buffers.
inline void stop_python_recording_in_child() noexcept { python_epoch.store(0, std::memory_order_relaxed); }

} // namespace detail

// The collector. Configure before Session::start():
//     session.collector<pycroscope::python::PythonTracer>().options.lines = true;
class PythonTracer {
public:
    static constexpr const char* name = "python";

    TracerOptions options;

    void start(SessionCore& core) {
        if (!options.enabled) {
            return;
        }
        if (!Py_IsInitialized()) {
            if (options.deferred) {
                pending_epoch_ = core.epoch();
                return;
            }
            throw ConfigError("PythonTracer: the interpreter is not initialized; start the session after "
                              "Py_Initialize() or set TracerOptions::deferred");
        }
        install(core.epoch());
    }

    // Deferred mode: installs the hooks of a tracer started before
    // Py_Initialize (GIL held). Does nothing when none is pending.
    void attach() {
        if (pending_epoch_ == 0) {
            return;
        }
        const std::uint64_t epoch = pending_epoch_;
        pending_epoch_ = 0;
        install(epoch);
    }
    bool pending() const noexcept { return pending_epoch_ != 0; }

private:
    void install(std::uint64_t epoch) {
        if (!PyGILState_Check()) {
            throw ConfigError("PythonTracer: start the session with the GIL held");
        }
        detail::TracerState& tracer = detail::tracer_state();
        if (tracer.active) {
            throw SessionError("PythonTracer is already active in this process");
        }
        tracer.options = options;
        tracer.conflicts.clear();
        tracer.stepped_aside.clear();
        tracer.trace_refused.clear();
        detail::program_hooks().clear();
        tracer.backend = choose_backend(options);
        code_extra_index();
        if (!tracer.audit_hook_added) {
            if (PySys_AddAuditHook(&detail::audit_hook, nullptr) != 0) {
                PyErr_Clear();
            } else {
                tracer.audit_hook_added = true;
            }
        }

        PyInterpreterState* interp = PyInterpreterState_Get();
        std::vector<std::string> found;
        std::unordered_set<PyThreadState*> owned_by_others;
        const bool need_trace = detail::wants_trace_function(options);
#if PYCROSCOPE_HAS_SYS_MONITORING
        tracer.monitoring_tool = -1;
        if (tracer.backend == Backend::monitoring) {
            std::string why;
            tracer.monitoring_tool = detail::start_monitoring_backend(options, why);
            if (tracer.monitoring_tool < 0 && options.on_conflict == ConflictPolicy::fail) {
                found.push_back(why);
            } else if (tracer.monitoring_tool < 0) {
                tracer.conflicts.push_back(why + ": the profile backend records instead");
                tracer.backend = Backend::profile;
            }
        }
#endif
        if (tracer.backend == Backend::profile) {
            detail::for_each_thread(interp, [&](PyThreadState* t) {
                const bool profile_taken = compat::profile_function(t) != nullptr &&
                                           compat::profile_function(t) != &detail::profile_callback;
                const bool trace_taken = need_trace && compat::trace_function(t) != nullptr &&
                                         compat::trace_function(t) != &detail::trace_callback;
                if (profile_taken || trace_taken) {
                    owned_by_others.insert(t);
                    found.push_back(std::string("thread ") + std::to_string(static_cast<unsigned long long>(
                                                                 PyThreadState_GetID(t))) +
                                    " already has a " + (profile_taken ? "profile" : "trace") +
                                    " function (cProfile, sys.setprofile/settrace or a debugger)");
                }
            });
        }
#if PYCROSCOPE_HAS_EVAL_FRAME_BACKEND
        const compat::EvalFrameFunction current = compat::current_eval_frame(interp);
        const bool eval_taken = current != compat::default_eval_frame() && current != &detail::eval_frame_hook;
        if (eval_taken) {
            found.push_back("another PEP 523 frame-evaluation function is installed (a debugger or JIT)");
        }
#else
        const bool eval_taken = false;
#endif
#if PYCROSCOPE_HAS_SYS_MONITORING
        const int discovery_tool = tracer.backend == Backend::profile ? detail::free_discovery_tool() : -1;
        const bool discovery_taken = tracer.backend == Backend::profile && discovery_tool < 0;
        if (discovery_taken && options.on_conflict == ConflictPolicy::fail) {
            found.push_back("sys.monitoring tool ids 4 and 3 are both in use: threads started after start() are "
                            "found through one");
        }
#endif
        if (!found.empty() && options.on_conflict == ConflictPolicy::fail) {
            std::string message = "PythonTracer: another tool owns a hook Pycroscope needs:";
            for (const auto& f : found) {
                message += "\n  " + f;
            }
            message += "\nstop it first, or set TracerOptions::on_conflict to step_aside or take_over";
            throw ConfigError(message);
        }
        for (auto& f : found) {
            tracer.conflicts.push_back(f + (options.on_conflict == ConflictPolicy::step_aside ? ": stepped aside"
                                            : options.on_conflict == ConflictPolicy::chain  ? ": chained, both run"
                                                                                             : ": taken over"));
        }
        if (eval_taken && options.on_conflict == ConflictPolicy::step_aside && tracer.backend == Backend::eval_frame) {
            tracer.backend = Backend::profile;
        }

        forget_in_forked_child<&detail::stop_python_recording_in_child>();
        detail::python_epoch.store(epoch, std::memory_order_release);
        tracer.active = true;
        tracer.eval_hook_installed = false;
        detail::hot.discovery_only = tracer.backend == Backend::profile;
        detail::hot.c_calls = options.c_calls;
        detail::hot.trace = tracer.backend == Backend::profile && need_trace;
        detail::hot.monitoring = tracer.backend == Backend::monitoring;
        if (tracer.backend == Backend::profile) {
            detail::replace_sys_functions(tracer);
        }
#if PYCROSCOPE_HAS_EVAL_FRAME_BACKEND
        if (!eval_taken || options.on_conflict == ConflictPolicy::take_over ||
            options.on_conflict == ConflictPolicy::chain) {
            detail::hot.next_eval = eval_taken ? current : compat::default_eval_frame();
            compat::set_eval_frame(interp, &detail::eval_frame_hook);
            tracer.eval_hook_installed = true;
#if PY_VERSION_HEX >= 0x030B0000
            if (tracer.backend == Backend::eval_frame) {
                subscript_sites::start(interp);
                if (subscript_sites::guard_active) {
                    detail::code_first_seen = &subscript_sites::scan_code;
                }
            }
#endif
        } else if (tracer.backend == Backend::profile) {
            tracer.conflicts.push_back("threads started after start() are not traced: the eval-frame slot is taken");
        }
#endif
#if PYCROSCOPE_HAS_SYS_MONITORING
        if (!discovery_taken && tracer.backend == Backend::profile) {
            if (detail::start_monitoring_discovery(discovery_tool)) {
                tracer.monitoring_tool = discovery_tool;
            } else {
                tracer.conflicts.push_back("threads started after start() are not traced: sys.monitoring refused "
                                           "tool id " + std::to_string(discovery_tool));
            }
        } else if (discovery_taken) {
            tracer.conflicts.push_back("threads started after start() are not traced: sys.monitoring tool ids 4 "
                                       "and 3 are both in use");
        }
#endif
        if (tracer.backend == Backend::profile) {
            detail::for_each_thread(interp, [&](PyThreadState* t) {
                if (owned_by_others.count(t) != 0 && options.on_conflict == ConflictPolicy::step_aside) {
                    tracer.stepped_aside.insert(t);
                    detail::step_aside_from(t);
                } else {
                    detail::install_on(t);
                }
            });
        }
        backend_ = tracer.backend;
    }

public:
    void stop(SessionCore&) noexcept {
        pending_epoch_ = 0; // never attached: nothing was installed
        detail::TracerState& tracer = detail::tracer_state();
        if (!tracer.active) {
            return;
        }
        detail::python_epoch.store(0, std::memory_order_release);
        tracer.active = false;
#if PYCROSCOPE_HAS_EVAL_FRAME_BACKEND && PY_VERSION_HEX >= 0x030B0000
        subscript_sites::stop();
        detail::code_first_seen = nullptr;
#endif
        conflicts_ = tracer.conflicts;
        detail::close_report(clock::now());
        program_hooks_ = detail::program_hooks().report;
        if (!Py_IsInitialized()) {
            return; // finalized: the hooks went with the interpreter
        }
        const PyGILState_STATE gil = PyGILState_Ensure();
        PyInterpreterState* interp = PyInterpreterState_Get();
        detail::restore_sys_functions(tracer);
        detail::for_each_thread(interp, [](PyThreadState* t) { detail::uninstall_from(t); });
#if PYCROSCOPE_HAS_EVAL_FRAME_BACKEND
        if (tracer.eval_hook_installed) {
            if (compat::current_eval_frame(interp) == &detail::eval_frame_hook) {
                compat::set_eval_frame(interp, detail::hot.next_eval);
            } else {
                conflicts_.push_back("the eval-frame hook was replaced by another tool during the run; left as is");
            }
            tracer.eval_hook_installed = false;
        }
#endif
#if PYCROSCOPE_HAS_SYS_MONITORING
        if (tracer.monitoring_tool >= 0 && tracer.backend == Backend::monitoring) {
            detail::stop_monitoring_backend(tracer.monitoring_tool);
            tracer.monitoring_tool = -1;
        } else if (tracer.monitoring_tool >= 0) {
            detail::stop_monitoring_discovery(tracer.monitoring_tool);
            tracer.monitoring_tool = -1;
        }
#endif
        PyGILState_Release(gil);
    }

    Backend backend() const noexcept { return backend_; }
    // Conflicts met at start and during the run (valid after stop()).
    const std::vector<std::string>& conflicts() const noexcept { return conflicts_; }
    // What the program's own profile/trace functions cost the profile (valid after stop()).
    const ProgramHookReport& program_hooks() const noexcept { return program_hooks_; }

    // 3.12+: monitoring unless profile is asked for (eval_frame, absent
    // there, gets the cheap backend too). 3.9-3.11: eval_frame when only Python
    // calls are wanted, else profile (monitoring, absent there, included).
    static Backend choose_backend(const TracerOptions& options) noexcept {
#if PYCROSCOPE_HAS_SYS_MONITORING
        return options.backend == Backend::profile ? Backend::profile : Backend::monitoring;
#elif PYCROSCOPE_HAS_EVAL_FRAME_BACKEND
        if (options.backend == Backend::profile || options.backend == Backend::monitoring || options.c_calls ||
            detail::wants_trace_function(options)) {
            return Backend::profile;
        }
        return Backend::eval_frame;
#else
        (void)options;
        return Backend::profile;
#endif
    }

private:
    Backend backend_ = Backend::automatic;
    std::vector<std::string> conflicts_;
    ProgramHookReport program_hooks_;
    std::uint64_t pending_epoch_ = 0;
};

} // namespace python
} // namespace pycroscope

#include "pycroscope/python/tracer/monitoring_backend.hpp"
