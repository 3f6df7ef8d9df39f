#pragma once
// The builtin module `pycroscope`, written against the C-API. The host
// registers it before the interpreter starts:
//
//     pycroscope::python::register_builtin_module();  // before Py_Initialize*
//     Py_InitializeFromConfig(&config);
//
// and Python code then uses:
//
//     import pycroscope
//     with pycroscope.zone("load"):        # a native zone, same timeline as PYCRO_SCOPE
//         ...
//     @pycroscope.zone("solve")           # or @pycroscope.zone: named after the function
//     def solve(): ...
//     pycroscope.mark("checkpoint")
//     pycroscope.counter("queue", len(q))
//     pycroscope.set_thread_name("loader")
//     pycroscope.complexity(func, make_input)  # {"best": "O(n log n)", ...}: complexity_function.hpp
//     with pycroscope.profile(output_dir="out") as session:
//         ...
//     print(session.duration, session.get_completed_profilers())
//
// pycroscope.profile() calls the host's ProfileHandler (set_profile_handler);
// without one it runs the standard profile of profile/module_profile.hpp
// (included by <pycroscope.hpp> with the Python layer).
//
// Zones, marks and counters record only while a session with the NativeZones
// collector runs; otherwise they cost a branch. Every function here runs with
// the GIL held; no C++ exception crosses into CPython (ConfigError becomes
// ValueError, an unknown profile() option TypeError, the rest RuntimeError).
// One interpreter per process: the module keeps its state in process globals.

#include "pycroscope/core/config.hpp"
#include "pycroscope/core/error.hpp"
#include "pycroscope/core/manual_sample.hpp"
#include "pycroscope/core/name_table.hpp"
#include "pycroscope/core/recorder.hpp"
#include "pycroscope/core/session.hpp"
#include "pycroscope/core/thread_registry.hpp"
#include "pycroscope/core/zone.hpp"
#include "pycroscope/python/module/complexity_function.hpp"
#include "pycroscope/python/runtime/cpython.hpp"
#include "pycroscope/python/runtime/python_text.hpp"
#include "pycroscope/python/runtime/frame_walk.hpp"
#include "pycroscope/python/sampler/sampler.hpp"
#include "pycroscope/python/runtime/shutdown.hpp"
#include "pycroscope/python/tracer/tracer.hpp"
#include "pycroscope/version.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace pycroscope {
namespace python {

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

// An option pycroscope.profile() does not accept: raised as TypeError.
class OptionError : public ConfigError {
public:
    using ConfigError::ConfigError;
};

// A C-API call failed and left its Python exception set: propagated as is.
class PythonErrorSet : public std::exception {
public:
    const char* what() const noexcept override { return "pycroscope: a Python exception is set"; }
};

namespace detail {

// Call from a catch block: turns the current C++ exception into a Python one.
inline void set_python_error_from_exception() noexcept {
    try {
        throw;
    } catch (const PythonErrorSet&) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_RuntimeError, "pycroscope: a C-API call failed without an exception");
        }
    } catch (const OptionError& error) {
        PyErr_SetString(PyExc_TypeError, error.what());
    } catch (const ConfigError& error) {
        PyErr_SetString(PyExc_ValueError, error.what());
    } catch (const std::bad_alloc&) {
        PyErr_NoMemory();
    } catch (const std::exception& error) {
        PyErr_SetString(PyExc_RuntimeError, error.what());
    } catch (...) {
        PyErr_SetString(PyExc_RuntimeError, "pycroscope: unknown C++ exception");
    }
}

// A str argument as UTF-8; throws PythonErrorSet (TypeError) otherwise.
inline std::string_view str_arg(PyObject* value, const char* what) {
    if (!PyUnicode_Check(value)) {
        PyErr_Format(PyExc_TypeError, "%s must be str, not %.100s", what, Py_TYPE(value)->tp_name);
        throw PythonErrorSet();
    }
    Py_ssize_t size = 0;
    const char* data = PyUnicode_AsUTF8AndSize(value, &size);
    if (data == nullptr) {
        throw PythonErrorSet();
    }
    return std::string_view(data, static_cast<std::size_t>(size));
}

// A name argument (str): any str is accepted, and one with NUL characters
// or lone surrogates is escaped into storage (python_text.hpp), so the name
// is neither cut nor merged with another. Throws PythonErrorSet (TypeError).
inline std::string_view name_arg(PyObject* value, const char* what, std::string& storage) {
    if (!PyUnicode_Check(value)) {
        PyErr_Format(PyExc_TypeError, "%s must be str, not %.100s", what, Py_TYPE(value)->tp_name);
        throw PythonErrorSet();
    }
    std::string_view text;
    if (!python_text(value, text, storage)) {
        throw PythonErrorSet();
    }
    return text;
}

// A path argument (str, bytes or os.PathLike) in the file-system encoding.
inline std::string path_arg(PyObject* value) {
    PyObject* path = PyOS_FSPath(value);
    if (path == nullptr) {
        throw PythonErrorSet();
    }
    PyObject* bytes = nullptr;
    if (PyUnicode_Check(path)) {
        bytes = PyUnicode_EncodeFSDefault(path);
        Py_DECREF(path);
    } else {
        bytes = path; // PyOS_FSPath returns str or bytes
    }
    if (bytes == nullptr) {
        throw PythonErrorSet();
    }
    std::string result(PyBytes_AS_STRING(bytes), static_cast<std::size_t>(PyBytes_GET_SIZE(bytes)));
    Py_DECREF(bytes);
    return result;
}

inline bool truth_arg(PyObject* value) {
    const int truth = PyObject_IsTrue(value);
    if (truth < 0) {
        throw PythonErrorSet();
    }
    return truth != 0;
}

template <class F>
PyCFunction as_cfunction(F function) noexcept {
    return reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(function));
}

inline double steady_seconds() noexcept {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

} // namespace detail

// ---------------------------------------------------------------------------
// pycroscope.profile(): the host's hook
// ---------------------------------------------------------------------------

struct ProfileResult {
    std::vector<std::string> completed; // collector names, e.g. {"native_zones", "python"}
    std::vector<std::string> files;     // outputs written
};

// What pycroscope.profile() does, supplied by the host. Every callback runs
// with the GIL held and gets the keyword arguments of profile() as a dict
// (borrowed). Throw to refuse: OptionError -> TypeError, ConfigError ->
// ValueError, PythonErrorSet -> the Python exception already set, anything
// else -> RuntimeError.
struct ProfileHandler {
    std::function<void(PyObject* options)> check;         // optional: at profile(...) time
    std::function<std::string(PyObject* options)> start; // returns the output directory ("" if none)
    std::function<ProfileResult()> stop;
    std::function<void()> finish_at_exit; // optional: ends a profile still running when the interpreter exits
};

