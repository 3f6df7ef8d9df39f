#pragma once
// The innermost Python frame of a thread, read straight from its thread
// state without a call into libpython and without allocating (unlike
// PyThreadState_GetFrame). Used by the allocator hooks, which may run on a
// thread that does not hold the GIL: only ever pass the calling thread's own
// state (PyGILState_GetThisThreadState()), whose frames cannot change while
// it runs the hook.

#include "pycroscope/python/runtime/cpython.hpp"

#include <cstdint>

namespace pycroscope {
namespace python {
namespace compat {

// A code object and the index of the code unit its frame is executing.
// code is null when the thread runs no Python code. unit may be out of range
// (a frame still being set up): callers clamp it.
struct FramePosition {
    PyCodeObject* code;
    Py_ssize_t unit;
};

#if PY_VERSION_HEX >= 0x030D0000
// Mirror of the head of 3.13's _PyInterpreterFrame (internal/pycore_frame.h).
struct InterpreterFrame313 {
    PyObject* f_executable;
    InterpreterFrame313* previous;
    PyObject* f_funcobj;
    PyObject* f_globals;
    PyObject* f_builtins;
    PyObject* f_locals;
    PyFrameObject* frame_obj;
    const std::uint8_t* instr_ptr; // the instruction executing (_Py_CODEUNIT* is internal in 3.13)
    int stacktop;
    std::uint16_t return_offset;
    char owner;
};
constexpr char frame_owned_by_cstack = 3;
inline FramePosition current_position(PyThreadState* tstate) noexcept {
    for (auto* frame = reinterpret_cast<InterpreterFrame313*>(tstate->current_frame); frame != nullptr;
         frame = frame->previous) {
        if (frame->owner == frame_owned_by_cstack || frame->f_executable == nullptr ||
            !PyCode_Check(frame->f_executable)) {
            continue;
        }
        auto* code = reinterpret_cast<PyCodeObject*>(frame->f_executable);
        return FramePosition{code, (frame->instr_ptr - code_bytes(code)) / 2};
    }
    return FramePosition{nullptr, 0};
}
#elif PY_VERSION_HEX >= 0x030C0000
// Mirror of the head of 3.12's _PyInterpreterFrame.
struct InterpreterFrame312 {
    PyCodeObject* f_code;
    InterpreterFrame312* previous;
    PyObject* f_funcobj;
    PyObject* f_globals;
    PyObject* f_builtins;
    PyObject* f_locals;
    PyFrameObject* frame_obj;
    _Py_CODEUNIT* prev_instr; // the instruction executing (or the unit before the next)
    int stacktop;
    std::uint16_t return_offset;
    char owner;
};
constexpr char frame_owned_by_cstack = 3;
inline FramePosition current_position(PyThreadState* tstate) noexcept {
    if (tstate->cframe == nullptr) {
        return FramePosition{nullptr, 0};
    }
    for (auto* frame = reinterpret_cast<InterpreterFrame312*>(tstate->cframe->current_frame); frame != nullptr;
         frame = frame->previous) {
        if (frame->owner == frame_owned_by_cstack || frame->f_code == nullptr) {
            continue;
        }
        return FramePosition{frame->f_code, frame->prev_instr - _PyCode_CODE(frame->f_code)};
    }
    return FramePosition{nullptr, 0};
}
#elif PY_VERSION_HEX >= 0x030B0000
// 3.11: tstate->cframe->current_frame; InterpreterFrame is mirrored in cpython.hpp.
inline FramePosition current_position(PyThreadState* tstate) noexcept {
    if (tstate->cframe == nullptr) {
        return FramePosition{nullptr, 0};
    }
    auto* frame = reinterpret_cast<InterpreterFrame*>(tstate->cframe->current_frame);
    if (frame == nullptr || frame->f_code == nullptr) {
        return FramePosition{nullptr, 0};
    }
    return FramePosition{frame->f_code, frame->prev_instr - _PyCode_CODE(frame->f_code)};
}
#elif PY_VERSION_HEX >= 0x030A0000
// 3.10: f_lasti counts code units.
inline FramePosition current_position(PyThreadState* tstate) noexcept {
    PyFrameObject* frame = tstate->frame;
    if (frame == nullptr) {
        return FramePosition{nullptr, 0};
    }
    return FramePosition{frame->f_code, frame->f_lasti};
}
#else
// 3.9: f_lasti counts bytes.
inline FramePosition current_position(PyThreadState* tstate) noexcept {
    PyFrameObject* frame = tstate->frame;
    if (frame == nullptr) {
        return FramePosition{nullptr, 0};
    }
    return FramePosition{frame->f_code, frame->f_lasti < 0 ? -1 : frame->f_lasti / 2};
}
#endif

// The thread state holding the GIL (null if none), without the checks of
// PyThreadState_Get(). Only meaningful while the caller holds the GIL.
inline PyThreadState* current_thread_state() noexcept {
#if PY_VERSION_HEX >= 0x030D0000
    return PyThreadState_GetUnchecked();
#else
    return _PyThreadState_UncheckedGet();
#endif
}

// True once Py_Finalize has begun: other threads' states are then freed
// under them, so a thread without the GIL must not read its own any more.
// One atomic load, no allocation.
inline bool interpreter_finalizing() noexcept {
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing() != 0;
#else
    return _Py_IsFinalizing() != 0;
#endif
}

// Number of code units of a code object: the range of FramePosition::unit.
inline Py_ssize_t code_units(PyCodeObject* code) noexcept {
#if PY_VERSION_HEX >= 0x030B0000
    return Py_SIZE(code);
#else
    return PyBytes_GET_SIZE(code->co_code) / 2;
#endif
}

// The lines of a code object's units, asked in increasing order, in linear
// time over the whole object: PyCode_Addr2Line() rescans the table from the
// start on every call, which made building a large module's table quadratic.
class LineWalker {
public:
#if PY_VERSION_HEX >= 0x030A0000
    explicit LineWalker(PyCodeObject* code) noexcept {
        // What _PyCode_InitAddressRange() does (not exported); then
        // _PyCode_CheckLineNumber() moves the range forward incrementally.
        using Byte = decltype(bounds_.opaque.lo_next);
        bounds_.opaque.lo_next = reinterpret_cast<Byte>(PyBytes_AS_STRING(code->co_linetable));
        bounds_.opaque.limit = bounds_.opaque.lo_next + PyBytes_GET_SIZE(code->co_linetable);
        bounds_.opaque.computed_line = code->co_firstlineno;
        bounds_.ar_start = -1;
        bounds_.ar_end = 0;
        bounds_.ar_line = -1;
    }
    // byte_offset: unit * 2; must not decrease from one call to the next.
    int line_at(int byte_offset) noexcept { return _PyCode_CheckLineNumber(byte_offset, &bounds_); }

private:
    PyCodeAddressRange bounds_;
#else
    // 3.9: co_lnotab holds (address increment, signed line increment) pairs;
    // this is PyCode_Addr2Line()'s walk, resumed where the last call stopped.
    explicit LineWalker(PyCodeObject* code) noexcept
        : next_(reinterpret_cast<const unsigned char*>(PyBytes_AS_STRING(code->co_lnotab))),
          pairs_left_(PyBytes_GET_SIZE(code->co_lnotab) / 2), line_(code->co_firstlineno) {}
    int line_at(int byte_offset) noexcept {
        while (pairs_left_ > 0 && address_ + next_[0] <= byte_offset) {
            address_ += next_[0];
            line_ += static_cast<signed char>(next_[1]);
            next_ += 2;
            --pairs_left_;
        }
        return line_;
    }

private:
    const unsigned char* next_;
    Py_ssize_t pairs_left_;
    int line_;
    int address_ = 0;
#endif
};

} // namespace compat
} // namespace python
} // namespace pycroscope
