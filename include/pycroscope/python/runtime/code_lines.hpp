#pragma once
// Per code object: one interned LocationKind::python_line SourceLocation per
// code unit, so an allocation hook turns (code, unit) into its line with two
// loads instead of a PyCode_Addr2Line call. The table hangs off its own
// co_extra slot (separate from the tracer's, see code_registry.hpp) and is
// freed with its code object; the interned locations outlive both.
//
// line_location() and peek_line_table() read only (any thread).
// build_line_table() runs inside the MEM and OBJ allocation hooks (GIL held),
// under their reentrancy guard: it reads the code object and its names
// without a call into libpython, and attaches through attach_code_extra()
// (code_extra.hpp), whose one allocation passes through the guard.
// line_table_index() requests the slot on first use: never from inside a
// realloc (see code_extra.hpp); MemoryCollector::start() asks up front.

#include "pycroscope/core/name_table.hpp"
#include "pycroscope/python/runtime/code_extra.hpp"
#include "pycroscope/python/runtime/code_registry.hpp"
#include "pycroscope/python/runtime/cpython.hpp"
#include "pycroscope/python/runtime/current_frame.hpp"

#include <atomic>
#include <cstdint>
#include <new>
#include <string>

namespace pycroscope {
namespace python {

struct CodeLineTable {
    Py_ssize_t units;
    // lines[unit] for 0 <= unit < units; lines[units]: the first line of the
    // function, for a frame still being set up.
    const SourceLocation* lines[1];
};

namespace detail {

// The co_extra slot of the line tables in the interpreter that asked first.
struct LineTableSlot {
    std::atomic<PyInterpreterState*> interpreter{nullptr};
    std::atomic<Py_ssize_t> index{-1};
};
inline LineTableSlot line_table_slot{};

inline void free_line_table(void* table) { ::operator delete(table); }

// Named "<file name>:<line>": in a flame graph it sits under its function.
inline const SourceLocation* intern_line(const std::string& function, const std::string& file, int line) {
    const std::uint32_t number = line < 0 ? 0u : static_cast<std::uint32_t>(line);
    const std::size_t slash = file.find_last_of('/');
    std::string name = slash == std::string::npos ? file : file.substr(slash + 1);
    name.append(":").append(std::to_string(number));
    return names().intern(LocationKind::python_line, name, function, file, number);
}

} // namespace detail

// The slot index for interp, requested on first use when may_request (GIL
// held). -1 when this interpreter is not the one the slot belongs to, none is
// left, or none was requested yet.
inline Py_ssize_t line_table_index(PyInterpreterState* interp, bool may_request = true) noexcept {
    detail::LineTableSlot& slot = detail::line_table_slot;
    PyInterpreterState* owner = slot.interpreter.load(std::memory_order_acquire);
    if (owner == interp) {
        return slot.index.load(std::memory_order_relaxed);
    }
    if (owner != nullptr || !may_request) {
        return -1;
    }
#if PY_VERSION_HEX >= 0x030C0000
    const Py_ssize_t index = PyUnstable_Eval_RequestCodeExtraIndex(&detail::free_line_table);
#else
    const Py_ssize_t index = _PyEval_RequestCodeExtraIndex(&detail::free_line_table);
#endif
    slot.index.store(index, std::memory_order_relaxed);
    slot.interpreter.store(interp, std::memory_order_release);
    return index;
}

// The table of code, or null when not built yet. Any thread.
inline const CodeLineTable* peek_line_table(PyCodeObject* code) noexcept {
    const Py_ssize_t index = detail::line_table_slot.index.load(std::memory_order_relaxed);
    if (index < 0) {
        return nullptr;
    }
    return static_cast<const CodeLineTable*>(compat::load_code_extra(code, index));
}

inline const SourceLocation* line_location(const CodeLineTable& table, Py_ssize_t unit) noexcept {
    return table.lines[(unit >= 0 && unit < table.units) ? unit : table.units];
}

// Builds and attaches the table of code (GIL held). Null on failure (no slot,
// out of memory). Calls into libpython only to allocate co_extra's block.
inline const CodeLineTable* build_line_table(PyCodeObject* code, Py_ssize_t index) noexcept {
    if (index < 0) {
        return nullptr;
    }
    const Py_ssize_t units = compat::code_units(code);
    if (units < 0) {
        return nullptr;
    }
    void* memory = ::operator new(sizeof(CodeLineTable) + static_cast<std::size_t>(units) * sizeof(SourceLocation*),
                                  std::nothrow);
    if (memory == nullptr) {
        return nullptr;
    }
    auto* table = static_cast<CodeLineTable*>(memory);
    table->units = units;
    try {
        const std::string function = detail::utf8(compat::qualified_name(code), "<unknown>");
        const std::string file = detail::utf8(code->co_filename, "<unknown>");
        int previous_line = -2;
        const SourceLocation* previous = nullptr;
        compat::LineWalker walker(code);
        for (Py_ssize_t unit = 0; unit <= units; ++unit) {
            const int line = unit < units ? walker.line_at(static_cast<int>(unit * 2)) : code->co_firstlineno;
            if (line != previous_line || previous == nullptr) {
                previous = detail::intern_line(function, file, line);
                previous_line = line;
            }
            table->lines[unit] = previous;
        }
    } catch (...) {
        ::operator delete(memory);
        return nullptr;
    }
    if (!compat::attach_code_extra(code, index, table)) {
        ::operator delete(memory);
        return peek_line_table(code); // attached meanwhile by a nested call, or null
    }
    return table;
}

} // namespace python
} // namespace pycroscope
