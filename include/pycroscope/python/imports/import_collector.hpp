#pragma once
// ImportCollector: time per import, nested like `python -X importtime`.
//
// -X importtime times, in C, the call import.c makes to
// importlib._bootstrap._find_and_load for each module that is not in
// sys.modules yet. import.c looks that function up by attribute on the
// `_frozen_importlib` module at every such import (3.9 to 3.13), so start()
// replaces the attribute with a C wrapper and stop() puts the original back.
// The wrapper records a zone span "import <module>" (location kind
// python_import, function = module name) around the original call: spans
// nest exactly as importtime's lines do, appear in the Chrome trace and the
// flame graphs, and the Python frames of the import nest inside them.
// Unlike importtime, the wrapper also sees importlib.import_module(), which
// calls _find_and_load from Python.
//
// On the drain side ImportModel (a sink) rebuilds the import tree of each
// thread and add_imports_section() writes it as the "imports" section.

#include "pycroscope/model/import_model.hpp"
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
#include <cstdint>
#include <pthread.h>
#include <string>
#include <string_view>
#include <vector>

namespace pycroscope {
namespace python {

namespace detail {

struct ImportRecording;
using import_epoch = RecordingEpoch<ImportRecording>;

// The original _find_and_load: a strong reference kept for the life of the
// process, since a wrapper may still be running when the session stops.
inline PyObject* original_find_and_load = nullptr;

// Module name -> interned location, direct-mapped by the str's hash (cached
// in the object): repeated imports of a name (failed ones, reloads) skip the
// name table's lock. GIL held.
struct ImportNameCache {
    struct Entry {
        Py_hash_t hash;
        const SourceLocation* location;
    };
    Entry entries[256];
};
inline ImportNameCache import_names{};

inline const SourceLocation* import_location(PyObject* name) {
    Py_ssize_t size = 0;
    const char* text = PyUnicode_AsUTF8AndSize(name, &size);
    if (text == nullptr) {
        PyErr_Clear();
        return nullptr;
    }
    const std::string_view module(text, static_cast<std::size_t>(size));
    const Py_hash_t hash = PyObject_Hash(name);
    ImportNameCache::Entry& entry = import_names.entries[static_cast<std::size_t>(hash) & 255];
    if (entry.location != nullptr && entry.hash == hash && module == entry.location->function) {
        return entry.location;
    }
    std::string display = "import ";
    display.append(module);
    const SourceLocation* location = names().intern(LocationKind::python_import, display, module, "<import>", 0);
    entry = ImportNameCache::Entry{hash, location};
    return location;
}

// Stands in for _find_and_load(name, import_). Errors pass through untouched.
inline PyObject* find_and_load_wrapper(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    PyObject* original = original_find_and_load;
    const std::uint64_t epoch = import_epoch::load();
    if (epoch == 0 || nargs < 1 || !PyUnicode_Check(args[0])) {
        return PyObject_Vectorcall(original, args, static_cast<std::size_t>(nargs), nullptr);
    }
    const SourceLocation* location = import_location(args[0]);
    if (location == nullptr) {
        return PyObject_Vectorcall(original, args, static_cast<std::size_t>(nargs), nullptr);
    }
    pycroscope::detail::push_event(epoch,
                                   Event{clock::now(), location_id(location), 0, 0, EventKind::zone_begin, 0, 0});
    PyObject* module = PyObject_Vectorcall(original, args, static_cast<std::size_t>(nargs), nullptr);
    if (import_epoch::load() == epoch) {
        pycroscope::detail::push_event(epoch, Event{clock::now(), location_id(location), 0, 0, EventKind::zone_end,
                                                    module == nullptr ? event_flags::exception : std::uint8_t{0}, 0});
    }
    return module;
}

inline PyMethodDef find_and_load_def = {
    "_find_and_load",
    reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&find_and_load_wrapper)), METH_FASTCALL,
    "importlib._bootstrap._find_and_load, timed by Pycroscope"};

// A new reference to the module import.c calls _find_and_load on.
inline PyObject* frozen_importlib() {
    PyObject* name = PyUnicode_FromString("_frozen_importlib");
    PyObject* module = name != nullptr ? PyImport_GetModule(name) : nullptr;
    Py_XDECREF(name);
    if (module == nullptr) {
        PyErr_Clear();
    }
    return module;
}

} // namespace detail

class ImportCollector {
public:
    static constexpr const char* name = "imports";

    bool enabled = true; // false: start() installs nothing (one Session type for every flag set)

    // Needs the GIL.
    void start(SessionCore& core) {
        if (!enabled) {
            return;
        }
        if (!Py_IsInitialized() || !PyGILState_Check()) {
            throw ConfigError("ImportCollector: start the session after Py_Initialize() with the GIL held");
        }
        PyObject* importlib = detail::frozen_importlib();
        if (importlib == nullptr) {
            throw ConfigError("ImportCollector: _frozen_importlib is not loaded");
        }
        PyObject* current = PyObject_GetAttrString(importlib, "_find_and_load");
        if (current == nullptr) {
            PyErr_Clear();
            Py_DECREF(importlib);
            throw ConfigError("ImportCollector: importlib has no _find_and_load on Python " PY_VERSION);
        }
        if (PyCFunction_Check(current) &&
            reinterpret_cast<PyCFunctionObject*>(current)->m_ml == &detail::find_and_load_def) {
            Py_DECREF(current); // ours, left by a session that could not restore it
        } else {
            Py_XDECREF(detail::original_find_and_load);
            detail::original_find_and_load = current;
        }
        PyObject* wrapper = PyCFunction_New(&detail::find_and_load_def, nullptr);
        if (wrapper == nullptr || PyObject_SetAttrString(importlib, "_find_and_load", wrapper) != 0) {
            Py_XDECREF(wrapper);
            Py_DECREF(importlib);
            PyErr_Clear();
            throw ConfigError("ImportCollector: cannot replace importlib._bootstrap._find_and_load");
        }
        wrapper_ = wrapper;
        Py_DECREF(importlib);
        detail::import_epoch::begin(core.epoch());
    }

    void stop(SessionCore&) noexcept {
        detail::import_epoch::end();
        if (wrapper_ == nullptr) {
            return;
        }
        if (Py_IsInitialized()) {
            const PyGILState_STATE gil = PyGILState_Ensure();
            if (PyObject* importlib = detail::frozen_importlib()) {
                PyObject* current = PyObject_GetAttrString(importlib, "_find_and_load");
                // Restore only our own replacement; someone else's wrapper stays.
                if (current == wrapper_ &&
                    PyObject_SetAttrString(importlib, "_find_and_load", detail::original_find_and_load) != 0) {
                    PyErr_Clear();
                }
                Py_XDECREF(current);
                Py_DECREF(importlib);
            }
            PyErr_Clear();
            Py_DECREF(wrapper_);
            PyGILState_Release(gil);
        }
        wrapper_ = nullptr;
    }

private:
    PyObject* wrapper_ = nullptr;
};

} // namespace python
} // namespace pycroscope
