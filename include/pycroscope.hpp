#pragma once
// Pycroscope: one timeline for native C++ zones and embedded-CPython profiling.
//
// Include this header (or the amalgamated single_include/pycroscope.hpp).
// It needs only the C++ standard library. Define PYCROSCOPE_PYTHON=1, with
// <Python.h> on the include path, to get the Python layer as well.

#include "pycroscope/version.hpp"

#include "pycroscope/core/call_tree.hpp"
#include "pycroscope/core/clock.hpp"
#include "pycroscope/core/compiler.hpp"
#include "pycroscope/core/config.hpp"
#include "pycroscope/core/error.hpp"
#include "pycroscope/core/event.hpp"
#include "pycroscope/core/event_processor.hpp"
#include "pycroscope/core/fork_child.hpp"
#include "pycroscope/core/location_tree.hpp"
#include "pycroscope/core/manual_sample.hpp"
#include "pycroscope/core/name_table.hpp"
#include "pycroscope/system/proc_stats.hpp"
#include "pycroscope/core/recorder.hpp"
#include "pycroscope/core/recording_epoch.hpp"
#include "pycroscope/core/ring_buffer.hpp"
#include "pycroscope/core/session.hpp"
#include "pycroscope/core/session_core.hpp"
#include "pycroscope/core/session_info.hpp"
#include "pycroscope/core/sink.hpp"
#include "pycroscope/core/source_location.hpp"
#include "pycroscope/core/span_stack.hpp"
#include "pycroscope/system/system_monitor.hpp"
#include "pycroscope/core/thread_buffer.hpp"
#include "pycroscope/core/thread_info.hpp"
#include "pycroscope/core/thread_registry.hpp"
#include "pycroscope/core/zone.hpp"
#include "pycroscope/core/zone_stack.hpp"

#include "pycroscope/model/sample_decoder.hpp"
#include "pycroscope/model/address_map.hpp"
#include "pycroscope/model/memory_model.hpp"
#include "pycroscope/model/sample_profile.hpp"
#include "pycroscope/model/sample_slices.hpp"
#include "pycroscope/model/exception_model.hpp"
#include "pycroscope/model/gc_model.hpp"
#include "pycroscope/model/import_model.hpp"
#include "pycroscope/model/io_model.hpp"

#include "pycroscope/sinks/atomic_file.hpp"
#include "pycroscope/sinks/base_sink.hpp"
#include "pycroscope/sinks/chrome_trace_sink.hpp"
#include "pycroscope/sinks/file_sink.hpp"
#include "pycroscope/sinks/folded_stack_sink.hpp"
#include "pycroscope/sinks/hotspot_sections.hpp"
#include "pycroscope/sinks/json_summary_sink.hpp"
#include "pycroscope/sinks/json_writer.hpp"
#include "pycroscope/sinks/line_profile.hpp"
#include "pycroscope/sinks/memory_counter_track.hpp"
#include "pycroscope/sinks/memory_folded_sink.hpp"
#include "pycroscope/sinks/per_thread_state.hpp"
#include "pycroscope/sinks/sample_profile_sink.hpp"
#include "pycroscope/sinks/sampled_stack_sink.hpp"
#include "pycroscope/system/system_section.hpp"

#if defined(PYCROSCOPE_PYTHON) && PYCROSCOPE_PYTHON
#include "pycroscope/python/python.hpp"
#include "pycroscope/profile/module_profile.hpp"
#endif
