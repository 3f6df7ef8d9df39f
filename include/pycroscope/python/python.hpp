#pragma once
// The Python layer: tracing an embedded CPython into the session's timeline.
// Include after (or instead of) <pycroscope.hpp>, with <Python.h> on the
// include path and libpython linked by the host.

#include "pycroscope/python/code_registry.hpp"
#include "pycroscope/python/summary_sections.hpp"
#include "pycroscope/python/cpython.hpp"
#include "pycroscope/python/thread_trace_state.hpp"
#include "pycroscope/python/tracer.hpp"
#include "pycroscope/python/shutdown.hpp"
#include "pycroscope/python/module.hpp"
