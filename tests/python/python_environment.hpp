#pragma once
// Test helper: one embedded interpreter per test process. Every test that
// touches Python calls ensure_python() first; the interpreter is initialised
// on the first call and never finalised, and the test thread keeps the GIL.
// The builtin `pycroscope` module is registered, so scripts can import it.

#ifndef PY_SSIZE_T_CLEAN
#define PY_SSIZE_T_CLEAN
#endif
#include <Python.h>

#include <pycroscope/python/module/module.hpp>

#include <cstdio>
#include <cstdlib>

namespace pycroscope_test {

inline void ensure_python() {
    if (Py_IsInitialized()) {
        return;
    }
    pycroscope::python::register_builtin_module();
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0; // gtest owns the process
    config.parse_argv = 0;
    PyStatus status = PyStatus_Ok();
#ifdef PYCROSCOPE_PYTHON_EXECUTABLE
    // The interpreter of the linked libpython, not a python3 shim on PATH.
    status = PyConfig_SetBytesString(&config, &config.program_name, PYCROSCOPE_PYTHON_EXECUTABLE);
#endif
    if (!PyStatus_Exception(status)) {
        status = Py_InitializeFromConfig(&config);
    }
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
        std::fprintf(stderr, "cannot initialize Python: %s\n", status.err_msg != nullptr ? status.err_msg : "?");
        std::abort();
    }
}

} // namespace pycroscope_test
