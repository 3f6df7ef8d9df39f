#pragma once
// The Python layer: tracing an embedded CPython into the session's timeline.
// Include after (or instead of) <pycroscope.hpp>, with <Python.h> on the
// include path and libpython linked by the host.

#include "pycroscope/python/code_registry.hpp"
#include "pycroscope/python/summary_sections.hpp"
#include "pycroscope/python/cpython.hpp"
#include "pycroscope/python/thread_trace_state.hpp"
#include "pycroscope/python/tracer.hpp"
#include "pycroscope/python/frame_walk.hpp"
#include "pycroscope/python/stack_collector.hpp"
#include "pycroscope/python/sampler.hpp"
#include "pycroscope/python/current_frame.hpp"
#include "pycroscope/python/code_lines.hpp"
#include "pycroscope/python/memory_hooks.hpp"
#include "pycroscope/python/memory_collector.hpp"
#include "pycroscope/python/memory_sections.hpp"
#include "pycroscope/python/exception_types.hpp"
#include "pycroscope/python/gc_collector.hpp"
#include "pycroscope/python/import_collector.hpp"
#include "pycroscope/python/io_collector.hpp"
#include "pycroscope/python/exception_collector.hpp"
#include "pycroscope/python/shutdown.hpp"
#include "pycroscope/python/module.hpp"
