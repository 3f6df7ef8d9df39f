#pragma once
// The Python layer: tracing an embedded CPython into the session's timeline.
// Include after (or instead of) <pycroscope.hpp>, with <Python.h> on the
// include path and libpython linked by the host.

#include "pycroscope/python/runtime/code_registry.hpp"
#include "pycroscope/python/tracer/function_sections.hpp"
#include "pycroscope/python/runtime/cpython.hpp"
#include "pycroscope/python/tracer/hook_slots.hpp"
#include "pycroscope/python/tracer/program_hooks.hpp"
#include "pycroscope/python/tracer/thread_trace_state.hpp"
#include "pycroscope/python/tracer/tracer.hpp"
#include "pycroscope/python/runtime/frame_walk.hpp"
#include "pycroscope/python/sampler/sampling_round.hpp"
#include "pycroscope/python/sampler/sampler.hpp"
#include "pycroscope/python/runtime/current_frame.hpp"
#include "pycroscope/python/runtime/code_lines.hpp"
#include "pycroscope/python/memory/memory_hooks.hpp"
#include "pycroscope/python/memory/memory_collector.hpp"
#include "pycroscope/python/memory/memory_section.hpp"
#include "pycroscope/python/exceptions/exception_types.hpp"
#include "pycroscope/python/gc/gc_collector.hpp"
#include "pycroscope/python/imports/import_collector.hpp"
#include "pycroscope/python/io/io_collector.hpp"
#include "pycroscope/python/exceptions/exception_collector.hpp"
#include "pycroscope/python/runtime/shutdown.hpp"
#include "pycroscope/python/module/module.hpp"