namespace detail {

struct ModuleState {
    ProfileHandler handler; // the host's
    ProfileHandler fallback; // the standard profile's, set by profile/module_profile.hpp
};

inline ModuleState& module_state() {
    static ModuleState* state = new ModuleState(); // outlives atexit handlers and static destructors
    return *state;
}

inline const ProfileHandler& profile_handler() {
    const ModuleState& state = module_state();
    if (state.handler.start) {
        return state.handler;
    }
    if (!state.fallback.start) {
        throw ConfigError("pycroscope.profile() has no handler: the host neither set one (set_profile_handler) "
                          "nor included <pycroscope/profile/module_profile.hpp>");
    }
    return state.fallback;
}

} // namespace detail

// The handler pycroscope.profile() uses when the host installed none.
inline void set_fallback_profile_handler(ProfileHandler handler) { detail::module_state().fallback = std::move(handler); }

// Installs the host's handler for pycroscope.profile(); an empty handler
// restores the default. Call before the interpreter starts or with the GIL held.
inline void set_profile_handler(ProfileHandler handler) {
    if (static_cast<bool>(handler.start) != static_cast<bool>(handler.stop)) {
        throw ConfigError("a ProfileHandler needs both start and stop (or neither, for the default)");
    }
    detail::module_state().handler = std::move(handler);
}

// ---------------------------------------------------------------------------
// Python types
// ---------------------------------------------------------------------------

namespace detail {

constexpr int zone_inline_depth = 4;
constexpr int zone_max_depth = 64;

// pycroscope.zone("name"): a context manager, and a decorator through __call__.
struct ZoneObject {
    PyObject_HEAD
    const SourceLocation* location;
    int depth;
    std::uint64_t epochs[zone_inline_depth]; // one per open enter: the epoch begin_zone returned
    std::uint64_t* more_epochs;              // depths zone_inline_depth .. zone_max_depth-1
};

// Zone.__enter__ / Zone.__exit__: the descriptor in the type (zone null) and
// the bound method. Not a builtin function on purpose: the profile hook
// reports calls of builtin functions as C calls, and a C-call span around
// the zone's end (or begin) would interleave with the zone instead of nesting.
struct ZoneMethod {
    PyObject_HEAD
    PyObject* zone; // null: unbound (the descriptor)
    int exit;
    vectorcallfunc vectorcall;
};

// The result of pycroscope.profile(...): a context manager and a decorator.
struct ProfileObject {
    PyObject_HEAD
    PyObject* options; // dict
    PyObject* session; // the latest ProfileSessionObject, or null
    int running;
};

// What a zone or a profile returns as a decorator (types ZonedFunction and
// ProfiledFunction): the type's vectorcall runs every call of function as a
// span of the zone or under the profile.
struct WrappedFunction {
    PyObject_HEAD
    PyObject* owner; // the ZoneObject or the ProfileObject
    PyObject* function;
    PyObject* dict;
    PyObject* weakrefs;
    vectorcallfunc vectorcall;
};

// What `with pycroscope.profile() as session` binds.
struct ProfileSessionObject {
    PyObject_HEAD
    double start;
    double duration;
    int running;
    PyObject* completed;  // list of str, never handed out (copies are)
    PyObject* files;      // list of str, never handed out
    PyObject* output_dir; // str
};

inline PyTypeObject new_type(const char* name, Py_ssize_t size, unsigned long flags, const char* doc) {
    PyTypeObject type{};
    Py_SET_REFCNT(reinterpret_cast<PyObject*>(&type), 1); // static: never deallocated
    type.tp_name = name;
    type.tp_basicsize = size;
    type.tp_flags = flags;
    type.tp_doc = doc;
    return type;
}

PyTypeObject* zone_type();
PyTypeObject* zone_method_type();
PyTypeObject* zoned_function_type();
PyTypeObject* profile_type();
PyTypeObject* profiled_function_type();
PyTypeObject* profile_session_type();

inline const SourceLocation* python_zone_site() {
    static constexpr SourceLocation site{"<python zone>", "", "", 0, LocationKind::dynamic_zone};
    return &site;
}

inline const SourceLocation* intern_python_zone(std::string_view name) {
    return intern_zone_name(python_zone_site(), name);
}

// The name a bare @pycroscope.zone gives a function: its __qualname__.
inline std::string callable_name(PyObject* function) {
    for (const char* attribute : {"__qualname__", "__name__"}) {
        PyObject* value = PyObject_GetAttrString(function, attribute);
        if (value != nullptr && PyUnicode_Check(value)) {
            std::string_view text;
            std::string storage;
            if (python_text(value, text, storage)) {
                std::string name(text);
                Py_DECREF(value);
                return name;
            }
        }
        Py_XDECREF(value);
        PyErr_Clear();
    }
    return Py_TYPE(function)->tp_name;
}

// functools.update_wrapper(wrapper, function): __name__, __qualname__,
// __doc__, __module__, __dict__ and __wrapped__.
inline bool update_wrapper(PyObject* wrapper, PyObject* function) {
    PyObject* functools = PyImport_ImportModule("functools");
    if (functools == nullptr) {
        return false;
    }
    PyObject* result = PyObject_CallMethod(functools, "update_wrapper", "OO", wrapper, function);
    Py_DECREF(functools);
    if (result == nullptr) {
        return false;
    }
    Py_DECREF(result);
    return true;
}

inline PyObject* bind_to_instance(PyObject* self, PyObject* instance, PyObject*) {
    if (instance == nullptr || instance == Py_None) {
        Py_INCREF(self);
        return self;
    }
    return PyMethod_New(self, instance);
}

// --- wrapped function: what ZonedFunction and ProfiledFunction share ----------

inline WrappedFunction* as_wrapped(PyObject* self) { return reinterpret_cast<WrappedFunction*>(self); }

// The one function a zone or profile object is called with to decorate
// (borrowed); otherwise null with a TypeError (usage for keyword arguments).
inline PyObject* decorated_function(PyObject* args, PyObject* kwargs, const char* name, const char* usage) {
    PyObject* function = nullptr;
    if ((kwargs != nullptr && PyDict_GET_SIZE(kwargs) != 0) || !PyArg_UnpackTuple(args, name, 1, 1, &function)) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, usage);
        }
        return nullptr;
    }
    return function;
}

// A wrapper of type around function; decorator (e.g. "pycroscope.zone()")
// names the caller in the TypeError for a function that is not callable.
inline PyObject* new_wrapped_function(PyTypeObject* type, const char* decorator, PyObject* owner, PyObject* function,
                                      vectorcallfunc call) {
    if (!PyCallable_Check(function)) {
        PyErr_Format(PyExc_TypeError, "%s can decorate callables only, not %.100s", decorator,
                     Py_TYPE(function)->tp_name);
        return nullptr;
    }
    auto* wrapper = reinterpret_cast<WrappedFunction*>(type->tp_alloc(type, 0));
    if (wrapper == nullptr) {
        return nullptr;
    }
    Py_INCREF(owner);
    wrapper->owner = owner;
    Py_INCREF(function);
    wrapper->function = function;
    wrapper->vectorcall = call;
    PyObject* object = reinterpret_cast<PyObject*>(wrapper);
    if (!update_wrapper(object, function)) {
        Py_DECREF(object);
        return nullptr;
    }
    return object;
}

