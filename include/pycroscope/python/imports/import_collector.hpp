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

// ---------------------------------------------------------------------------
// Drain side
// ---------------------------------------------------------------------------

// The import tree of every thread, rebuilt from the import spans (other
// spans inside them are ignored): like importtime, self time is the
// cumulative time minus the cumulative time of the nested imports.
class ImportModel : public sinks::BaseSinkMt {
public:
    struct Node {
        std::string module;
        std::uint32_t thread = 0;
        std::uint64_t begin = 0;
        std::uint64_t cumulative_ticks = 0;
        std::uint64_t child_ticks = 0;
        bool failed = false;
        bool finished = false;
        std::vector<std::size_t> children; // indices into nodes(), in start order
    };

    std::string describe() const override { return "import model"; }

    // Every import seen, in start order; roots() are those nested in no other.
    const std::vector<Node>& nodes() const noexcept { return nodes_; }
    const std::vector<std::size_t>& roots() const noexcept { return roots_; }

    // Closes imports still open at the session's end (after the final drain;
    // idempotent, so close() and the section writer may both call it).
    void finish(std::uint64_t stop_ticks) {
        open_imports_.for_each([&](std::uint32_t, std::vector<std::size_t>& stack) {
            while (!stack.empty()) {
                close_import(stack, stop_ticks, false);
            }
        });
    }

protected:
    void open_(const SessionInfo&) override {
        nodes_.clear();
        roots_.clear();
        open_imports_.clear();
    }

    void close_(const SessionSummary& summary) override { finish(summary.stop_ticks); }

    void sink_it_(const ThreadInfo& thread, const Event* events, std::size_t count) override {
        std::vector<std::size_t>& stack = open_imports_[thread.index];
        for (std::size_t i = 0; i < count; ++i) {
            const Event& e = events[i];
            if ((e.kind != EventKind::zone_begin && e.kind != EventKind::zone_end) || e.location() == nullptr ||
                e.location()->kind != LocationKind::python_import) {
                continue;
            }
            if (e.kind == EventKind::zone_begin) {
                Node node;
                node.module = e.location()->function;
                node.thread = thread.index;
                node.begin = e.timestamp;
                nodes_.push_back(std::move(node));
                const std::size_t index = nodes_.size() - 1;
                (stack.empty() ? roots_ : nodes_[stack.back()].children).push_back(index);
                stack.push_back(index);
            } else if (!stack.empty()) {
                close_import(stack, e.timestamp, (e.flags & event_flags::exception) != 0);
            }
        }
    }

private:
    void close_import(std::vector<std::size_t>& stack, std::uint64_t end, bool failed) {
        Node& node = nodes_[stack.back()];
        stack.pop_back();
        node.cumulative_ticks = end > node.begin ? end - node.begin : 0;
        node.failed = failed;
        node.finished = true;
        if (!stack.empty()) {
            nodes_[stack.back()].child_ticks += node.cumulative_ticks;
        }
    }

    std::vector<Node> nodes_;
    std::vector<std::size_t> roots_;
    sinks::PerThreadState<std::vector<std::size_t>> open_imports_; // per thread: open imports, innermost last
};

namespace detail {
inline void write_import_node(sinks::JsonWriter& json, const ImportModel& model, std::size_t index,
                              const SessionInfo& info) {
    const ImportModel::Node& node = model.nodes()[index];
    const std::uint64_t self = node.cumulative_ticks > node.child_ticks ? node.cumulative_ticks - node.child_ticks : 0;
    json.begin_object()
        .field("module", node.module)
        .field("self_ns", static_cast<std::uint64_t>(info.ticks_to_ns(self) + 0.5))
        .field("cumulative_ns", static_cast<std::uint64_t>(info.ticks_to_ns(node.cumulative_ticks) + 0.5))
        .field("thread", node.thread)
        .field("failed", node.failed);
    json.key("children").begin_array();
    for (const std::size_t child : node.children) {
        write_import_node(json, model, child, info);
    }
    json.end_array().end_object();
}
} // namespace detail

// The "imports" section: a tree [{"module", "self_ns", "cumulative_ns",
// "thread", "failed", "children": [...]}], in the order the imports began.
// model must outlive the session's stop().
inline void add_imports_section(sinks::JsonSummarySink& sink, ImportModel& model) {
    ImportModel* source = &model;
    sink.add_section("imports", [source](sinks::JsonWriter& json, const SessionSummary& summary) {
        source->with_lock([&] {
            source->finish(summary.stop_ticks);
            json.begin_array();
            for (const std::size_t root : source->roots()) {
                detail::write_import_node(json, *source, root, summary.info);
            }
            json.end_array();
        });
    });
}

} // namespace python
} // namespace pycroscope
