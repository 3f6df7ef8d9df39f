#pragma once
// Names for Python code objects and C callables, interned once. A code
// object's SourceLocation is cached in its co_extra slot (PEP 523, written
// through code_extra.hpp), so the lookup per event is two loads and survives
// address reuse: a new code object at an old address has an empty slot. The
// interned name outlives the code. Every function here runs with the GIL held.

#include "pycroscope/core/compiler.hpp"
#include "pycroscope/core/name_table.hpp"
#include "pycroscope/python/runtime/code_extra.hpp"
#include "pycroscope/python/runtime/cpython.hpp"
#include "pycroscope/python/runtime/python_text.hpp"
#include "pycroscope/python/runtime/watched_functions.hpp"

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace pycroscope {
namespace python {

namespace detail {

// The UTF-8 text of a str, read from its own storage: no call into
// libpython, so no allocation (PyUnicode_AsUTF8 caches an encoded copy in the
// object) and no exception. The allocation hooks name code objects with it.
// A name keeps its identity as python_text() gives it: a lone surrogate is
// written "\udcff" (Python's backslashreplace) and a NUL "\0".
// fallback for what is not a ready str.
inline std::string utf8(PyObject* text, const char* fallback) {
    if (text == nullptr || !PyUnicode_Check(text) || !PyUnicode_IS_READY(text)) {
        return fallback;
    }
    const Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    const void* data = PyUnicode_DATA(text);
    if (PyUnicode_IS_ASCII(text) && std::memchr(data, '\0', static_cast<std::size_t>(length)) == nullptr) {
        return std::string(static_cast<const char*>(data), static_cast<std::size_t>(length));
    }
    const int kind = PyUnicode_KIND(text);
    std::string out;
    out.reserve(static_cast<std::size_t>(length) * 2);
    for (Py_ssize_t i = 0; i < length; ++i) {
        const Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c == 0) {
            out += "\\0";
        } else if (c < 0x80) {
            out += static_cast<char>(c);
        } else if (c < 0x800) {
            out += static_cast<char>(0xC0 | (c >> 6));
            out += static_cast<char>(0x80 | (c & 0x3F));
        } else if (c >= 0xD800 && c <= 0xDFFF) {
            static const char hex[] = "0123456789abcdef";
            const char escaped[] = {'\\', 'u', hex[(c >> 12) & 0xF], hex[(c >> 8) & 0xF], hex[(c >> 4) & 0xF],
                                    hex[c & 0xF]};
            out.append(escaped, sizeof escaped);
        } else if (c < 0x10000) {
            out += static_cast<char>(0xE0 | (c >> 12));
            out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (c & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (c >> 18));
            out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (c & 0x3F));
        }
    }
    return out;
}

struct CodeExtraSlot {
    PyInterpreterState* interpreter = nullptr;
    Py_ssize_t index = -1;
};
// Constant-initialised: read on every event without a guard.
inline CodeExtraSlot code_extra_slot_value{};
inline CodeExtraSlot& code_extra_slot() { return code_extra_slot_value; }

struct CallableKey {
    const void* method;
    const void* owner;
    bool operator==(const CallableKey& other) const noexcept {
        return method == other.method && owner == other.owner;
    }
};
struct CallableKeyHash {
    std::size_t operator()(const CallableKey& key) const noexcept {
        return std::hash<const void*>()(key.method) * 31u ^ std::hash<const void*>()(key.owner);
    }
};
inline std::unordered_map<CallableKey, const SourceLocation*, CallableKeyHash>& callable_cache() {
    static auto* cache = new std::unordered_map<CallableKey, const SourceLocation*, CallableKeyHash>();
    return *cache;
}

// A direct-mapped cache in front of callable_cache(): two C events per C call
// find their name in a few loads instead of a hash-map lookup. GIL held.
struct RecentCallable {
    const void* method;
    const void* owner;
    const SourceLocation* location;
};
inline RecentCallable recent_callables[256]{};
inline RecentCallable& recent_callable(const void* method, const void* owner) noexcept {
    const auto bits = reinterpret_cast<std::uintptr_t>(method) ^ (reinterpret_cast<std::uintptr_t>(owner) >> 3);
    return recent_callables[(bits >> 4) & 255];
}

// Interning may call into the C-API while an exception is propagating
// (a RETURN event of a frame that raised): park it and put it back.
class PendingExceptionGuard {
public:
    PendingExceptionGuard() noexcept { PyErr_Fetch(&type_, &value_, &traceback_); }
    ~PendingExceptionGuard() { PyErr_Restore(type_, value_, traceback_); }
    PendingExceptionGuard(const PendingExceptionGuard&) = delete;
    PendingExceptionGuard& operator=(const PendingExceptionGuard&) = delete;

private:
    PyObject* type_ = nullptr;
    PyObject* value_ = nullptr;
    PyObject* traceback_ = nullptr;
};

} // namespace detail

