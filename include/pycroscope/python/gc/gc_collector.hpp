#pragma once
// GcCollector: every garbage collection as a span in the session's timeline.
//
// CPython has no C-level GC hook; it calls the functions in `gc.callbacks`
// with ("start" | "stop", {"generation", "collected", "uncollectable"}) around
// each collection, with the GIL held, on the thread that collects. start()
// appends a C function to that list and stop() removes it. A collection is
// recorded as a zone_begin/zone_end pair on a location of kind gc_collection
// named "gc (generation N)" (line = N), so the Chrome trace, the folded stacks
// and session.json's zones show it with no extra support; the zone_end carries
// collected in payload and uncollectable in aux (see core/event.hpp).
//
// On the drain side GcModel (a sink the host adds to the session) counts
// collections and their time per generation, and add_gc_section() writes the
// "gc" section of session.json from it.

#include "pycroscope/model/gc_model.hpp"
#include "pycroscope/core/recording_epoch.hpp"
#include "pycroscope/core/error.hpp"
#include "pycroscope/core/name_table.hpp"
#include "pycroscope/core/recorder.hpp"
#include "pycroscope/core/session_core.hpp"
#include "pycroscope/python/runtime/cpython.hpp"
#include "pycroscope/sinks/base_sink.hpp"
#include "pycroscope/sinks/json_summary_sink.hpp"
#include "pycroscope/sinks/per_thread_state.hpp"

#include <atomic>
#include <pthread.h>
#include <cstdint>
#include <string>

namespace pycroscope {
namespace python {

namespace detail {

// The recording session, zero when off. Atomic: stop() clears it before it
// has the GIL.
// fork(): the child records nothing (see session_core.hpp).
struct GcRecording;
using gc_epoch = RecordingEpoch<GcRecording>;

struct GcHookState {
    std::uint64_t open_epoch;         // session of the collection begun and not yet ended
    const SourceLocation* open_location;
    const SourceLocation* generations[3];
    PyObject* key_generation;         // interned dict keys of the callback's info
    PyObject* key_collected;
    PyObject* key_uncollectable;
};
// Constant-initialised and only touched with the GIL held.
inline GcHookState gc_hook{};

inline long gc_info_field(PyObject* info, PyObject* key) noexcept {
    PyObject* value = PyDict_Check(info) ? PyDict_GetItemWithError(info, key) : nullptr; // borrowed
    if (value == nullptr) {
        PyErr_Clear();
        return 0;
    }
    const long number = PyLong_AsLong(value);
    if (number == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return number;
}

// The gc.callbacks entry: callback(phase, info). Never raises: gc prints and
// ignores exceptions from callbacks, but a profiler must not add any.
inline PyObject* gc_callback(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    GcHookState& hook = gc_hook;
    const std::uint64_t epoch = gc_epoch::load();
    if (epoch == 0 || nargs < 2 || !PyUnicode_Check(args[0])) {
        Py_RETURN_NONE;
    }
    // "start" has five characters, "stop" four: no string comparison needed.
    const bool starting = PyUnicode_GET_LENGTH(args[0]) == 5;
    if (starting) {
        long generation = gc_info_field(args[1], hook.key_generation);
        generation = generation < 0 ? 0 : generation > 2 ? 2 : generation;
        hook.open_location = hook.generations[generation];
        hook.open_epoch = epoch;
        pycroscope::detail::push_event(
            epoch, Event{clock::now(), location_id(hook.open_location), 0, 0, EventKind::zone_begin, 0, 0});
    } else if (hook.open_epoch == epoch) {
        const std::uint64_t now = clock::now();
        const long collected = gc_info_field(args[1], hook.key_collected);
        const long uncollectable = gc_info_field(args[1], hook.key_uncollectable);
        hook.open_epoch = 0;
        pycroscope::detail::push_event(epoch, Event{now, location_id(hook.open_location),
                                                    static_cast<std::uint64_t>(collected < 0 ? 0 : collected),
                                                    static_cast<std::uint32_t>(uncollectable < 0 ? 0 : uncollectable),
                                                    EventKind::zone_end, 0, 0});
    }
    Py_RETURN_NONE;
}

inline PyMethodDef gc_callback_def = {"pycroscope_gc_callback", reinterpret_cast<PyCFunction>(
                                                                     reinterpret_cast<void (*)()>(&gc_callback)),
                                      METH_FASTCALL, "Pycroscope's garbage-collection hook"};

// The interned location of a collection of generation (0-2).
inline const SourceLocation* gc_location(int generation) {
    const std::string name = "gc (generation " + std::to_string(generation) + ")";
    return names().intern(LocationKind::gc_collection, name, "gc.collect", "<gc>",
                          static_cast<std::uint32_t>(generation));
}

} // namespace detail

class GcCollector {
public:
    static constexpr const char* name = "gc";

