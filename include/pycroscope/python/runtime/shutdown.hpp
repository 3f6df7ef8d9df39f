#pragma once
// Stopping a session while the interpreter is still alive.
//
// A host that lets CPython run to the end (Py_RunMain, or a script that calls
// sys.exit) must stop its session before Py_FinalizeEx tears the interpreter
// down: the tracer's hooks come off while every thread state still exists,
// and the outputs are written while Python objects can still be named.
// stop_at_exit() registers the stop function with Python's `atexit` module:
//
//     Py_InitializeFromConfig(&config);
//     session.start();                           // GIL held
//     pycroscope::python::stop_session_at_exit(session);
//     return Py_RunMain();                       // runs the script, then finalizes
//
// When it runs: Py_FinalizeEx first joins the non-daemon threads
// (threading._shutdown), then calls the atexit handlers in LIFO order, and
// only then starts tearing modules down. Register early (right after start):
// handlers the script registers later run before ours, so they are still
// profiled, and so are the threads joined before them.
//
// It also runs when the process exits through sys.exit() or an uncaught
// exception, but not through os._exit() or a fatal signal.
//
// fork: a child made by os.fork() inherits the registration; the callback
// does nothing in a process other than the one that registered it, so a child
// never stops (or overwrites the outputs of) its parent's session.

#include "pycroscope/python/runtime/cpython.hpp"

#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace pycroscope {
namespace python {
namespace detail {

constexpr const char* stop_capsule_name = "pycroscope.stop_at_exit";

struct AtExitStop {
    std::function<void()> stop;
    long long pid = 0;
};

inline long long process_id() noexcept {
#if defined(__unix__) || defined(__APPLE__)
    return static_cast<long long>(::getpid());
#else
    return 0;
#endif
}

inline void delete_stop_capsule(PyObject* capsule) {
    delete static_cast<AtExitStop*>(PyCapsule_GetPointer(capsule, stop_capsule_name));
}

// The atexit callback: runs the stop function once, in the registering process.
inline PyObject* run_stop_at_exit(PyObject* capsule, PyObject*) {
    auto* entry = static_cast<AtExitStop*>(PyCapsule_GetPointer(capsule, stop_capsule_name));
    if (entry == nullptr) {
        return nullptr;
    }
    if (entry->pid != process_id() || !entry->stop) {
        Py_RETURN_NONE; // a fork child, or already ran
    }
    std::function<void()> stop = std::move(entry->stop);
    entry->stop = nullptr;
    try {
        stop();
    } catch (const std::exception& error) {
        // atexit prints it as "Exception ignored in atexit callback".
        PyErr_SetString(PyExc_RuntimeError, error.what());
        return nullptr;
    } catch (...) {
        PyErr_SetString(PyExc_RuntimeError, "pycroscope: unknown C++ exception while stopping at exit");
        return nullptr;
    }
    Py_RETURN_NONE;
}

inline PyMethodDef* stop_at_exit_method() {
    static PyMethodDef method = {
        "pycroscope_stop_at_exit",
        reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&run_stop_at_exit)),
        METH_NOARGS,
        "Stops the pycroscope session registered by the host (atexit handler).",
    };
    return &method;
}

// The message of the pending Python exception (cleared), for a C++ exception.
inline std::string fetch_python_error() {
    PyObject* type = nullptr;
    PyObject* value = nullptr;
    PyObject* traceback = nullptr;
    PyErr_Fetch(&type, &value, &traceback);
    std::string message = "unknown error";
    if (value != nullptr || type != nullptr) {
        PyObject* text = PyObject_Str(value != nullptr ? value : type);
        if (text != nullptr) {
            const char* utf8 = PyUnicode_AsUTF8(text);
            if (utf8 != nullptr) {
                message = utf8;
            }
            Py_DECREF(text);
        }
        PyErr_Clear();
    }
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
    return message;
}

} // namespace detail

// Registers stop to run from Python's atexit handlers, once, in this process.
// Needs an initialized interpreter and the GIL. Exceptions thrown by stop are
// reported by atexit ("Exception ignored in atexit callback") and go no
// further. Throws std::runtime_error when the registration fails.
inline void stop_at_exit(std::function<void()> stop) {
    if (!Py_IsInitialized() || !PyGILState_Check()) {
        throw std::runtime_error("pycroscope: stop_at_exit() needs an initialized interpreter and the GIL");
    }
    auto entry = std::make_unique<detail::AtExitStop>();
    entry->stop = std::move(stop);
    entry->pid = detail::process_id();
    PyObject* capsule = PyCapsule_New(entry.get(), detail::stop_capsule_name, &detail::delete_stop_capsule);
    if (capsule == nullptr) {
        throw std::runtime_error("pycroscope: stop_at_exit(): " + detail::fetch_python_error());
    }
    entry.release(); // owned by the capsule from here
    PyObject* callback = PyCFunction_New(detail::stop_at_exit_method(), capsule);
    Py_DECREF(capsule);
    if (callback == nullptr) {
        throw std::runtime_error("pycroscope: stop_at_exit(): " + detail::fetch_python_error());
    }
    PyObject* atexit = PyImport_ImportModule("atexit");
    PyObject* result = atexit != nullptr ? PyObject_CallMethod(atexit, "register", "O", callback) : nullptr;
    Py_XDECREF(atexit);
    Py_DECREF(callback);
    if (result == nullptr) {
        throw std::runtime_error("pycroscope: stop_at_exit(): atexit.register failed: " +
                                 detail::fetch_python_error());
    }
    Py_DECREF(result);
}

// stop_at_exit() for a session (anything with stop()): errors from the
// outputs are printed by atexit; the session keeps them in summary().errors.
template <class SessionType>
void stop_session_at_exit(SessionType& session) {
    SessionType* target = &session;
    stop_at_exit([target] { target->stop(); });
}

} // namespace python
} // namespace pycroscope
