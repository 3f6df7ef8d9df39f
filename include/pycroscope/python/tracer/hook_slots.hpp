#pragma once
// A thread's two hook slots, the profile function and the trace function,
// each a (C function, object) pair. sys.getprofile()/sys.gettrace() return
// the object, so the tracer can sit in a slot while the object stays the
// program's own function: that is how it chains the program's hook.
//
// set_quietly() writes a slot without the "sys.setprofile"/"sys.settrace"
// audit event CPython raises on every change: the tracer's own installs must
// not show up in the program's audit hooks (nor be refused by them). Where the
// slot cannot be written without CPython's internal state (the trace slot
// before 3.11, both slots from 3.12, where sys.monitoring drives them) it
// goes through CPython and the event is raised.

#include "pycroscope/python/runtime/cpython.hpp"

namespace pycroscope {
namespace python {
namespace detail {

enum class HookSlot : std::uint8_t { profile, trace };

inline const char* audit_event(HookSlot slot) noexcept {
    return slot == HookSlot::profile ? "sys.setprofile" : "sys.settrace";
}

inline Py_tracefunc slot_function(PyThreadState* tstate, HookSlot slot) noexcept {
    return slot == HookSlot::profile ? compat::profile_function(tstate) : compat::trace_function(tstate);
}
inline PyObject* slot_object(PyThreadState* tstate, HookSlot slot) noexcept {
    return slot == HookSlot::profile ? tstate->c_profileobj : tstate->c_traceobj;
}

// Through CPython: raises the audit event; -1 with an exception set when a
// hook refused it.
inline int set_audited(PyThreadState* tstate, HookSlot slot, Py_tracefunc function, PyObject* object) noexcept {
    if (slot == HookSlot::profile) {
        return _PyEval_SetProfile(tstate, function, object);
    }
#if PY_VERSION_HEX >= 0x030D0000
    if (tstate != PyThreadState_Get()) {
        PyErr_SetString(PyExc_RuntimeError, "cannot set another thread's trace function on this Python");
        return -1;
    }
    PyEval_SetTrace(function, object);
    return PyErr_Occurred() != nullptr ? -1 : 0;
#else
    return _PyEval_SetTrace(tstate, function, object);
#endif
}

inline constexpr bool quiet_slot_write(HookSlot slot) noexcept {
#if PY_VERSION_HEX >= 0x030C0000
    (void)slot;
    return false;
#elif PY_VERSION_HEX >= 0x030B0000
    (void)slot;
    return true;
#else
    return slot == HookSlot::profile; // the trace slot also counts tracing threads in internal state
#endif
}

// What _PyEval_SetProfile / _PyEval_SetTrace do after their audit event.
inline void write_slot(PyThreadState* tstate, HookSlot slot, Py_tracefunc function, PyObject* object) noexcept {
#if PY_VERSION_HEX < 0x030C0000
    Py_tracefunc& slot_func = slot == HookSlot::profile ? tstate->c_profilefunc : tstate->c_tracefunc;
    PyObject*& slot_obj = slot == HookSlot::profile ? tstate->c_profileobj : tstate->c_traceobj;
    PyObject* old = slot_obj;
    Py_XINCREF(object);
    slot_func = function;
    slot_obj = object;
    const bool on = tstate->c_tracefunc != nullptr || tstate->c_profilefunc != nullptr;
#if PY_VERSION_HEX >= 0x030B0000
    tstate->cframe->use_tracing = tstate->tracing == 0 && on ? 255 : 0;
#elif PY_VERSION_HEX >= 0x030A0000
    tstate->cframe->use_tracing = on;
#else
    tstate->use_tracing = on;
#endif
    Py_XDECREF(old);
#else
    (void)tstate, (void)slot, (void)function, (void)object;
#endif
}

// Never fails where the slot is written directly; elsewhere -1 with an
// exception set (a refusing audit hook), which the caller clears.
inline int set_quietly(PyThreadState* tstate, HookSlot slot, Py_tracefunc function, PyObject* object) noexcept {
    if (quiet_slot_write(slot)) {
        write_slot(tstate, slot, function, object);
        return 0;
    }
    return set_audited(tstate, slot, function, object);
}

} // namespace detail
} // namespace python
} // namespace pycroscope