inline int wrapped_traverse(PyObject* self, visitproc visit, void* arg) {
    WrappedFunction* wrapper = as_wrapped(self);
    Py_VISIT(wrapper->owner);
    Py_VISIT(wrapper->function);
    Py_VISIT(wrapper->dict);
    return 0;
}

// A zone holds no references, so it cannot close a cycle: it stays until
// dealloc, and a cleared ZonedFunction still has the zone's name for repr.
inline int wrapped_clear(PyObject* self) {
    WrappedFunction* wrapper = as_wrapped(self);
    if (wrapper->owner != nullptr && PyObject_IS_GC(wrapper->owner)) {
        Py_CLEAR(wrapper->owner);
    }
    Py_CLEAR(wrapper->function);
    Py_CLEAR(wrapper->dict);
    return 0;
}

inline void wrapped_dealloc(PyObject* self) {
    PyObject_GC_UnTrack(self);
    if (as_wrapped(self)->weakrefs != nullptr) {
        PyObject_ClearWeakRefs(self);
    }
    wrapped_clear(self);
    Py_CLEAR(as_wrapped(self)->owner);
    Py_TYPE(self)->tp_free(self);
}

// The first getter of each wrapper type: a static type gets no __dict__
// attribute from tp_dictoffset alone.
inline constexpr PyGetSetDef wrapped_dict_getset{"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict,
                                                 nullptr, nullptr};

// The slots of both wrapper types; they differ only in name, doc, repr,
// getset and the vectorcall each instance carries.
inline PyTypeObject new_wrapped_function_type(const char* name, const char* doc, reprfunc repr, PyGetSetDef* getset) {
    PyTypeObject t = new_type(name, sizeof(WrappedFunction),
                              Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL, doc);
    t.tp_dealloc = &wrapped_dealloc;
    t.tp_traverse = &wrapped_traverse;
    t.tp_clear = &wrapped_clear;
    t.tp_repr = repr;
    t.tp_call = &PyVectorcall_Call;
    t.tp_vectorcall_offset = offsetof(WrappedFunction, vectorcall);
    t.tp_dictoffset = offsetof(WrappedFunction, dict);
    t.tp_weaklistoffset = offsetof(WrappedFunction, weakrefs);
    t.tp_descr_get = &bind_to_instance;
    t.tp_getset = getset;
    return t;
}

// --- zone ------------------------------------------------------------------

inline PyObject* new_zone(const SourceLocation* location) {
    PyTypeObject* type = zone_type();
    auto* zone = reinterpret_cast<ZoneObject*>(type->tp_alloc(type, 0));
    if (zone == nullptr) {
        return nullptr;
    }
    zone->location = location;
    return reinterpret_cast<PyObject*>(zone);
}

inline PyObject* zone_new(PyTypeObject*, PyObject* args, PyObject* kwargs) {
    static const char* keywords[] = {"name", nullptr};
    PyObject* name = nullptr;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "U:zone", const_cast<char**>(keywords), &name)) {
        return nullptr;
    }
    try {
        std::string storage;
        return new_zone(intern_python_zone(name_arg(name, "zone name", storage)));
    } catch (...) {
        set_python_error_from_exception();
        return nullptr;
    }
}

inline void zone_dealloc(PyObject* self) {
    auto* zone = reinterpret_cast<ZoneObject*>(self);
    PyMem_Free(zone->more_epochs);
    Py_TYPE(self)->tp_free(self);
}

// Where a `with pycroscope.zone()` sits for the sampler: inside the Python
// frame running the with statement, outside its callees (ZoneStack).
inline std::uintptr_t python_zone_position() noexcept {
    if (!native_zones_active() || !zone_stacks_kept()) {
        return 0;
    }
    const void* frame = frame_walk::current_frame_id(PyThreadState_Get());
    return frame != nullptr ? reinterpret_cast<std::uintptr_t>(frame) | ZoneStack::python_frame_tag : 0;
}

inline std::uint64_t& zone_slot(ZoneObject* zone, int depth) {
    return depth < zone_inline_depth ? zone->epochs[depth] : zone->more_epochs[depth - zone_inline_depth];
}

inline PyObject* zone_enter(PyObject* self, PyObject*) {
    auto* zone = reinterpret_cast<ZoneObject*>(self);
    if (zone->depth >= zone_max_depth) {
        PyErr_Format(PyExc_RuntimeError,
                     "pycroscope.zone('%s') entered %d times without an exit; use a new zone object per nesting level",
                     zone->location->name, zone_max_depth);
        return nullptr;
    }
    if (zone->depth >= zone_inline_depth && zone->more_epochs == nullptr) {
        zone->more_epochs = static_cast<std::uint64_t*>(
            PyMem_Calloc(zone_max_depth - zone_inline_depth, sizeof(std::uint64_t)));
        if (zone->more_epochs == nullptr) {
            return PyErr_NoMemory();
        }
    }
    zone_slot(zone, zone->depth) = begin_zone(zone->location, python_zone_position());
    ++zone->depth;
    Py_INCREF(self);
    return self;
}

inline PyObject* zone_exit(PyObject* self, PyObject* const*, Py_ssize_t) {
    auto* zone = reinterpret_cast<ZoneObject*>(self);
    if (zone->depth == 0) {
        PyErr_Format(PyExc_RuntimeError, "pycroscope.zone('%s').__exit__() without __enter__()",
                     zone->location->name);
        return nullptr;
    }
    --zone->depth;
    const std::uint64_t epoch = zone_slot(zone, zone->depth);
    if (epoch != 0) {
        end_zone(zone->location, epoch);
    }
    Py_RETURN_FALSE; // never swallows the exception
}

