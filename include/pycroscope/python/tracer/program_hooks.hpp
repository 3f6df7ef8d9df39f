#pragma once
// The program's own profile and trace functions while the tracer holds the
// slots (ConflictPolicy::chain). The slot keeps the program's object (so
// sys.getprofile()/sys.gettrace() return it) and the tracer's C callback
// calls the program's C function after recording the event: the one
// sys.setprofile/sys.settrace installs (CPython's trampoline, which handles
// frame.f_trace and errors exactly as it would alone), or a C-level one such
// as cProfile's on 3.9-3.11. Everything here runs with the GIL held.

#include "pycroscope/core/clock.hpp"
#include "pycroscope/python/runtime/code_registry.hpp"
#include "pycroscope/python/tracer/hook_slots.hpp"

#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace pycroscope {
namespace python {

// What the program's hooks cost the profile (session.json python.program_hooks).
struct ProgramHookReport {
    std::uint64_t chained_threads = 0;  // threads whose program hook ran alongside the tracer
    std::uint64_t stepped_aside = 0;    // threads left to the program's hook, untraced from then on
    std::uint64_t untraced_ns = 0;      // summed over those threads, until the session stopped
    std::uint64_t ignored_calls = 0;    // take_over: sys.setprofile/settrace calls that did nothing
    std::uint64_t refused_calls = 0;    // fail: calls that raised RuntimeError in the program
};

namespace detail {

// Threads by PyThreadState_GetID: a thread state's address is reused by
// later threads, its id is not.
inline std::uint64_t thread_key(PyThreadState* tstate) noexcept {
    return static_cast<std::uint64_t>(PyThreadState_GetID(tstate));
}
class ThreadSet {
public:
    bool insert(PyThreadState* tstate) { return ids_.insert(thread_key(tstate)).second; }
    std::size_t count(PyThreadState* tstate) const { return ids_.count(thread_key(tstate)); }
    void clear() noexcept { ids_.clear(); }

private:
    std::unordered_set<std::uint64_t> ids_;
};

struct ProgramHooks {
    // CPython's sys.setprofile / sys.settrace trampolines (static in
    // sysmodule.c): read from the slot after one call of each.
    Py_tracefunc profile_trampoline = nullptr;
    Py_tracefunc trace_trampoline = nullptr;
    // A program function other than the trampoline, per thread and slot.
    std::unordered_map<std::uint64_t, Py_tracefunc> foreign_profile;
    std::unordered_map<std::uint64_t, Py_tracefunc> foreign_trace;
    ThreadSet chained; // threads counted in chained_threads
    // step_aside: when each thread was left, for untraced_ns.
    std::unordered_map<std::uint64_t, std::uint64_t> stepped_aside_at;
    ProgramHookReport report;

