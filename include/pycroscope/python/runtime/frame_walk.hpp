#pragma once
// Reading any thread's Python stack from its thread state, under the GIL,
// without allocating: the internal frame chain, never PyThreadState_GetFrame
// or PyFrame_GetBack (which create frame objects on 3.11+, an allocation per
// frame per sample, with the GIL held).
//
// Each frame comes with its place on the C stack, so the sampler can put the
// native zones open on that thread (ZoneStack) between the right frames. The
// C stack grows down: an address lower than another is deeper (newer).
//   3.11     each _PyCFrame in the tstate->cframe chain is a local of one
//            _PyEval_EvalFrameDefault call; it runs the interpreter frames
//            from its current_frame back to the one marked is_entry.
//   3.12/13  each _PyEval_EvalFrameDefault call pushes an entry shim frame
//            (owner FRAME_OWNED_BY_CSTACK) that lives on the C stack; the
//            frames newer than a shim (up to the next one) are its own.
//   3.10     one CFrame (a local of _PyEval_EvalFrameDefault) per frame:
//            the tstate->cframe chain pairs with the frame chain.
//   3.9      no marker: every frame is reported outermost (c_position
//            unknown), so native zones land inside all Python frames.
// Version-specific layouts stay in this file (and compat::InterpreterFrame
// in cpython.hpp for 3.11).