inline PyObject* new_zone_method(PyObject* zone, int exit) {
    PyTypeObject* type = zone_method_type();
    auto* method = reinterpret_cast<ZoneMethod*>(type->tp_alloc(type, 0));
    if (method == nullptr) {
        return nullptr;
    }
    Py_XINCREF(zone);
    method->zone = zone;
    method->exit = exit;
    method->vectorcall = [](PyObject* callable, PyObject* const* args, std::size_t nargsf,
                            PyObject* kwnames) -> PyObject* {
        auto* self = reinterpret_cast<ZoneMethod*>(callable);
        Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
        PyObject* zone = self->zone;
        const char* name = self->exit ? "__exit__" : "__enter__";
        if (zone == nullptr) { // unbound: Zone.__exit__(zone, ...), as contextlib.ExitStack calls it
            if (nargs < 1 || !PyObject_TypeCheck(args[0], zone_type())) {
                PyErr_Format(PyExc_TypeError, "pycroscope.zone.%s() needs a pycroscope.zone as first argument",
                             name);
                return nullptr;
            }
            zone = args[0];
            ++args;
            --nargs;
        }
        if (kwnames != nullptr && PyTuple_GET_SIZE(kwnames) != 0) {
            PyErr_Format(PyExc_TypeError, "pycroscope.zone.%s() takes no keyword arguments", name);
            return nullptr;
        }
        if (self->exit) {
            if (nargs != 3) {
                PyErr_Format(PyExc_TypeError, "pycroscope.zone.__exit__() takes 3 arguments (%zd given)", nargs);
                return nullptr;
            }
            return zone_exit(zone, args, nargs);
        }
        if (nargs != 0) {
            PyErr_Format(PyExc_TypeError, "pycroscope.zone.__enter__() takes no arguments (%zd given)", nargs);
            return nullptr;
        }
        return zone_enter(zone, nullptr);
    };
    return reinterpret_cast<PyObject*>(method);
}

inline PyObject* zone_method_get(PyObject* self, PyObject* instance, PyObject*) {
    auto* method = reinterpret_cast<ZoneMethod*>(self);
    if (method->zone != nullptr || instance == nullptr || instance == Py_None) {
        Py_INCREF(self);
        return self;
    }
    return new_zone_method(instance, method->exit);
}

inline void zone_method_dealloc(PyObject* self) {
    Py_XDECREF(reinterpret_cast<ZoneMethod*>(self)->zone);
    Py_TYPE(self)->tp_free(self);
}

inline PyObject* zone_method_repr(PyObject* self) {
    auto* method = reinterpret_cast<ZoneMethod*>(self);
    const char* name = method->exit ? "__exit__" : "__enter__";
    if (method->zone == nullptr) {
        return PyUnicode_FromFormat("<method '%s' of 'pycroscope.zone' objects>", name);
    }
    return PyUnicode_FromFormat("<bound method pycroscope.zone.%s of %R>", name, method->zone);
}

inline PyTypeObject* zone_method_type() {
    static PyTypeObject type = [] {
        PyTypeObject t = new_type("pycroscope.ZoneMethod", sizeof(ZoneMethod),
                                  Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
                                  "__enter__ or __exit__ of a pycroscope.zone.");
        t.tp_dealloc = &zone_method_dealloc;
        t.tp_repr = &zone_method_repr;
        t.tp_call = &PyVectorcall_Call;
        t.tp_vectorcall_offset = offsetof(ZoneMethod, vectorcall);
        t.tp_descr_get = &zone_method_get;
        return t;
    }();
    return &type;
}

// Puts the two ZoneMethod descriptors into the zone type (once, after PyType_Ready).
inline bool add_zone_methods(PyTypeObject* type) {
    if (PyType_Ready(zone_method_type()) < 0) {
        return false;
    }
    for (int exit = 0; exit < 2; ++exit) {
        const char* name = exit ? "__exit__" : "__enter__";
        if (PyDict_GetItemString(type->tp_dict, name) != nullptr) {
            continue;
        }
        PyObject* descriptor = new_zone_method(nullptr, exit);
        if (descriptor == nullptr || PyDict_SetItemString(type->tp_dict, name, descriptor) < 0) {
            Py_XDECREF(descriptor);
            return false;
        }
        Py_DECREF(descriptor);
    }
    PyType_Modified(type);
    return true;
}

// ZonedFunction: every call is a span of the zone.
inline PyObject* zoned_vectorcall(PyObject* callable, PyObject* const* args, std::size_t nargsf, PyObject* kwnames) {
    WrappedFunction* self = as_wrapped(callable);
    const SourceLocation* location = reinterpret_cast<ZoneObject*>(self->owner)->location;
    const std::uint64_t epoch = begin_zone(location);
    PyObject* result = PyObject_Vectorcall(self->function, args, nargsf, kwnames);
    if (epoch != 0) {
        end_zone(location, epoch);
    }
    return result;
}

inline PyObject* wrap_in_zone(PyObject* zone, PyObject* function) {
    return new_wrapped_function(zoned_function_type(), "pycroscope.zone()", zone, function, &zoned_vectorcall);
}

inline PyObject* zone_call(PyObject* self, PyObject* args, PyObject* kwargs) {
    PyObject* function =
        decorated_function(args, kwargs, "zone", "a pycroscope.zone decorates one function: @pycroscope.zone('name')");
    return function != nullptr ? wrap_in_zone(self, function) : nullptr;
}

inline PyObject* zone_repr(PyObject* self) {
    return PyUnicode_FromFormat("<pycroscope.zone '%s'>", reinterpret_cast<ZoneObject*>(self)->location->name);
}

inline PyObject* zone_get_name(PyObject* self, void*) {
    return PyUnicode_FromString(reinterpret_cast<ZoneObject*>(self)->location->name);
}

inline PyTypeObject* zone_type() {
    static PyGetSetDef getset[] = {
        {"name", &zone_get_name, nullptr, "The zone's name.", nullptr},
        {nullptr, nullptr, nullptr, nullptr, nullptr},
    };
    static PyTypeObject type = [] {
        PyTypeObject t = new_type("pycroscope.zone", sizeof(ZoneObject), Py_TPFLAGS_DEFAULT,
                                  "zone(name)\n--\n\nA native zone: `with zone(name):` records a span on the "
                                  "calling thread;\n`@zone(name)` records one around every call of a function.");
        t.tp_new = &zone_new;
        t.tp_dealloc = &zone_dealloc;
        t.tp_repr = &zone_repr;
        t.tp_call = &zone_call;
        t.tp_getset = getset;
        return t;
    }();
    return &type;
}

// --- zoned function ----------------------------------------------------------

inline PyObject* zoned_repr(PyObject* self) {
    WrappedFunction* wrapper = as_wrapped(self);
    const char* name = reinterpret_cast<ZoneObject*>(wrapper->owner)->location->name;
    if (wrapper->function == nullptr) {
        return PyUnicode_FromFormat("<pycroscope.zone '%s' (cleared)>", name);
    }
    return PyUnicode_FromFormat("<pycroscope.zone '%s' wrapping %R>", name, wrapper->function);
}

inline PyObject* zoned_get_zone_name(PyObject* self, void*) { return zone_get_name(as_wrapped(self)->owner, nullptr); }

inline PyTypeObject* zoned_function_type() {
    static PyGetSetDef getset[] = {
        wrapped_dict_getset,
        {"zone_name", &zoned_get_zone_name, nullptr, "Name of the zone around each call.", nullptr},
        {nullptr, nullptr, nullptr, nullptr, nullptr},
    };
    static PyTypeObject type = new_wrapped_function_type(
        "pycroscope.ZonedFunction", "A function whose every call is a pycroscope zone.", &zoned_repr, getset);
    return &type;
}

