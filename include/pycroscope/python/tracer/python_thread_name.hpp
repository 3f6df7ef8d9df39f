#pragma once
// A thread started by the threading module takes its Python name
// (threading.Thread(name="worker")) as its name in every output, as if it
// had called pycroscope.set_thread_name(). The tracer looks once per thread
// and session, when it first sees the thread: the outermost frame of such a
// thread is threading.Thread._bootstrap(self), whose self is the Thread.
// A name the program gave through set_thread_name() is kept. Later renames
// (thread.name = ...) are not followed.

#include "pycroscope/core/thread_registry.hpp"
#include "pycroscope/python/runtime/code_registry.hpp"
#include "pycroscope/python/runtime/cpython.hpp"

#include <cstring>
#include <string>

namespace pycroscope {
namespace python {
namespace detail {

// threading.Thread._bootstrap's code object, once met (GIL held).
inline PyCodeObject* thread_bootstrap_code = nullptr;

inline bool ends_with(const std::string& text, const char* suffix) {
    const std::size_t n = std::strlen(suffix);
    return text.size() >= n && text.compare(text.size() - n, n, suffix) == 0;
}

inline bool is_thread_bootstrap(PyCodeObject* code) {
    if (code == thread_bootstrap_code) {
        return true;
    }
    if (utf8(code->co_name, "") != "_bootstrap" || code->co_argcount != 1) {
        return false;
    }
    const std::string file = utf8(code->co_filename, "");
    if (!ends_with(file, "/threading.py") && file != "threading.py") {
        return false;
    }
    thread_bootstrap_code = code;
    return true;
}

// thread: the _bootstrap frame's self (borrowed), or null.
inline void adopt_python_thread_name(PyObject* thread) {
    if (thread == nullptr || pycroscope::detail::tls_thread_name[0] != '\0') {
        return;
    }
    PendingExceptionGuard pending;
    PyObject* name = PyObject_GetAttrString(thread, "_name");
    if (name == nullptr) {
        PyErr_Clear();
        return;
    }
    if (PyUnicode_Check(name)) {
        const std::string text = utf8(name, "");
        if (!text.empty()) {
            set_thread_name(text);
        }
    }
    Py_DECREF(name);
}

// The first local (self) of a running frame, as a new reference.
inline PyObject* first_local(PyFrameObject* frame) {
    if (PyObject* const* locals = compat::frame_fast_locals(frame)) {
        Py_XINCREF(locals[0]);
        return locals[0];
    }
#if PY_VERSION_HEX >= 0x030C0000
    PyObject* self = PyFrame_GetVarString(frame, "self");
    if (self == nullptr) {
        PyErr_Clear();
    }
    return self;
#else
    return nullptr;
#endif
}

// frame: the outermost frame of the thread the tracer meets for the first time.
inline void name_thread_from_outermost(PyFrameObject* frame) {
    if (frame == nullptr || !is_thread_bootstrap(compat::frame_code(frame))) {
        return;
    }
    PendingExceptionGuard pending;
    PyObject* self = first_local(frame);
    adopt_python_thread_name(self);
    Py_XDECREF(self);
}

} // namespace detail
} // namespace python
} // namespace pycroscope
