#pragma once
// The only place <Python.h> enters Pycroscope, plus the small per-version
// layer: everything that differs between CPython 3.9 and 3.13 is here.

#ifndef PY_SSIZE_T_CLEAN
#define PY_SSIZE_T_CLEAN
#endif
#include <Python.h>
#include <frameobject.h>
#include <opcode.h>

#include <cstdint>

#if PY_VERSION_HEX < 0x03090000
#error "Pycroscope's Python layer needs CPython 3.9 or newer"
#endif

namespace pycroscope {
namespace python {
namespace compat {

constexpr int generator_flags = CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR | CO_ITERABLE_COROUTINE;

inline bool is_generator_code(PyCodeObject* code) noexcept { return (code->co_flags & generator_flags) != 0; }

// What entering a frame through the eval-frame hook means to a profiler.
enum class FrameEntry {
    generator_creation, // the first run of a generator body that only creates it: cProfile sees no call
    call,
    resume, // a generator or coroutine resumed after a yield
};

// Borrowed: the frame keeps its code object alive.
inline PyCodeObject* frame_code(PyFrameObject* frame) noexcept;

inline PyObject* qualified_name(PyCodeObject* code) noexcept {
#if PY_VERSION_HEX >= 0x030B0000
    return code->co_qualname;
#else
    return code->co_name;
#endif
}

#if PY_VERSION_HEX >= 0x030B0000
// From 3.11 every entry into a frame executes a RESUME whose oparg is 0 at
// the start of the function and nonzero after a yield or await.
inline bool is_resume_opcode(int opcode) noexcept {
    // The adaptive interpreter rewrites RESUME in place: quickened (3.11),
    // checked (3.13) or instrumented while a profile function is set (3.12+).
#ifdef RESUME_QUICK
    if (opcode == RESUME_QUICK) {
        return true;
    }
#endif
#ifdef RESUME_CHECK
    if (opcode == RESUME_CHECK) {
        return true;
    }
#endif
#ifdef INSTRUMENTED_RESUME
    if (opcode == INSTRUMENTED_RESUME) {
        return true;
    }
#endif
    return opcode == RESUME;
}
// The code units of a code object as bytes: (opcode, oparg) pairs. Read as
// bytes because _Py_CODEUNIT is a different type in every version.
inline const std::uint8_t* code_bytes(PyCodeObject* code) noexcept {
    return reinterpret_cast<const std::uint8_t*>(code->co_code_adaptive);
}
// unit is the index of the next instruction to run; skips the few prologue
// instructions (POP_TOP after RETURN_GENERATOR) that precede RESUME.
inline bool resumes_after_yield(PyCodeObject* code, Py_ssize_t unit) noexcept {
    const std::uint8_t* bytes = code_bytes(code);
    const Py_ssize_t count = Py_SIZE(code);
    for (Py_ssize_t i = unit; i < unit + 4 && i >= 0 && i < count; ++i) {
        if (is_resume_opcode(bytes[2 * i])) {
            return bytes[2 * i + 1] != 0;
        }
    }
    return false;
}
#endif

// True when a profile-hook CALL event for a generator or coroutine frame
// re-enters it after a yield or await, rather than starting it.
inline bool profile_call_is_resume(PyFrameObject* frame, PyCodeObject* code) noexcept {
    if (!is_generator_code(code)) {
        return false;
    }
#if PY_VERSION_HEX >= 0x030B0000
    const int lasti = PyFrame_GetLasti(frame);
    if (lasti < 0) {
        return false;
    }
    return resumes_after_yield(code, lasti / 2);
#else
    return frame->f_lasti >= 0;
#endif
}

inline int frame_line(PyFrameObject* frame) noexcept { return PyFrame_GetLineNumber(frame); }

// PEP 523 frame evaluation. The slot exists on every supported version
// (the accessors below). Pycroscope hooks it
// on 3.9 to 3.11 only (PYCROSCOPE_HAS_EVAL_FRAME_BACKEND), where it records
// calls exactly like cProfile and, with the profile backend, finds threads
// started after start(). On 3.12+ a pass-through hook would make every
// Python call a C recursion (no inlined calls): 3.12 then raises
// RecursionError at depths plain Python allows. sys.monitoring finds new
// threads there instead (PYCROSCOPE_HAS_SYS_MONITORING).
#if PY_VERSION_HEX >= 0x030C0000
#define PYCROSCOPE_HAS_SYS_MONITORING 1
#else
#define PYCROSCOPE_HAS_SYS_MONITORING 0
#endif
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
#define PYCROSCOPE_HAS_EVAL_FRAME_BACKEND 1
// Mirror of the leading fields of CPython 3.11's _PyInterpreterFrame
// (Include/internal/pycore_frame.h), which is not a public header.
struct InterpreterFrame {
    PyObject* f_func;
    PyObject* f_globals;
    PyObject* f_builtins;
    PyObject* f_locals;
    PyCodeObject* f_code;
    PyObject* frame_obj;
    InterpreterFrame* previous;
    _Py_CODEUNIT* prev_instr;
    int stacktop;
    bool is_entry;
    char owner;
    PyObject* localsplus[1]; // fast locals (arguments first), then cells, then the stack
};
using EvalFrame = struct _PyInterpreterFrame;
inline PyCodeObject* eval_frame_code(EvalFrame* frame) noexcept {
    return reinterpret_cast<InterpreterFrame*>(frame)->f_code;
}
inline FrameEntry eval_frame_entry(EvalFrame* raw) noexcept {
    auto* frame = reinterpret_cast<InterpreterFrame*>(raw);
    PyCodeObject* code = frame->f_code;
    if (!is_generator_code(code)) {
        return FrameEntry::call;
    }
    const auto* start = reinterpret_cast<const _Py_CODEUNIT*>(_PyCode_CODE(code));
    const _Py_CODEUNIT* next = frame->prev_instr + 1;
    if (next == start) {
        return FrameEntry::generator_creation;
    }
    return resumes_after_yield(code, next - start) ? FrameEntry::resume : FrameEntry::call;
}
// True when _PyEval_EvalFrameDefault will refuse the frame with a
// RecursionError before its first instruction (_Py_EnterRecursivePy and
// _Py_CheckRecursiveCall in 3.11): the profile hook and cProfile see no call.
inline bool frame_will_hit_recursion_limit(PyThreadState* tstate) noexcept {
    const int remaining = tstate->recursion_remaining;
    if (remaining > 0) {
        return false;
    }
    return tstate->recursion_headroom == 0 && tstate->recursion_limit - remaining + 1 >= Py_GetRecursionLimit();
}
// Mirror of the head of 3.11's PyFrameObject (struct _frame, internal).
struct FrameObjectHead {
    PyObject ob_base;
    PyFrameObject* f_back;
    InterpreterFrame* f_frame;
};
inline PyCodeObject* frame_code(PyFrameObject* frame) noexcept {
    return reinterpret_cast<FrameObjectHead*>(frame)->f_frame->f_code; // PyFrame_GetCode without the calls
}
// Identities of running frames, compared and never dereferenced: the frame
// the eval-frame hook's caller runs in, and the frame behind a frame object.
inline const void* running_frame_id(PyThreadState* tstate) noexcept { return tstate->cframe->current_frame; }
inline const void* frame_id(PyFrameObject* frame) noexcept {
    return reinterpret_cast<FrameObjectHead*>(frame)->f_frame;
}
// The fast locals of a frame, positional arguments first (null: not readable here).
inline PyObject* const* frame_fast_locals(PyFrameObject* frame) noexcept {
    return reinterpret_cast<FrameObjectHead*>(frame)->f_frame->localsplus;
}
inline PyObject* const* eval_frame_fast_locals(EvalFrame* frame) noexcept {
    return reinterpret_cast<InterpreterFrame*>(frame)->localsplus;
}
#elif PY_VERSION_HEX < 0x030B0000
#define PYCROSCOPE_HAS_EVAL_FRAME_BACKEND 1
using EvalFrame = PyFrameObject;
inline PyCodeObject* eval_frame_code(EvalFrame* frame) noexcept { return frame->f_code; }
inline FrameEntry eval_frame_entry(EvalFrame* frame) noexcept {
    if (!is_generator_code(frame->f_code)) {
        return FrameEntry::call;
    }
    return frame->f_lasti >= 0 ? FrameEntry::resume : FrameEntry::call;
}
inline PyCodeObject* frame_code(PyFrameObject* frame) noexcept { return frame->f_code; }
// True when _PyEval_EvalFrameDefault will refuse the frame with a
// RecursionError before the profile function sees it: _Py_EnterRecursiveCall
// raises when the depth would pass the limit, unless the thread is already
// handling an overflow (then it lets the frame run).
inline bool frame_will_hit_recursion_limit(PyThreadState* tstate) noexcept {
    if (tstate->recursion_depth + 1 <= Py_GetRecursionLimit()) {
        return false;
    }
#if PY_VERSION_HEX >= 0x030A0000
    return tstate->recursion_headroom == 0;
#else
    return tstate->overflowed == 0;
#endif
}
inline const void* running_frame_id(PyThreadState* tstate) noexcept { return tstate->frame; }
inline const void* frame_id(PyFrameObject* frame) noexcept { return frame; }
inline PyObject* const* frame_fast_locals(PyFrameObject* frame) noexcept { return frame->f_localsplus; }
inline PyObject* const* eval_frame_fast_locals(EvalFrame* frame) noexcept { return frame->f_localsplus; }
#else
#define PYCROSCOPE_HAS_EVAL_FRAME_BACKEND 0
// Opaque: only the slot's accessors below use it.
using EvalFrame = struct _PyInterpreterFrame;
inline PyCodeObject* frame_code(PyFrameObject* frame) noexcept {
    PyCodeObject* code = PyFrame_GetCode(frame);
    Py_DECREF(code);
    return code;
}
// The frame's layout is internal here: read arguments by name (PyFrame_GetVar).
inline PyObject* const* frame_fast_locals(PyFrameObject*) noexcept { return nullptr; }
#endif

using EvalFrameFunction = PyObject* (*)(PyThreadState*, EvalFrame*, int);
inline EvalFrameFunction current_eval_frame(PyInterpreterState* interp) noexcept {
    return reinterpret_cast<EvalFrameFunction>(_PyInterpreterState_GetEvalFrameFunc(interp));
}
inline void set_eval_frame(PyInterpreterState* interp, EvalFrameFunction function) noexcept {
    _PyInterpreterState_SetEvalFrameFunc(interp, reinterpret_cast<_PyFrameEvalFunction>(function));
}
inline EvalFrameFunction default_eval_frame() noexcept {
    return reinterpret_cast<EvalFrameFunction>(&_PyEval_EvalFrameDefault);
}

#if PY_VERSION_HEX >= 0x030D0000
} // namespace compat
} // namespace python
} // namespace pycroscope
// 3.13 moved these to internal headers; _PyEval_SetProfile is still exported.
extern "C" int _PyEval_SetProfile(PyThreadState* tstate, Py_tracefunc func, PyObject* arg);
namespace pycroscope {
namespace python {
namespace compat {
#endif

// Installs or removes a profile / trace function on any thread state (GIL held).
inline int set_profile(PyThreadState* tstate, Py_tracefunc function) noexcept {
    return _PyEval_SetProfile(tstate, function, nullptr);
}
// Returns -1 where this version cannot do it (another thread's trace
// function on 3.13): the tracer reports that thread as not traced for lines.
inline int set_trace(PyThreadState* tstate, Py_tracefunc function) noexcept {
#if PY_VERSION_HEX >= 0x030D0000
    if (tstate != PyThreadState_Get()) {
        return -1;
    }
    PyEval_SetTrace(function, nullptr);
    return 0;
#else
    return _PyEval_SetTrace(tstate, function, nullptr);
#endif
}
inline Py_tracefunc profile_function(PyThreadState* tstate) noexcept { return tstate->c_profilefunc; }
inline Py_tracefunc trace_function(PyThreadState* tstate) noexcept { return tstate->c_tracefunc; }

inline Py_ssize_t request_code_extra_index() noexcept {
#if PY_VERSION_HEX >= 0x030C0000
    return PyUnstable_Eval_RequestCodeExtraIndex(nullptr);
#else
    return _PyEval_RequestCodeExtraIndex(nullptr);
#endif
}
inline int get_code_extra(PyCodeObject* code, Py_ssize_t index, void** extra) noexcept {
#if PY_VERSION_HEX >= 0x030C0000
    return PyUnstable_Code_GetExtra(reinterpret_cast<PyObject*>(code), index, extra);
#else
    return _PyCode_GetExtra(reinterpret_cast<PyObject*>(code), index, extra);
#endif
}
inline int set_code_extra(PyCodeObject* code, Py_ssize_t index, void* extra) noexcept {
#if PY_VERSION_HEX >= 0x030C0000
    return PyUnstable_Code_SetExtra(reinterpret_cast<PyObject*>(code), index, extra);
#else
    return _PyCode_SetExtra(reinterpret_cast<PyObject*>(code), index, extra);
#endif
}

// A code object's co_extra slot without the call into libpython: a mirror
// of _PyCodeObjectExtra (internal, the same from 3.6 to 3.13). Null when the
// slot was never set.
struct CodeExtraMirror {
    Py_ssize_t ce_size;
    void* ce_extras[1];
};
inline void* peek_code_extra(PyCodeObject* code, Py_ssize_t index) noexcept {
    const auto* extra = static_cast<const CodeExtraMirror*>(code->co_extra);
    return extra != nullptr && index < extra->ce_size ? extra->ce_extras[index] : nullptr;
}

} // namespace compat
} // namespace python
} // namespace pycroscope