// --- profile session -----------------------------------------------------------

inline PyObject* new_profile_session() {
    PyTypeObject* type = profile_session_type();
    auto* session = reinterpret_cast<ProfileSessionObject*>(type->tp_alloc(type, 0));
    if (session == nullptr) {
        return nullptr;
    }
    session->completed = PyList_New(0);
    session->files = PyList_New(0);
    session->output_dir = PyUnicode_FromString("");
    if (session->completed == nullptr || session->files == nullptr || session->output_dir == nullptr) {
        Py_DECREF(session);
        return nullptr;
    }
    return reinterpret_cast<PyObject*>(session);
}

inline void profile_session_dealloc(PyObject* self) {
    auto* session = reinterpret_cast<ProfileSessionObject*>(self);
    Py_XDECREF(session->completed);
    Py_XDECREF(session->files);
    Py_XDECREF(session->output_dir);
    Py_TYPE(self)->tp_free(self);
}

inline PyObject* string_list(const std::vector<std::string>& items) {
    PyObject* list = PyList_New(static_cast<Py_ssize_t>(items.size()));
    if (list == nullptr) {
        return nullptr;
    }
    for (std::size_t i = 0; i < items.size(); ++i) {
        PyObject* item = PyUnicode_DecodeFSDefaultAndSize(items[i].data(), static_cast<Py_ssize_t>(items[i].size()));
        if (item == nullptr) {
            Py_DECREF(list);
            return nullptr;
        }
        PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), item);
    }
    return list;
}

inline PyObject* list_copy(PyObject* list) { return PyList_GetSlice(list, 0, PyList_GET_SIZE(list)); }

inline PyObject* session_get_completed(PyObject* self, PyObject*) {
    return list_copy(reinterpret_cast<ProfileSessionObject*>(self)->completed);
}

inline PyObject* session_get_duration(PyObject* self, void*) {
    auto* session = reinterpret_cast<ProfileSessionObject*>(self);
    return PyFloat_FromDouble(session->running ? steady_seconds() - session->start : session->duration);
}

inline PyObject* session_get_output_dir(PyObject* self, void*) {
    PyObject* dir = reinterpret_cast<ProfileSessionObject*>(self)->output_dir;
    Py_INCREF(dir);
    return dir;
}

inline PyObject* session_get_files(PyObject* self, void*) {
    return list_copy(reinterpret_cast<ProfileSessionObject*>(self)->files);
}

inline PyObject* session_get_running(PyObject* self, void*) {
    return PyBool_FromLong(reinterpret_cast<ProfileSessionObject*>(self)->running);
}

inline PyObject* session_repr(PyObject* self) {
    auto* session = reinterpret_cast<ProfileSessionObject*>(self);
    PyObject* duration = session_get_duration(self, nullptr);
    if (duration == nullptr) {
        return nullptr;
    }
    PyObject* text = PyUnicode_FromFormat("<pycroscope.ProfileSession %s, duration %R s, output_dir %R>",
                                          session->running ? "running" : "stopped", duration, session->output_dir);
    Py_DECREF(duration);
    return text;
}

inline PyTypeObject* profile_session_type() {
    static PyMethodDef methods[] = {
        {"get_completed_profilers", as_cfunction(&session_get_completed), METH_NOARGS,
         "Names of the collectors that completed, e.g. ['native_zones', 'python']."},
        {nullptr, nullptr, 0, nullptr},
    };
    static PyGetSetDef getset[] = {
        {"duration", &session_get_duration, nullptr,
         "Seconds profiled (so far, while running).", nullptr},
        {"output_dir", &session_get_output_dir, nullptr, "Directory of the outputs.", nullptr},
        {"files", &session_get_files, nullptr, "Outputs written (after the profile ended).", nullptr},
        {"running", &session_get_running, nullptr, "True until the profile ends.", nullptr},
        {nullptr, nullptr, nullptr, nullptr, nullptr},
    };
    static PyTypeObject type = [] {
        PyTypeObject t = new_type("pycroscope.ProfileSession", sizeof(ProfileSessionObject), Py_TPFLAGS_DEFAULT,
                                  "One run of pycroscope.profile().");
        t.tp_dealloc = &profile_session_dealloc;
        t.tp_repr = &session_repr;
        t.tp_methods = methods;
        t.tp_getset = getset;
        return t;
    }();
    return &type;
}

// --- profile ---------------------------------------------------------------------

inline PyObject* new_profile(PyObject* options) {
    PyTypeObject* type = profile_type();
    auto* profile = reinterpret_cast<ProfileObject*>(type->tp_alloc(type, 0));
    if (profile == nullptr) {
        return nullptr;
    }
    profile->options = options != nullptr ? PyDict_Copy(options) : PyDict_New();
    if (profile->options == nullptr) {
        Py_DECREF(profile);
        return nullptr;
    }
    try {
        const ProfileHandler& handler = profile_handler();
        if (handler.check) {
            handler.check(profile->options);
        }
    } catch (...) {
        set_python_error_from_exception();
        Py_DECREF(profile);
        return nullptr;
    }
    return reinterpret_cast<PyObject*>(profile);
}

inline PyObject* profile_enter(PyObject* self, PyObject*) {
    auto* profile = reinterpret_cast<ProfileObject*>(self);
    if (profile->running) {
        PyErr_SetString(PyExc_RuntimeError, "this pycroscope.profile() is already running");
        return nullptr;
    }
    PyObject* object = new_profile_session();
    if (object == nullptr) {
        return nullptr;
    }
    auto* session = reinterpret_cast<ProfileSessionObject*>(object);
    std::string dir;
    try {
        dir = profile_handler().start(profile->options);
    } catch (...) {
        set_python_error_from_exception();
        Py_DECREF(object);
        return nullptr;
    }
    PyObject* dir_text = PyUnicode_DecodeFSDefaultAndSize(dir.data(), static_cast<Py_ssize_t>(dir.size()));
    if (dir_text == nullptr) {
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        try {
            profile_handler().stop();
        } catch (...) {
        }
        PyErr_Restore(type, value, traceback);
        Py_DECREF(object);
        return nullptr;
    }
    Py_SETREF(session->output_dir, dir_text);
    session->running = 1;
    session->start = steady_seconds();
    profile->running = 1;
    Py_XSETREF(profile->session, object); // the profile keeps one reference
    Py_INCREF(object);
    return object;
}

