#pragma once
// Functions watched for their argument size (`pycroscope profile
// --complexity FUNC`): the tracer marks each call of one with
// event_flags::watched and puts the size of its sized argument in the
// py_call's payload, so the drain can fit time per call against size.
//
// Which code objects are watched is decided once per code object, when
// code_location() first interns it (code_registry.hpp), by name: the hooks
// then only compare the location against a few pointers, and only while a
// watch is set (one relaxed load otherwise).
//
// FUNC is "qualname" (a function of the __main__ script, e.g. "solve" or
// "Graph.search") or "module:qualname" (a function of that module's file,
// e.g. "pkg.sort:merge"; "__main__:solve" is the script's).

#include "pycroscope/core/compiler.hpp"
#include "pycroscope/core/source_location.hpp"
#include "pycroscope/python/runtime/cpython.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>

namespace pycroscope {
namespace python {

// A py_call payload with event_flags::watched when no argument had a size.
constexpr std::uint64_t no_argument_size = ~std::uint64_t{0};

namespace detail {

struct WatchSpec {
    std::string qualname;
    std::string module;    // empty or "__main__": the script
    std::string main_file; // the script's path, canonical; empty: any file
};

// What the hooks read: constant-initialised, so no guard on the hot path.
struct WatchedLocations {
    static constexpr int capacity = 8; // code objects of one name (redefinitions, nested functions)
    std::atomic<int> count;            // set locations
    std::atomic<bool> active;          // a spec is set
    std::atomic<const SourceLocation*> locations[capacity];
};
inline WatchedLocations watched_locations{};

// The spec, and the lock that adds locations: slow path only.
struct WatchedFunctions {
    std::mutex mutex;
    WatchSpec spec;
};

inline WatchedFunctions& watched_functions() {
    static WatchedFunctions* watched = new WatchedFunctions(); // outlives atexit handlers
    return *watched;
}

inline std::string canonical_path(const std::string& path) {
    std::error_code error;
    const std::filesystem::path canonical = std::filesystem::weakly_canonical(path, error);
    return error ? path : canonical.string();
}

inline bool ends_with(std::string_view text, std::string_view tail) {
    return text.size() >= tail.size() && text.substr(text.size() - tail.size()) == tail;
}

// Does a code object of this qualname in this file match the spec?
inline bool watch_matches(const WatchSpec& spec, std::string_view qualname, const std::string& file) {
    if (qualname != spec.qualname) {
        return false;
    }
    if (spec.module.empty() || spec.module == "__main__") {
        return spec.main_file.empty() || canonical_path(file) == spec.main_file;
    }
    std::string path = spec.module;
    for (char& c : path) {
        c = c == '.' ? '/' : c;
    }
    const std::string normalized = canonical_path(file);
    return ends_with(normalized, "/" + path + ".py") || ends_with(normalized, "/" + path + "/__init__.py") ||
           normalized == path + ".py";
}

} // namespace detail

// Watches the function named func ("qualname" or "module:qualname", see
// above); main_file is the __main__ script. Call before the code runs (code
// objects interned earlier are not found). An empty func stops watching.
inline void watch_function(std::string_view func, const std::string& main_file) {
    detail::WatchedFunctions& watched = detail::watched_functions();
    detail::WatchedLocations& hot = detail::watched_locations;
    std::lock_guard<std::mutex> lock(watched.mutex);
    hot.active.store(false, std::memory_order_relaxed);
    hot.count.store(0, std::memory_order_release);
    watched.spec = detail::WatchSpec{};
    if (func.empty()) {
        return;
    }
    const std::size_t colon = func.rfind(':');
    watched.spec.qualname = std::string(colon == std::string_view::npos ? func : func.substr(colon + 1));
    watched.spec.module = colon == std::string_view::npos ? std::string() : std::string(func.substr(0, colon));
    watched.spec.main_file = main_file.empty() ? std::string() : detail::canonical_path(main_file);
    hot.active.store(true, std::memory_order_release);
}

// From code_location()'s first sight of a code object (GIL held).
inline void consider_watching(const SourceLocation* location) {
    detail::WatchedLocations& hot = detail::watched_locations;
    if (PYCROSCOPE_LIKELY(!hot.active.load(std::memory_order_acquire)) || location == nullptr ||
        location->function == nullptr || location->file == nullptr) {
        return;
    }
    detail::WatchedFunctions& watched = detail::watched_functions();
    std::lock_guard<std::mutex> lock(watched.mutex);
    if (!detail::watch_matches(watched.spec, location->function, location->file)) {
        return;
    }
    const int count = hot.count.load(std::memory_order_relaxed);
    for (int i = 0; i < count; ++i) {
        if (hot.locations[i].load(std::memory_order_relaxed) == location) {
            return;
        }
    }
    if (count < detail::WatchedLocations::capacity) {
        hot.locations[count].store(location, std::memory_order_relaxed);
        hot.count.store(count + 1, std::memory_order_release);
    }
}

// The hooks' test, per call.
PYCROSCOPE_FORCE_INLINE bool is_watched(const SourceLocation* location) noexcept {
    detail::WatchedLocations& hot = detail::watched_locations;
    const int count = hot.count.load(std::memory_order_acquire);
    if (PYCROSCOPE_LIKELY(count == 0)) {
        return false;
    }
    for (int i = 0; i < count; ++i) {
        if (hot.locations[i].load(std::memory_order_relaxed) == location) {
            return true;
        }
    }
    return false;
}

// The size of a call: the len() of its first positional argument that has
// one, else the value of its first int argument (>= 0; bool is not a
// size); no_argument_size if neither. So f(k, items) is sized by items and
// fib(n) by n. args: the frame's fast locals, positional arguments first (a
// cell holds an argument a nested function captures). May run a Python
// __len__; an exception it raises is dropped, the one pending before kept.
inline std::uint64_t argument_size(PyCodeObject* code, PyObject* const* args, int limit = -1) {
    if (args == nullptr) {
        return no_argument_size;
    }
    PyObject *type = nullptr, *value = nullptr, *traceback = nullptr;
    PyErr_Fetch(&type, &value, &traceback);
    std::uint64_t size = no_argument_size;
    std::uint64_t first_int = no_argument_size;
    const int count = limit >= 0 ? limit : code->co_argcount;
    for (int i = 0; i < count && size == no_argument_size; ++i) {
        PyObject* arg = args[i];
        if (arg != nullptr && PyCell_Check(arg)) {
            arg = PyCell_GET(arg);
        }
        if (arg == nullptr) {
            continue;
        }
        if (PyLong_Check(arg) && !PyBool_Check(arg)) {
            const long long n = PyLong_AsLongLong(arg);
            if (n == -1 && PyErr_Occurred()) {
                PyErr_Clear();
            } else if (n >= 0 && first_int == no_argument_size) {
                first_int = static_cast<std::uint64_t>(n);
            }
            continue;
        }
        const PyTypeObject* t = Py_TYPE(arg);
        const bool has_len = (t->tp_as_sequence != nullptr && t->tp_as_sequence->sq_length != nullptr) ||
                             (t->tp_as_mapping != nullptr && t->tp_as_mapping->mp_length != nullptr);
        if (has_len) {
            Py_INCREF(arg);
            const Py_ssize_t n = PyObject_Size(arg);
            Py_DECREF(arg);
            if (n < 0) {
                PyErr_Clear();
            } else {
                size = static_cast<std::uint64_t>(n);
            }
        }
    }
    PyErr_Restore(type, value, traceback);
    return size != no_argument_size ? size : first_int;
}

// argument_size() of a frame about to run (profile hook's CALL event).
inline std::uint64_t frame_argument_size(PyFrameObject* frame, PyCodeObject* code) {
    if (PyObject* const* locals = compat::frame_fast_locals(frame)) {
        return argument_size(code, locals);
    }
#if PY_VERSION_HEX >= 0x030C0000
    constexpr int most = 8;
    PyObject* args[most] = {};
    PyObject *type = nullptr, *value = nullptr, *traceback = nullptr;
    PyErr_Fetch(&type, &value, &traceback);
    PyObject* names = PyCode_GetVarnames(code);
    const int count = names != nullptr ? std::min<int>(code->co_argcount, most) : 0;
    for (int i = 0; i < count && i < PyTuple_GET_SIZE(names); ++i) {
        args[i] = PyFrame_GetVar(frame, PyTuple_GET_ITEM(names, i));
        if (args[i] == nullptr) {
            PyErr_Clear();
        }
    }
    Py_XDECREF(names);
    PyErr_Clear();
    PyErr_Restore(type, value, traceback);
    const std::uint64_t size = argument_size(code, args, count);
    for (PyObject* arg : args) {
        Py_XDECREF(arg);
    }
    return size;
#else
    return no_argument_size;
#endif
}

} // namespace python
} // namespace pycroscope