#include "pycroscope/python/runtime/cpython.hpp"
#include "pycroscope/python/runtime/safe_read.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace pycroscope {
namespace python {
namespace frame_walk {

// A frame's C-stack position when it is not known: outermost.
constexpr std::uintptr_t unknown_position = ~static_cast<std::uintptr_t>(0);

struct RawFrame {
    PyCodeObject* code;         // borrowed: alive while the GIL is held
    int byte_offset;            // of the current instruction; -1 when not started
    std::uintptr_t c_position;  // C-stack address of the eval loop running it
    const void* id;             // identity of the frame (compared, never dereferenced)
    bool generator = false;     // owned by a generator (never "incomplete"); walk_raw only
};

namespace detail {

#if PY_VERSION_HEX >= 0x030B0000
// _Py_CODEUNIT and _PyCode_CODE went internal in 3.13: a code unit is two bytes.
using CodeUnit = std::uint16_t;
inline const CodeUnit* code_start(PyCodeObject* code) noexcept {
    return reinterpret_cast<const CodeUnit*>(code->co_code_adaptive);
}
// Code units from code's first one to instr, or -1: computed on addresses
// only, because code may come from a torn read and is validated later.
inline std::ptrdiff_t unchecked_code_unit_index(const void* code, const void* instr) noexcept {
    if (code == nullptr) {
        return -1;
    }
    const std::uintptr_t start = reinterpret_cast<std::uintptr_t>(code) + offsetof(PyCodeObject, co_code_adaptive);
    const std::uintptr_t at = reinterpret_cast<std::uintptr_t>(instr);
    return at < start ? -1 : static_cast<std::ptrdiff_t>((at - start) / sizeof(CodeUnit));
}
#endif

#if PY_VERSION_HEX >= 0x030C0000
constexpr char owned_by_cstack = 3; // FRAME_OWNED_BY_CSTACK (internal/pycore_frame.h)
constexpr char owned_by_generator = 1;
// Mirror of 3.12's and 3.13's _PyInterpreterFrame (internal/pycore_frame.h):
// only the first field changed its meaning (f_code, then f_executable).
struct InterpreterFrame {
    PyObject* f_code_or_executable;
    InterpreterFrame* previous;
    PyObject* f_funcobj;
    PyObject* f_globals;
    PyObject* f_builtins;
    PyObject* f_locals;
    PyFrameObject* frame_obj;
    CodeUnit* instr; // 3.12: prev_instr; 3.13: instr_ptr
    int stacktop;
    std::uint16_t return_offset;
    char owner;
};
#endif

#if PY_VERSION_HEX >= 0x030B0000
// Index (in code units) of the instruction a frame runs, from its
// instruction pointer; -1 when the frame has not started.
inline int code_unit_index(PyCodeObject* code, const void* instr_pointer) noexcept {
    const auto* instr = static_cast<const CodeUnit*>(instr_pointer);
    // 3.13's instr_ptr is the current instruction; 3.11's and 3.12's
    // prev_instr the one before the next: the same unit while it runs a call.
    const std::ptrdiff_t index = instr - code_start(code);
    return index < 0 ? -1 : static_cast<int>(index);
}
// Frames still being set up (_PyFrame_IsIncomplete): CPython hides them too.
inline bool incomplete(PyCodeObject* code, const void* instr, char owner, char generator_owner) noexcept {
    return owner != generator_owner &&
           static_cast<const CodeUnit*>(instr) < code_start(code) + code->_co_firsttraceable;
}
#endif

} // namespace detail

// Thread states of the interpreter; GIL held.
inline unsigned long thread_id(PyThreadState* tstate) noexcept { return tstate->thread_id; }

// Kernel thread id of a thread state, 0 where this version does not keep it
// (before 3.11: match thread_id() to pthread_self() instead).
inline unsigned long native_thread_id(PyThreadState* tstate) noexcept {
#if PY_VERSION_HEX >= 0x030B0000
    return tstate->native_thread_id;
#else
    (void)tstate;
    return 0;
#endif
}

// Identity of the frame the thread runs now (the RawFrame::id it would get);
// null when none. GIL held, on any thread state.
inline const void* current_frame_id(PyThreadState* tstate) noexcept {
#if PY_VERSION_HEX >= 0x030D0000
    return tstate->current_frame;
#elif PY_VERSION_HEX >= 0x030B0000
    return tstate->cframe != nullptr ? tstate->cframe->current_frame : nullptr;
#else
    return tstate->frame;
#endif
}

// Writes the Python frames of tstate, innermost first, into out (at most
// max; deeper frames are cut off at the outer end). Returns how many. GIL
// held; no allocation, no call into the interpreter.
inline std::size_t walk(PyThreadState* tstate, RawFrame* out, std::size_t max) noexcept {
    std::size_t n = 0;
#if PY_VERSION_HEX >= 0x030C0000
#if PY_VERSION_HEX >= 0x030D0000
    auto* frame = reinterpret_cast<detail::InterpreterFrame*>(tstate->current_frame);
#else
    auto* frame = tstate->cframe != nullptr
                      ? reinterpret_cast<detail::InterpreterFrame*>(tstate->cframe->current_frame)
                      : nullptr;
#endif
    std::size_t unplaced = 0; // frames newer than the last shim seen
    for (; frame != nullptr; frame = frame->previous) {
        if (frame->owner == detail::owned_by_cstack) {
            for (; unplaced < n; ++unplaced) {
                out[unplaced].c_position = reinterpret_cast<std::uintptr_t>(frame);
            }
            continue;
        }
        if (n == max) {
            break;
        }
        PyObject* executable = frame->f_code_or_executable;
        if (executable == nullptr || !PyCode_Check(executable)) {
            continue;
        }
        auto* code = reinterpret_cast<PyCodeObject*>(executable);
        if (detail::incomplete(code, frame->instr, frame->owner, detail::owned_by_generator)) {
            continue;
        }
        const int index = detail::code_unit_index(code, frame->instr);
        out[n++] = RawFrame{code, index < 0 ? -1 : index * static_cast<int>(sizeof(detail::CodeUnit)),
                            frame_walk::unknown_position, frame, false};
    }
#elif PY_VERSION_HEX >= 0x030B0000
    for (_PyCFrame* cframe = tstate->cframe; cframe != nullptr && n < max; cframe = cframe->previous) {
        auto* frame = reinterpret_cast<compat::InterpreterFrame*>(cframe->current_frame);
        for (; frame != nullptr && n < max; frame = frame->previous) {
            PyCodeObject* code = frame->f_code;
            if (!detail::incomplete(code, frame->prev_instr, frame->owner, 1 /* FRAME_OWNED_BY_GENERATOR */)) {
                const int index = detail::code_unit_index(code, frame->prev_instr);
                out[n++] = RawFrame{code, index < 0 ? -1 : index * static_cast<int>(sizeof(detail::CodeUnit)),
                                    reinterpret_cast<std::uintptr_t>(cframe), frame, false};
            }
            if (frame->is_entry) {
                break;
            }
        }
    }
#else
#if PY_VERSION_HEX >= 0x030A0000
    CFrame* cframe = tstate->cframe;
    const CFrame* root = &tstate->root_cframe;
#endif
    for (PyFrameObject* frame = tstate->frame; frame != nullptr && n < max; frame = frame->f_back) {
        std::uintptr_t position = unknown_position;
#if PY_VERSION_HEX >= 0x030A0000
        if (cframe != nullptr && cframe != root) {
            position = reinterpret_cast<std::uintptr_t>(cframe);
            cframe = cframe->previous;
        }
        const int offset = frame->f_lasti < 0 ? -1 : frame->f_lasti * 2; // instructions in 3.10
#else
        const int offset = frame->f_lasti; // bytes in 3.9
#endif
        out[n++] = RawFrame{frame->f_code, offset, position, frame, false};
    }
#endif
    return n;
}

// Without the GIL: the frames of tstate as raw pointers, innermost first,
// every read through read (safe_read.hpp: DirectReader for a thread reading
// its own chain from a signal handler, CheckedReader for another thread's).
// Code objects are not dereferenced: RawFrame::code may be dead or not a code
// object at all (a frame being pushed, a chain torn by a concurrent update);
// the caller validates it later (sample_drain.hpp) and drops what fails.
// Bounded: at most max frames and a fixed number of steps (a torn chain may
// loop). byte_offset is computed from the code pointer without reading it,
// and may be out of range for the same reasons.
template <class Reader>
inline std::size_t walk_raw(PyThreadState* tstate, RawFrame* out, std::size_t max, const Reader& read) noexcept {
    std::size_t n = 0;
    if (tstate == nullptr) {
        return 0;
    }
    std::size_t steps = 4 * max + 64;
#if PY_VERSION_HEX >= 0x030C0000
    void* first = nullptr;
#if PY_VERSION_HEX >= 0x030D0000
    if (!read(&tstate->current_frame, &first, sizeof first)) {
        return 0;
    }
#else
    _PyCFrame* cframe = nullptr;
    if (!read(&tstate->cframe, &cframe, sizeof cframe) || cframe == nullptr ||
        !read(&cframe->current_frame, &first, sizeof first)) {
        return 0;
    }
#endif
    std::size_t unplaced = 0;
    auto* address = static_cast<detail::InterpreterFrame*>(first);
    while (address != nullptr && steps-- > 0) {
        detail::InterpreterFrame frame;
        if (!read(address, &frame, sizeof frame)) {
            break;
        }
        if (frame.owner == detail::owned_by_cstack) {
            for (; unplaced < n; ++unplaced) {
                out[unplaced].c_position = reinterpret_cast<std::uintptr_t>(address);
            }
        } else {
            if (n == max) {
                break;
            }
            auto* code = reinterpret_cast<PyCodeObject*>(frame.f_code_or_executable);
            const std::ptrdiff_t index = detail::unchecked_code_unit_index(code, frame.instr);
            out[n++] = RawFrame{code,
                                index < 0 || index > (1 << 28) ? -1
                                                                 : static_cast<int>(index) * static_cast<int>(sizeof(detail::CodeUnit)),
                                unknown_position, address, frame.owner == detail::owned_by_generator};
        }
        if (frame.previous == address) {
            break;
        }
        address = frame.previous;
    }
#elif PY_VERSION_HEX >= 0x030B0000
    _PyCFrame* cframe_address = nullptr;
    if (!read(&tstate->cframe, &cframe_address, sizeof cframe_address)) {
        return 0;
    }
    while (cframe_address != nullptr && n < max && steps-- > 0) {
        _PyCFrame cframe;
        if (!read(cframe_address, &cframe, sizeof cframe)) {
            break;
        }
        auto* address = reinterpret_cast<compat::InterpreterFrame*>(cframe.current_frame);
        while (address != nullptr && n < max && steps-- > 0) {
            compat::InterpreterFrame frame;
            if (!read(address, &frame, offsetof(compat::InterpreterFrame, localsplus))) {
                break;
            }
            PyCodeObject* code = frame.f_code;
            const std::ptrdiff_t index = detail::unchecked_code_unit_index(code, frame.prev_instr);
            out[n++] = RawFrame{code,
                                index < 0 || index > (1 << 28) ? -1
                                                                 : static_cast<int>(index) * static_cast<int>(sizeof(_Py_CODEUNIT)),
                                reinterpret_cast<std::uintptr_t>(cframe_address), address, frame.owner == 1};
            // is_entry is a bool in a copy of memory that may be torn: read
            // its byte, since loading a bool that is neither 0 nor 1 is UB.
            unsigned char entry = 0;
            std::memcpy(&entry, reinterpret_cast<const unsigned char*>(&frame) + offsetof(compat::InterpreterFrame, is_entry),
                        sizeof entry);
            if (entry != 0 || frame.previous == address) {
                break;
            }
            address = frame.previous;
        }
        if (cframe.previous == cframe_address) {
            break;
        }
        cframe_address = cframe.previous;
    }
#else
    PyFrameObject* address = nullptr;
    if (!read(&tstate->frame, &address, sizeof address)) {
        return 0;
    }
#if PY_VERSION_HEX >= 0x030A0000
    CFrame* cframe = nullptr;
    if (!read(&tstate->cframe, &cframe, sizeof cframe)) {
        cframe = nullptr;
    }
    const CFrame* root = &tstate->root_cframe;
#endif
    while (address != nullptr && n < max && steps-- > 0) {
        PyFrameObject frame;
        if (!read(address, &frame, sizeof frame)) {
            break;
        }
        std::uintptr_t position = unknown_position;
#if PY_VERSION_HEX >= 0x030A0000
        if (cframe != nullptr && cframe != root) {
            position = reinterpret_cast<std::uintptr_t>(cframe);
            CFrame* previous = nullptr;
            cframe = read(&cframe->previous, &previous, sizeof previous) ? previous : nullptr;
        }
        const int offset = frame.f_lasti < 0 ? -1 : frame.f_lasti * 2;
#else
        const int offset = frame.f_lasti;
#endif
        out[n++] = RawFrame{frame.f_code, offset, position, address, frame.f_gen != nullptr};
        if (frame.f_back == address) {
            break;
        }
        address = frame.f_back;
    }
#endif
    return n;
}

// Drain side, GIL held, code already known to be a live code object: the
// frame's byte offset if it is in range and the frame has started (CPython
// hides frames still being set up), else -2 (drop the frame).
inline int checked_offset(PyCodeObject* code, const RawFrame& frame) noexcept {
#if PY_VERSION_HEX >= 0x030B0000
    const Py_ssize_t size = Py_SIZE(code) * static_cast<Py_ssize_t>(sizeof(detail::CodeUnit));
    if (frame.byte_offset < 0 || frame.byte_offset >= size) {
        return -2;
    }
    if (!frame.generator &&
        frame.byte_offset < code->_co_firsttraceable * static_cast<int>(sizeof(detail::CodeUnit))) {
        return -2; // _PyFrame_IsIncomplete
    }
    return frame.byte_offset;
#else
    const Py_ssize_t size = PyBytes_Check(code->co_code) ? PyBytes_GET_SIZE(code->co_code) : 0;
    return frame.byte_offset >= size ? -2 : frame.byte_offset; // -1: not started, reported at its first line
#endif
}

// Line of a frame's current instruction (PyCode_Addr2Line: no allocation,
// but linear in the size of the line table: callers cache it).
inline int line_of(PyCodeObject* code, int byte_offset) noexcept {
    if (byte_offset < 0) {
        return code->co_firstlineno;
    }
    const int line = PyCode_Addr2Line(code, byte_offset);
    return line < 0 ? code->co_firstlineno : line;
}

} // namespace frame_walk
} // namespace python
} // namespace pycroscope