// Ends the running profile; nullptr with an exception when stopping failed.
inline PyObject* profile_exit(PyObject* self, PyObject* const*, Py_ssize_t) {
    auto* profile = reinterpret_cast<ProfileObject*>(self);
    if (!profile->running) {
        Py_RETURN_FALSE;
    }
    profile->running = 0;
    auto* session = reinterpret_cast<ProfileSessionObject*>(profile->session);
    session->duration = steady_seconds() - session->start;
    session->running = 0;
    ProfileResult result;
    try {
        result = profile_handler().stop();
    } catch (...) {
        set_python_error_from_exception();
        return nullptr;
    }
    PyObject* completed = string_list(result.completed);
    PyObject* files = string_list(result.files);
    if (completed == nullptr || files == nullptr) {
        Py_XDECREF(completed);
        Py_XDECREF(files);
        return nullptr;
    }
    Py_SETREF(session->completed, completed);
    Py_SETREF(session->files, files);
    Py_RETURN_FALSE; // never swallows the exception
}

// ProfiledFunction: every outermost call runs under the profile.
inline PyObject* profiled_vectorcall(PyObject* callable, PyObject* const* args, std::size_t nargsf,
                                     PyObject* kwnames) {
    WrappedFunction* self = as_wrapped(callable);
    PyObject* profile = self->owner;
    if (reinterpret_cast<ProfileObject*>(profile)->running) {
        // Recursion, or a call from inside the same profile: already profiled.
        return PyObject_Vectorcall(self->function, args, nargsf, kwnames);
    }
    PyObject* session = profile_enter(profile, nullptr);
    if (session == nullptr) {
        return nullptr;
    }
    Py_DECREF(session);
    PyObject* result = PyObject_Vectorcall(self->function, args, nargsf, kwnames);
    if (result == nullptr) {
        // Keep the function's exception; a failure to stop is reported as unraisable.
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        PyObject* stopped = profile_exit(profile, nullptr, 0);
        if (stopped == nullptr) {
            PyErr_WriteUnraisable(profile);
        } else {
            Py_DECREF(stopped);
        }
        PyErr_Restore(type, value, traceback);
        return nullptr;
    }
    PyObject* stopped = profile_exit(profile, nullptr, 0);
    if (stopped == nullptr) {
        Py_DECREF(result);
        return nullptr;
    }
    Py_DECREF(stopped);
    return result;
}

inline PyObject* wrap_in_profile(PyObject* profile, PyObject* function) {
    return new_wrapped_function(profiled_function_type(), "pycroscope.profile()", profile, function,
                                &profiled_vectorcall);
}

inline PyObject* profile_call(PyObject* self, PyObject* args, PyObject* kwargs) {
    PyObject* function = decorated_function(args, kwargs, "profile", "a pycroscope.profile() decorates one function");
    return function != nullptr ? wrap_in_profile(self, function) : nullptr;
}

inline int profile_traverse(PyObject* self, visitproc visit, void* arg) {
    auto* profile = reinterpret_cast<ProfileObject*>(self);
    Py_VISIT(profile->options);
    Py_VISIT(profile->session);
    return 0;
}

inline int profile_clear(PyObject* self) {
    auto* profile = reinterpret_cast<ProfileObject*>(self);
    Py_CLEAR(profile->options);
    Py_CLEAR(profile->session);
    return 0;
}

inline void profile_dealloc(PyObject* self) {
    PyObject_GC_UnTrack(self);
    auto* profile = reinterpret_cast<ProfileObject*>(self);
    if (profile->running) {
        // Dropped while running (a generator never resumed): end it here.
        profile->running = 0;
        try {
            profile_handler().stop();
        } catch (...) {
        }
    }
    profile_clear(self);
    Py_TYPE(self)->tp_free(self);
}

inline PyObject* profile_get_session(PyObject* self, void*) {
    PyObject* session = reinterpret_cast<ProfileObject*>(self)->session;
    if (session == nullptr) {
        Py_RETURN_NONE;
    }
    Py_INCREF(session);
    return session;
}

inline PyObject* profile_get_options(PyObject* self, void*) {
    return PyDict_Copy(reinterpret_cast<ProfileObject*>(self)->options);
}

inline PyObject* profile_repr(PyObject* self) {
    auto* profile = reinterpret_cast<ProfileObject*>(self);
    return PyUnicode_FromFormat("<pycroscope.profile %s options=%R>", profile->running ? "running" : "idle",
                                profile->options);
}

inline PyTypeObject* profile_type() {
    static PyMethodDef methods[] = {
        {"__enter__", as_cfunction(&profile_enter), METH_NOARGS,
         "Starts profiling; returns the ProfileSession."},
        {"__exit__", as_cfunction(&profile_exit), METH_FASTCALL, "Stops profiling and writes the outputs."},
        {nullptr, nullptr, 0, nullptr},
    };
    static PyGetSetDef getset[] = {
        {"session", &profile_get_session, nullptr, "The latest ProfileSession, or None.", nullptr},
        {"options", &profile_get_options, nullptr, "The keyword arguments given to profile().", nullptr},
        {nullptr, nullptr, nullptr, nullptr, nullptr},
    };
    static PyTypeObject type = [] {
        PyTypeObject t = new_type("pycroscope.profile", sizeof(ProfileObject), Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
                                  "Profiles a block (`with profile(**options) as session:`) or every call "
                                  "of a function (`@profile(**options)`).");
        t.tp_dealloc = &profile_dealloc;
        t.tp_traverse = &profile_traverse;
        t.tp_clear = &profile_clear;
        t.tp_repr = &profile_repr;
        t.tp_call = &profile_call;
        t.tp_methods = methods;
        t.tp_getset = getset;
        return t;
    }();
    return &type;
}

// --- profiled function -------------------------------------------------------------

inline PyObject* profiled_get_last_session(PyObject* self, void*) {
    PyObject* profile = as_wrapped(self)->owner;
    if (profile == nullptr) {
        Py_RETURN_NONE;
    }
    return profile_get_session(profile, nullptr);
}

inline PyObject* profiled_repr(PyObject* self) {
    WrappedFunction* wrapper = as_wrapped(self);
    if (wrapper->function == nullptr) {
        return PyUnicode_FromString("<pycroscope.profile wrapper (cleared)>");
    }
    return PyUnicode_FromFormat("<pycroscope.profile wrapping %R>", wrapper->function);
}

inline PyTypeObject* profiled_function_type() {
    static PyGetSetDef getset[] = {
        wrapped_dict_getset,
        {"last_session", &profiled_get_last_session, nullptr, "The ProfileSession of the latest call, or None.",
         nullptr},
        {nullptr, nullptr, nullptr, nullptr, nullptr},
    };
    static PyTypeObject type = new_wrapped_function_type(
        "pycroscope.ProfiledFunction", "A function profiled on every (outermost) call.", &profiled_repr, getset);
    return &type;
}

// --- module functions -----------------------------------------------------------------

