#pragma once
// A Python str as the UTF-8 text of a name, keeping its identity. Python names
// may hold what UTF-8 C strings cannot: lone surrogates (a function named
// '\udcff' made by exec, a path the file-system encoding could not decode,
// 'caf\udce9.py') and NUL characters (SourceLocation holds const char*).
// Valid text without NUL comes back as it is, without a copy; otherwise the
// surrogates are written as Python's backslashreplace does ("\udcff") and
// each NUL as "\0", so distinct names stay distinct and nothing is cut.
// GIL held.

#include "pycroscope/python/runtime/cpython.hpp"

#include <cstring>
#include <string>
#include <string_view>

namespace pycroscope {
namespace python {

// The text of str value; storage holds it when it had to be escaped. Fails
// (null data, Python error set) only when value is not a str or memory runs out.
inline bool python_text(PyObject* value, std::string_view& text, std::string& storage) {
    Py_ssize_t size = 0;
    const char* data = PyUnicode_AsUTF8AndSize(value, &size);
    if (data == nullptr) {
        if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
            return false;
        }
        PyErr_Clear();
        PyObject* bytes = PyUnicode_AsEncodedString(value, "utf-8", "backslashreplace");
        if (bytes == nullptr) {
            return false;
        }
        storage.assign(PyBytes_AS_STRING(bytes), static_cast<std::size_t>(PyBytes_GET_SIZE(bytes)));
        Py_DECREF(bytes);
    } else if (std::memchr(data, '\0', static_cast<std::size_t>(size)) != nullptr) {
        storage.assign(data, static_cast<std::size_t>(size));
    } else {
        text = std::string_view(data, static_cast<std::size_t>(size));
        return true;
    }
    std::string escaped;
    escaped.reserve(storage.size());
    for (const char c : storage) {
        if (c == '\0') {
            escaped += "\\0";
        } else {
            escaped += c;
        }
    }
    storage.swap(escaped);
    text = storage;
    return true;
}

} // namespace python
} // namespace pycroscope
