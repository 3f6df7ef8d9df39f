#pragma once
// Names for Python exception types, interned once per type: "ValueError",
// "json.decoder.JSONDecodeError". A small direct-mapped cache makes a repeat
// lookup a few loads and one short string compare (which also catches a new
// type at a freed type's address). GIL held.

#include "pycroscope/core/name_table.hpp"
#include "pycroscope/python/runtime/code_registry.hpp"
#include "pycroscope/python/runtime/cpython.hpp"

#include <cstdint>
#include <cstring>
#include <string>

namespace pycroscope {
namespace python {

namespace detail {
struct RecentExceptionType {
    const PyTypeObject* type;
    const SourceLocation* location; // function holds the type's tp_name
};
inline RecentExceptionType recent_exception_types[64]{};

inline std::string exception_type_name(PyTypeObject* type) {
    PendingExceptionGuard guard;
    PyObject* object = reinterpret_cast<PyObject*>(type);
    PyObject* qualname = PyObject_GetAttrString(object, "__qualname__");
    PyObject* module = PyObject_GetAttrString(object, "__module__");
    PyErr_Clear();
    std::string name = utf8(qualname, type->tp_name);
    const std::string module_name = utf8(module, "builtins");
    Py_XDECREF(qualname);
    Py_XDECREF(module);
    return module_name == "builtins" ? name : module_name + "." + name;
}
} // namespace detail

inline const SourceLocation* exception_type_location(PyTypeObject* type) {
    detail::RecentExceptionType& recent =
        detail::recent_exception_types[(reinterpret_cast<std::uintptr_t>(type) >> 4) & 63];
    if (recent.type == type && recent.location != nullptr && std::strcmp(recent.location->function, type->tp_name) == 0) {
        return recent.location;
    }
    const SourceLocation* location =
        names().intern(LocationKind::exception_type, detail::exception_type_name(type), type->tp_name, "", 0);
    recent = detail::RecentExceptionType{type, location};
    return location;
}

} // namespace python
} // namespace pycroscope