    bool enabled = true; // false: start() installs nothing (one Session type for every flag set)

    // Needs the GIL.
    void start(SessionCore& core) {
        if (!enabled) {
            return;
        }
        if (!Py_IsInitialized() || !PyGILState_Check()) {
            throw ConfigError("GcCollector: start the session after Py_Initialize() with the GIL held");
        }
        detail::GcHookState& hook = detail::gc_hook;
        for (int g = 0; g < 3; ++g) {
            hook.generations[g] = detail::gc_location(g);
        }
        if (hook.key_generation == nullptr) {
            hook.key_generation = PyUnicode_InternFromString("generation");
            hook.key_collected = PyUnicode_InternFromString("collected");
            hook.key_uncollectable = PyUnicode_InternFromString("uncollectable");
            if (hook.key_generation == nullptr || hook.key_collected == nullptr || hook.key_uncollectable == nullptr) {
                PyErr_Clear();
                throw ConfigError("GcCollector: out of memory");
            }
        }
        PyObject* callbacks = callbacks_list();
        PyObject* function = PyCFunction_New(&detail::gc_callback_def, nullptr);
        if (function == nullptr || PyList_Append(callbacks, function) != 0) {
            Py_XDECREF(function);
            Py_DECREF(callbacks);
            PyErr_Clear();
            throw ConfigError("GcCollector: cannot append to gc.callbacks");
        }
        Py_DECREF(callbacks);
        callback_ = function;
        hook.open_epoch = 0;
        detail::gc_epoch::begin(core.epoch());
    }

    void stop(SessionCore&) noexcept {
        detail::gc_epoch::end();
        if (callback_ == nullptr) {
            return;
        }
        if (Py_IsInitialized()) {
            const PyGILState_STATE gil = PyGILState_Ensure();
            try {
                PyObject* callbacks = callbacks_list();
                for (Py_ssize_t i = PyList_GET_SIZE(callbacks) - 1; i >= 0; --i) {
                    if (PyList_GET_ITEM(callbacks, i) == callback_) {
                        PySequence_DelItem(callbacks, i);
                        break;
                    }
                }
                Py_DECREF(callbacks);
            } catch (const ConfigError&) {
                // gc.callbacks is gone or was replaced by a non-list: nothing to remove.
            }
            PyErr_Clear();
            Py_DECREF(callback_);
            PyGILState_Release(gil);
        }
        callback_ = nullptr;
    }

private:
    // A new reference to gc.callbacks.
    static PyObject* callbacks_list() {
        PyObject* gc = PyImport_ImportModule("gc");
        PyObject* callbacks = gc != nullptr ? PyObject_GetAttrString(gc, "callbacks") : nullptr;
        Py_XDECREF(gc);
        if (callbacks == nullptr || !PyList_Check(callbacks)) {
            Py_XDECREF(callbacks);
            PyErr_Clear();
            throw ConfigError("GcCollector: gc.callbacks is not a list");
        }
        return callbacks;
    }

    PyObject* callback_ = nullptr;
};

} // namespace python
} // namespace pycroscope
