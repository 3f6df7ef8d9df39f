#pragma once
// Subscript sites kept generic for the eval-frame backend on CPython 3.11.0
// to 3.11.3. There a subscript specialised to BINARY_SUBSCR_GETITEM pushes
// the __getitem__ frame itself, inside the running _PyEval_EvalFrameDefault,
// past the PEP 523 hook: the backend would miss those calls (3.11.4 added the
// missing check, python/cpython gh-104405). The generic BINARY_SUBSCR calls
// __getitem__ through _PyEval_Vector, that is through the hook, so while the
// backend runs no site is left able to become BINARY_SUBSCR_GETITEM:
//  - a Python frame that starts while its caller's current instruction is an
//    adaptive or specialised subscript came from that site: the site becomes
//    the base BINARY_SUBSCR. That instruction skips its inline cache, has no
//    miss path and is never quickened again (quickening runs once per code
//    object), so the site stays generic; other sites keep their specialisations.
//  - a code object seen for the first time: a site already specialised for
//    __getitem__ becomes the base instruction; a site whose adaptive counter
//    would let it specialise at its next run (every site right after
//    quickening) first runs generically for a long while, so its first
//    __getitem__ call meets the hook, which then makes it generic for good.
//  - at start, the code of every running frame counts as seen for the first time.
// Not covered, rare: a site specialised for __getitem__ before the session,
// in a code object an earlier session already named and that is not running
// at start; a site that ran thousands of times without a Python __getitem__
// and meets its first one at the very run it tries to specialise. Their
// calls reach the hook again once the specialisation misses.

#include "pycroscope/core/compiler.hpp"
#include "pycroscope/python/runtime/cpython.hpp"

#include <cstdint>

namespace pycroscope {
namespace python {
namespace subscript_sites {

#if PYCROSCOPE_HAS_EVAL_FRAME_BACKEND && PY_VERSION_HEX >= 0x030B0000
// 3.11's opcode numbers (Include/opcode.h; fixed within a minor release).
// Not included: its macros (CALL, CACHE, ...) would leak into every user.
constexpr std::uint8_t binary_subscr = 25;
constexpr std::uint8_t binary_subscr_adaptive = 17;
constexpr std::uint8_t binary_subscr_getitem = 19;
constexpr std::uint8_t binary_subscr_tuple_int = 21; // 17..21: the adaptive form and its specialisations
// An adaptive counter (value << 4 | backoff) of 4095 runs before the next try to specialise.
constexpr std::uint16_t generic_runs_counter = 0xFFF0;

// Inline cache entries after each 3.11 opcode, specialised forms included
// (_PyOpcode_Caches by _PyOpcode_Deopt, which libpython does not export; the
// same on every 3.11 release), to step over cache data when scanning code.
constexpr std::uint8_t cache_entries[256] = {
    0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 1, 4, 4, 4, 4, 4, 4, 4, 4, 4, 2, 2, 2, 2, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 0, 0, 0, 5, 5, 0, 0, 0, 0, 0, 0, 5, 10, 10, 10, 10, 1, 0, 10, 10,
    1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 4,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 2, 0, 0, 0, 0, 0, 1, 0, 0, 5, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 0, 0, 0, 4, 4,
    10, 0, 0, 0, 0, 0, 1, 0, 1, 1, 1, 4, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

inline bool guard_active = false; // this interpreter lacks the check and the eval-frame backend runs

inline bool is_subscript_family(std::uint8_t op) noexcept {
    return op >= binary_subscr_adaptive && op <= binary_subscr_tuple_int;
}

// The running frame's current instruction: when it is an adaptive or
// specialised subscript, a Python frame starting now is its __getitem__
// (or code that __getitem__ runs through C): keep the site generic.
PYCROSCOPE_FORCE_INLINE void on_frame_start(PyThreadState* tstate) noexcept {
    const auto* caller = reinterpret_cast<const compat::InterpreterFrame*>(tstate->cframe->current_frame);
    if (caller == nullptr) {
        return;
    }
    _Py_CODEUNIT* instruction = caller->prev_instr;
    if (PYCROSCOPE_UNLIKELY(is_subscript_family(static_cast<std::uint8_t>(_Py_OPCODE(*instruction)))) &&
        instruction >= _PyCode_CODE(caller->f_code)) {
        _Py_SET_OPCODE(*instruction, binary_subscr);
    }
}

// A code object met for the first time (GIL held).
inline void scan_code(PyCodeObject* code) noexcept {
    _Py_CODEUNIT* instructions = _PyCode_CODE(code);
    const Py_ssize_t size = Py_SIZE(code);
    const bool quickened = code->co_warmup == 0;
    for (Py_ssize_t i = 0; i < size; i += 1 + cache_entries[_Py_OPCODE(instructions[i])]) {
        const auto op = static_cast<std::uint8_t>(_Py_OPCODE(instructions[i]));
        if (op == binary_subscr_getitem) {
            _Py_SET_OPCODE(instructions[i], binary_subscr);
        } else if ((op == binary_subscr_adaptive || (op == binary_subscr && !quickened)) && i + 1 < size &&
                   instructions[i + 1] < generic_runs_counter) {
            // Not yet quickened: quickening turns the site adaptive and keeps
            // the counter (it expects zero there, and specialises at once).
            instructions[i + 1] = generic_runs_counter;
        }
    }
}

// True on the releases that lack the check: 3.11.0 to 3.11.3, by the
// library actually loaded (Py_Version), not the headers built against.
inline bool interpreter_needs_guard() noexcept { return Py_Version < 0x030B0400; }

// The eval-frame backend starts (GIL held): arm the guard and scan the
// code of every frame already running on any thread of this interpreter.
inline void start(PyInterpreterState* interp) {
    guard_active = interpreter_needs_guard();
    if (!guard_active) {
        return;
    }
    for (PyThreadState* tstate = PyInterpreterState_ThreadHead(interp); tstate != nullptr;
         tstate = PyThreadState_Next(tstate)) {
        for (const auto* frame = reinterpret_cast<const compat::InterpreterFrame*>(tstate->cframe->current_frame);
             frame != nullptr; frame = frame->previous) {
            scan_code(frame->f_code);
        }
    }
}
inline void stop() noexcept { guard_active = false; }
#endif

} // namespace subscript_sites
} // namespace python
} // namespace pycroscope