    std::unordered_map<std::uint64_t, Py_tracefunc>& foreign(HookSlot slot) {
        return slot == HookSlot::profile ? foreign_profile : foreign_trace;
    }
    void clear() {
        foreign_profile.clear();
        foreign_trace.clear();
        chained.clear();
        stepped_aside_at.clear();
        report = ProgramHookReport{};
    }
};

inline ProgramHooks& program_hooks() {
    static ProgramHooks* hooks = new ProgramHooks(); // outlives atexit handlers
    return *hooks;
}

// Nonzero while Pycroscope itself changes a slot: its audit hook ignores
// those events. A depth, so a nested change cannot end an outer one's.
inline thread_local int tls_own_slot_change = 0;
struct OwnSlotChange {
    OwnSlotChange() noexcept { ++tls_own_slot_change; }
    ~OwnSlotChange() { --tls_own_slot_change; }
    OwnSlotChange(const OwnSlotChange&) = delete;
    OwnSlotChange& operator=(const OwnSlotChange&) = delete;
};

// Set when sys.setprofile put the program's first function in the slot. The
// C_RETURN of that call (or of a C call around it) is not the program's to
// see: CPython reports a C call's return only to a profile function that was
// there at its start.
inline thread_local bool tls_profile_just_set = false;

// The program's function for a slot whose object is the program's.
inline Py_tracefunc program_function(PyThreadState* tstate, HookSlot slot) {
    ProgramHooks& hooks = program_hooks();
    auto& foreign = hooks.foreign(slot);
    const auto it = foreign.find(thread_key(tstate));
    if (it != foreign.end()) {
        return it->second;
    }
    return slot == HookSlot::profile ? hooks.profile_trampoline : hooks.trace_trampoline;
}

// Records which C function goes with the program's object now in the slot.
inline void remember_program_function(PyThreadState* tstate, HookSlot slot, Py_tracefunc function, PyObject* object) {
    ProgramHooks& hooks = program_hooks();
    const Py_tracefunc trampoline = slot == HookSlot::profile ? hooks.profile_trampoline : hooks.trace_trampoline;
    auto& foreign = hooks.foreign(slot);
    if (object == nullptr || function == nullptr || function == trampoline) {
        foreign.erase(thread_key(tstate));
    } else {
        foreign[thread_key(tstate)] = function;
    }
    if (object != nullptr && hooks.chained.insert(tstate)) {
        ++hooks.report.chained_threads;
    }
}

// Calls the program's hook for one event, as CPython would without the
// tracer. ours: the tracer's callback for this slot, put back (without the
// program's function) when the program's function raised and CPython cleared
// the slot, as it does alone.
inline int forward_to_program(HookSlot slot, Py_tracefunc ours, PyObject* object, PyFrameObject* frame, int what,
                              PyObject* arg) {
    if (slot == HookSlot::profile && PYCROSCOPE_UNLIKELY(tls_profile_just_set)) {
        tls_profile_just_set = false;
        if (what == PyTrace_C_RETURN || what == PyTrace_C_EXCEPTION) {
            return 0;
        }
    }
    PyThreadState* tstate = PyThreadState_Get();
    const Py_tracefunc function = program_function(tstate, slot);
    if (function == nullptr) {
        return 0;
    }
    const int result = function(object, frame, what, arg);
    if (result != 0 && slot_function(tstate, slot) == nullptr) {
        program_hooks().foreign(slot).erase(thread_key(tstate));
        PendingExceptionGuard program_error; // what the program's function raised goes on
        OwnSlotChange own;
        if (set_quietly(tstate, slot, ours, nullptr) != 0) {
            PyErr_Clear();
        }
    }
    return result;
}

// Reads CPython's trampolines once: calls the original sys.setprofile and
// sys.settrace with a placeholder on this thread and puts the slots back.
inline void capture_trampolines(PyObject* setprofile, PyObject* settrace) {
    ProgramHooks& hooks = program_hooks();
    if (hooks.profile_trampoline != nullptr && hooks.trace_trampoline != nullptr) {
        return;
    }
    PyThreadState* tstate = PyThreadState_Get();
    OwnSlotChange own;
    struct Entry {
        HookSlot slot;
        PyObject* setter;
        Py_tracefunc* out;
    } const entries[] = {{HookSlot::profile, setprofile, &hooks.profile_trampoline},
                         {HookSlot::trace, settrace, &hooks.trace_trampoline}};
    for (const Entry& entry : entries) {
        if (entry.setter == nullptr || *entry.out != nullptr) {
            continue;
        }
        const Py_tracefunc function = slot_function(tstate, entry.slot);
        PyObject* object = slot_object(tstate, entry.slot);
        Py_XINCREF(object);
        PyObject* placeholder = PyTuple_New(0);
        PyObject* result = placeholder != nullptr ? PyObject_CallOneArg(entry.setter, placeholder) : nullptr;
        if (result != nullptr && slot_object(tstate, entry.slot) == placeholder) {
            *entry.out = slot_function(tstate, entry.slot);
        }
        Py_XDECREF(result);
        PyErr_Clear();
        if (set_quietly(tstate, entry.slot, function, object) != 0) {
            PyErr_Clear();
        }
        Py_XDECREF(object);
        Py_XDECREF(placeholder);
    }
}

inline void step_aside_from(PyThreadState* tstate) {
    ProgramHooks& hooks = program_hooks();
    if (hooks.stepped_aside_at.emplace(thread_key(tstate), clock::now()).second) {
        ++hooks.report.stepped_aside;
    }
}

// At stop: the time each stepped-aside thread went unrecorded.
inline void close_report(std::uint64_t now) {
    ProgramHooks& hooks = program_hooks();
    for (const auto& entry : hooks.stepped_aside_at) {
        hooks.report.untraced_ns += now > entry.second ? now - entry.second : 0;
    }
    hooks.stepped_aside_at.clear();
}

} // namespace detail
} // namespace python
} // namespace pycroscope
