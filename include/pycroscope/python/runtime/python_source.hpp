#pragma once
// Python source run by the SDK itself (calibration probes, the source pass),
// in a namespace of its own so that nothing of the profiled program's
// __main__ is touched. GIL held.

#include "pycroscope/python/runtime/cpython.hpp"

#include <string>

namespace pycroscope {
namespace python {

// The pending Python exception as text ("Python error" when it has none),
// cleared.
inline std::string take_python_error() {
    PyObject *type = nullptr, *value = nullptr, *traceback = nullptr;
    PyErr_Fetch(&type, &value, &traceback);
    std::string text = "Python error";
    if (value != nullptr) {
        if (PyObject* str = PyObject_Str(value)) {
            if (const char* utf8 = PyUnicode_AsUTF8(str)) {
                text = utf8;
            }
            Py_DECREF(str);
        }
    }
    PyErr_Clear();
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
    return text;
}

// Compiles source as file_name and runs it in a fresh namespace holding only
// __builtins__. Returns that namespace (a new reference), or nullptr with the
// exception pending.
inline PyObject* run_in_fresh_namespace(const char* source, const char* file_name) {
    PyObject* code = Py_CompileString(source, file_name, Py_file_input);
    if (code == nullptr) {
        return nullptr;
    }
    PyObject* globals = PyDict_New();
    if (globals == nullptr || PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins()) != 0) {
        Py_DECREF(code);
        Py_XDECREF(globals);
        return nullptr;
    }
    PyObject* result = PyEval_EvalCode(code, globals, globals);
    Py_DECREF(code);
    if (result == nullptr) {
        Py_DECREF(globals);
        return nullptr;
    }
    Py_DECREF(result);
    return globals;
}

} // namespace python
} // namespace pycroscope