inline PyObject* module_zone(PyObject*, PyObject* argument) {
    try {
        if (PyUnicode_Check(argument)) {
            std::string storage;
            return new_zone(intern_python_zone(name_arg(argument, "zone name", storage)));
        }
        if (PyCallable_Check(argument)) { // bare @pycroscope.zone
            PyObject* zone = new_zone(intern_python_zone(callable_name(argument)));
            if (zone == nullptr) {
                return nullptr;
            }
            PyObject* wrapper = wrap_in_zone(zone, argument);
            Py_DECREF(zone);
            return wrapper;
        }
        PyErr_Format(PyExc_TypeError, "zone() takes a name (str) or a function, not %.100s",
                     Py_TYPE(argument)->tp_name);
        return nullptr;
    } catch (...) {
        set_python_error_from_exception();
        return nullptr;
    }
}

inline PyObject* module_mark(PyObject*, PyObject* name) {
    try {
        std::string storage;
        mark(name_arg(name, "mark name", storage)); // records only while native zones are collected
        Py_RETURN_NONE;
    } catch (...) {
        set_python_error_from_exception();
        return nullptr;
    }
}

inline PyObject* module_counter(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "counter() takes 2 arguments (name, value), %zd given", nargs);
        return nullptr;
    }
    try {
        std::string storage;
        const std::string_view name = name_arg(args[0], "counter name", storage);
        const double value = PyFloat_AsDouble(args[1]);
        if (value == -1.0 && PyErr_Occurred()) {
            return nullptr;
        }
        counter(name, value);
        Py_RETURN_NONE;
    } catch (...) {
        set_python_error_from_exception();
        return nullptr;
    }
}

inline PyObject* module_frame_mark(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError, "frame_mark() takes at most 1 argument (name), %zd given", nargs);
        return nullptr;
    }
    try {
        if (nargs == 0 || args[0] == Py_None) {
            frame_mark(pycroscope::detail::default_frame_location());
        } else {
            std::string storage;
            const std::string_view name = name_arg(args[0], "frame name", storage);
            if (native_zones_active()) {
                frame_mark(names().intern(LocationKind::frame, name));
            }
        }
        Py_RETURN_NONE;
    } catch (...) {
        set_python_error_from_exception();
        return nullptr;
    }
}

inline PyObject* module_set_thread_name(PyObject*, PyObject* name) {
    try {
        std::string storage;
        set_thread_name(name_arg(name, "thread name", storage));
        Py_RETURN_NONE;
    } catch (...) {
        set_python_error_from_exception();
        return nullptr;
    }
}

inline PyObject* module_is_recording(PyObject*, PyObject*) { return PyBool_FromLong(native_zones_active()); }

// pycroscope.add_sample([(function, file, line), ...]): outermost first.
inline PyObject* module_add_sample(PyObject*, PyObject* stack) {
    try {
        PyObject* items = PySequence_Fast(stack, "add_sample() takes a list of (function, file, line) tuples");
        if (items == nullptr) {
            return nullptr;
        }
        struct Release {
            PyObject* object;
            ~Release() { Py_DECREF(object); }
        } release_items{items};
        const Py_ssize_t count = PySequence_Fast_GET_SIZE(items);
        if (count == 0) {
            PyErr_SetString(PyExc_ValueError, "add_sample() needs at least one (function, file, line) frame");
            return nullptr;
        }
        std::vector<SampleFrame> frames(static_cast<std::size_t>(count));
        for (Py_ssize_t i = 0; i < count; ++i) {
            PyObject* frame = PySequence_Fast_GET_ITEM(items, i);
            if (!PyTuple_Check(frame) || PyTuple_GET_SIZE(frame) != 3) {
                PyErr_Format(PyExc_TypeError,
                             "add_sample(): frame %zd must be a (function, file, line) tuple, not %.100s", i,
                             Py_TYPE(frame)->tp_name);
                return nullptr;
            }
            auto& out = frames[static_cast<std::size_t>(i)];
            out.name = str_arg(PyTuple_GET_ITEM(frame, 0), "add_sample(): a frame's function");
            out.file = str_arg(PyTuple_GET_ITEM(frame, 1), "add_sample(): a frame's file");
            PyObject* line = PyTuple_GET_ITEM(frame, 2);
            if (!PyLong_Check(line)) {
                PyErr_Format(PyExc_TypeError, "add_sample(): frame %zd's line must be int, not %.100s", i,
                             Py_TYPE(line)->tp_name);
                return nullptr;
            }
            const long long value = PyLong_AsLongLong(line);
            if (value == -1 && PyErr_Occurred()) {
                return nullptr;
            }
            if (value < 0 || value > 0xFFFFFFFFll) {
                PyErr_Format(PyExc_ValueError, "add_sample(): frame %zd's line must be in 0..4294967295, got %lld", i,
                             value);
                return nullptr;
            }
            out.line = static_cast<std::uint32_t>(value);
        }
        return PyBool_FromLong(add_sample(frames));
    } catch (...) {
        set_python_error_from_exception();
        return nullptr;
    }
}

inline std::shared_ptr<SamplerControl> running_sampler(const char* function) {
    std::shared_ptr<SamplerControl> control = active_sampler_control();
    if (control == nullptr) {
        PyErr_Format(PyExc_RuntimeError,
                     "%s(): no sampling session is running (start one with pycroscope.profile(sample=True), "
                     "`pycroscope profile --sample`, or a host session with the Sampler collector)",
                     function);
    }
    return control;
}

// pycroscope.start_sampling(rate=None): resumes the running Sampler, at a new rate if given.
inline PyObject* module_start_sampling(PyObject*, PyObject* args, PyObject* kwargs) {
    static const char* keywords[] = {"rate", nullptr};
    PyObject* rate = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:start_sampling", const_cast<char**>(keywords), &rate)) {
        return nullptr;
    }
    double hz = 0;
    if (rate != Py_None) {
        if (!PyLong_Check(rate) && !PyFloat_Check(rate)) {
            PyErr_Format(PyExc_TypeError, "start_sampling(): rate must be a number (Hz), not %.100s",
                         Py_TYPE(rate)->tp_name);
            return nullptr;
        }
        hz = PyFloat_AsDouble(rate);
        if (hz == -1.0 && PyErr_Occurred()) {
            return nullptr;
        }
    }
    try {
        if (rate != Py_None) {
            validate_rate(hz); // ValueError before looking for a sampler
        }
        std::shared_ptr<SamplerControl> control = running_sampler("start_sampling");
        if (control == nullptr) {
            return nullptr;
        }
        if (rate != Py_None) {
            control->set_rate(hz);
        }
        control->resume();
        Py_RETURN_NONE;
    } catch (...) {
        set_python_error_from_exception();
        return nullptr;
    }
}

// pycroscope.stop_sampling(): pauses the running Sampler (start_sampling() resumes it).
inline PyObject* module_stop_sampling(PyObject*, PyObject*) {
    std::shared_ptr<SamplerControl> control = running_sampler("stop_sampling");
    if (control == nullptr) {
        return nullptr;
    }
    control->pause();
    Py_RETURN_NONE;
}