// The co_extra index of the running interpreter; requested once per interpreter.
inline Py_ssize_t code_extra_index() {
    detail::CodeExtraSlot& slot = detail::code_extra_slot();
    PyInterpreterState* interpreter = PyInterpreterState_Get();
    if (slot.interpreter != interpreter) {
        slot.index = compat::request_code_extra_index();
        slot.interpreter = interpreter;
    }
    return slot.index;
}

inline const SourceLocation* intern_code(PyCodeObject* code) {
    const std::string name = detail::utf8(compat::qualified_name(code), "<unknown>");
    const std::string file = detail::utf8(code->co_filename, "<unknown>");
    return names().intern(LocationKind::python_function, name, name, file,
                          static_cast<std::uint32_t>(code->co_firstlineno));
}

namespace detail {
// code_location()'s first sight of a code object: intern it, keep it in
// co_extra. attach_code_extra(), not _PyCode_SetExtra: its allocation may
// re-enter the memory hooks, which attach line tables to this same code.
// code_first_seen, when set, is also told (GIL held): a tracer backend that
// must inspect a code object before it runs much (tracer/subscript_sites.hpp).
inline void (*code_first_seen)(PyCodeObject*) noexcept = nullptr;

PYCROSCOPE_NOINLINE inline const SourceLocation* code_location_miss(PyCodeObject* code, Py_ssize_t index) {
    if (code_first_seen != nullptr) {
        code_first_seen(code);
    }
    const SourceLocation* location = intern_code(code);
    consider_watching(location);
    compat::attach_code_extra(code, index, const_cast<SourceLocation*>(location));
    return location;
}
} // namespace detail

// The location of a code object (GIL held). Never fails: without a co_extra
// slot it interns every time, which is correct, only slower. The hit is
// inlined into the hooks (a call there cost as much as the lookup).
PYCROSCOPE_FORCE_INLINE const SourceLocation* code_location(PyCodeObject* code) {
    const Py_ssize_t index = detail::code_extra_slot_value.index;
    if (PYCROSCOPE_LIKELY(index >= 0)) {
        if (void* extra = compat::peek_code_extra(code, index)) {
            return static_cast<const SourceLocation*>(extra);
        }
    }
    return detail::code_location_miss(code, index);
}

// A name for a C callable as the profile hook reports it: "builtins.len",
// "list.append", "time.sleep".
inline const SourceLocation* callable_location(PyObject* callable) {
    const void* method = nullptr;
    const void* owner = nullptr;
    if (PyCFunction_Check(callable)) {
        auto* function = reinterpret_cast<PyCFunctionObject*>(callable);
        method = function->m_ml;
        PyObject* self = function->m_self;
        owner = (self == nullptr || PyModule_Check(self)) ? static_cast<const void*>(self)
                                                          : static_cast<const void*>(Py_TYPE(self));
    } else {
        method = Py_TYPE(callable);
    }
    detail::RecentCallable& recent = detail::recent_callable(method, owner);
    if (recent.method == method && recent.owner == owner && recent.location != nullptr) {
        return recent.location;
    }
    auto& cache = detail::callable_cache();
    const detail::CallableKey key{method, owner};
    auto found = cache.find(key);
    if (found != cache.end()) {
        recent = detail::RecentCallable{method, owner, found->second};
        return found->second;
    }
    detail::PendingExceptionGuard guard;
    std::string name;
    if (PyCFunction_Check(callable)) {
        auto* function = reinterpret_cast<PyCFunctionObject*>(callable);
        PyObject* self = function->m_self;
        if (self != nullptr && PyModule_Check(self)) {
            const char* module = PyModule_GetName(self);
            if (module == nullptr) {
                PyErr_Clear();
                module = "?";
            }
            name = std::string(module) + "." + function->m_ml->ml_name;
        } else if (self != nullptr) {
            name = std::string(Py_TYPE(self)->tp_name) + "." + function->m_ml->ml_name;
        } else {
            name = function->m_ml->ml_name;
        }
    } else {
        name = std::string("<") + Py_TYPE(callable)->tp_name + ">";
    }
    const SourceLocation* location = names().intern(LocationKind::c_function, name, name, "<built-in>", 0);
    cache.emplace(key, location);
    recent = detail::RecentCallable{method, owner, location};
    return location;
}

} // namespace python
} // namespace pycroscope