// pycroscope.sample_count(): samples the running Sampler wrote so far (0 when none runs).
inline PyObject* module_sample_count(PyObject*, PyObject*) {
    std::shared_ptr<SamplerControl> control = active_sampler_control();
    return PyLong_FromUnsignedLongLong(control != nullptr ? control->stats().samples : 0);
}

inline PyObject* module_profile(PyObject*, PyObject* args, PyObject* kwargs) {
    const Py_ssize_t nargs = PyTuple_GET_SIZE(args);
    if (nargs == 1 && (kwargs == nullptr || PyDict_GET_SIZE(kwargs) == 0) &&
        PyCallable_Check(PyTuple_GET_ITEM(args, 0))) {
        // Bare @pycroscope.profile
        PyObject* profile = new_profile(nullptr);
        if (profile == nullptr) {
            return nullptr;
        }
        PyObject* wrapper = wrap_in_profile(profile, PyTuple_GET_ITEM(args, 0));
        Py_DECREF(profile);
        return wrapper;
    }
    if (nargs != 0) {
        PyErr_SetString(PyExc_TypeError, "profile() takes keyword arguments only: profile(output_dir=..., ...)");
        return nullptr;
    }
    return new_profile(kwargs);
}

inline bool add_type(PyObject* module, const char* name, PyTypeObject* type) {
    if (PyType_Ready(type) < 0) {
        return false;
    }
    Py_INCREF(type);
    if (PyModule_AddObject(module, name, reinterpret_cast<PyObject*>(type)) < 0) {
        Py_DECREF(type);
        return false;
    }
    return true;
}

inline PyModuleDef* module_def() {
    static PyMethodDef methods[] = {
        {"zone", as_cfunction(&module_zone), METH_O,
         "zone(name)\n--\n\nA native zone named name: `with pycroscope.zone(name):` or "
         "`@pycroscope.zone(name)`.\n`@pycroscope.zone` on a function names the zone after it."},
        {"mark", as_cfunction(&module_mark), METH_O,
         "mark(name)\n--\n\nAn instant event on the calling thread."},
        {"counter", as_cfunction(&module_counter), METH_FASTCALL,
         "counter(name, value)\n--\n\nA sample of a counter track."},
        {"frame_mark", as_cfunction(&module_frame_mark), METH_FASTCALL,
         "frame_mark(name=None)\n--\n\nThe end of a frame (of the named frame set)."},
        {"set_thread_name", as_cfunction(&module_set_thread_name), METH_O,
         "set_thread_name(name)\n--\n\nNames the calling thread in every output."},
        {"add_sample", as_cfunction(&module_add_sample), METH_O,
         "add_sample(stack)\n--\n\nRecords one stack sample of the calling thread: a list of (function, file, "
         "line)\ntuples, outermost first. Returns False when no session records."},
        {"start_sampling", as_cfunction(&module_start_sampling), METH_VARARGS | METH_KEYWORDS,
         "start_sampling(rate=None)\n--\n\nResumes the running session's sampler, at rate Hz if given."},
        {"stop_sampling", as_cfunction(&module_stop_sampling), METH_NOARGS,
         "stop_sampling()\n--\n\nPauses the running session's sampler."},
        {"sample_count", as_cfunction(&module_sample_count), METH_NOARGS,
         "sample_count()\n--\n\nSamples the running session's sampler wrote so far (0 when none runs)."},
        {"is_recording", as_cfunction(&module_is_recording), METH_NOARGS,
         "is_recording()\n--\n\nTrue while a session records zones, marks and counters."},
        {"complexity", as_cfunction(&module_complexity), METH_VARARGS | METH_KEYWORDS,
         "complexity(func, make_input, sizes=None, repeat=None, budget=None)\n--\n\nTimes func(make_input(n)) "
         "over growing n (sizes, or chosen within budget seconds)\nand fits O(1), O(log n), O(n), O(n log n), "
         "O(n^2), O(n^3), O(2^n): returns a dict\nwith best, r2, models, points and seconds_spent."},
        {"profile", as_cfunction(&module_profile), METH_VARARGS | METH_KEYWORDS,
         "profile(**options)\n--\n\nProfiles a block (`with pycroscope.profile() as session:`) or a "
         "function\n(`@pycroscope.profile()`). Without a host handler the options are output_dir,\n"
         "minimal, lines, c_calls, backend ('auto', 'eval_frame', 'profile') and sinks\n"
         "('json,folded,chrome' by default; also capture, perfetto, speedscope, pprof, callgrind)."},
        {nullptr, nullptr, 0, nullptr},
    };
    static PyModuleDef definition = {
        PyModuleDef_HEAD_INIT,
        "pycroscope",
        "Pycroscope: native zones, marks and counters in the host's profiling timeline,\n"
        "and pycroscope.profile() for Python code.",
        -1,
        methods,
        nullptr,
        nullptr,
        nullptr,
        nullptr,
    };
    return &definition;
}

} // namespace detail

// The init function of the builtin module (C++ linkage; passed by pointer).
inline PyObject* PyInit_pycroscope() {
    PyObject* module = PyModule_Create(detail::module_def());
    if (module == nullptr) {
        return nullptr;
    }
    if (!detail::add_type(module, "Zone", detail::zone_type()) || !detail::add_zone_methods(detail::zone_type()) ||
        !detail::add_type(module, "ZonedFunction", detail::zoned_function_type()) ||
        !detail::add_type(module, "Profile", detail::profile_type()) ||
        !detail::add_type(module, "ProfiledFunction", detail::profiled_function_type()) ||
        !detail::add_type(module, "ProfileSession", detail::profile_session_type()) ||
        PyModule_AddStringConstant(module, "__version__", PYCROSCOPE_VERSION_STRING) < 0) {
        Py_DECREF(module);
        return nullptr;
    }
    // A profile() the script never ended (os._exit aside) still gets written.
    try {
        stop_at_exit([] {
            const detail::ModuleState& state = detail::module_state();
            const ProfileHandler& handler = state.handler.start ? state.handler : state.fallback;
            if (handler.finish_at_exit) {
                handler.finish_at_exit();
            }
        });
    } catch (const std::exception&) {
        // Not fatal: only the safety net is missing.
    }
    return module;
}

// Makes `import pycroscope` work in the interpreter the host initializes next.
// Call once, before Py_Initialize*; later calls do nothing.
inline void register_builtin_module() {
    static bool registered = false;
    if (registered) {
        return;
    }
    if (Py_IsInitialized()) {
        throw SessionError("register_builtin_module() must be called before Py_Initialize()");
    }
    if (PyImport_AppendInittab("pycroscope", &PyInit_pycroscope) != 0) {
        throw std::runtime_error("pycroscope: PyImport_AppendInittab(\"pycroscope\") failed");
    }
    registered = true;
}

} // namespace python
} // namespace pycroscope
