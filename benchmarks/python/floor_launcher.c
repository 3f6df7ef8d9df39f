/* `python3` (as python_launcher.c) with one of CPython's tracing mechanisms
 * installed and doing nothing: the floors under Pycroscope's two tracing
 * backends, timed by overhead.sh (MODES=... noop_eval clock_eval noop_profile).
 * PYCROSCOPE_FLOOR selects, on the main thread's interpreter:
 *   noop_eval     a PEP 523 eval-frame function that only calls the default
 *                 one (what the eval_frame backend, --minimal, cannot go below)
 *   clock_eval    the same plus a clock read before and after each frame: the
 *                 two timestamps per call every tracer pays
 *   noop_profile  a C profile function (PyEval_SetProfile) that returns 0: the
 *                 only source of C-call events on 3.11, under the complete mode
 *   noop_monitoring   (3.12+) a sys.monitoring tool whose C callbacks for the
 *                 events --minimal asks (PY_START, PY_RESUME, PY_RETURN,
 *                 PY_YIELD, PY_UNWIND, PY_THROW) return None: the floor of the
 *                 monitoring backend
 *   clock_monitoring  the same plus a clock read in each callback
 * Anything else (or unset) installs nothing.
 *
 *   cc -O2 floor_launcher.c $(pkg-config --cflags --libs python3-embed)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

static unsigned long long read_clock(void) {
#if defined(__x86_64__)
    return __rdtsc();
#else
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (unsigned long long)now.tv_sec * 1000000000ull + (unsigned long long)now.tv_nsec;
#endif
}

/* Written, so the compiler keeps the reads; read by nobody. */
static volatile unsigned long long last_clock;

static int noop_profile(PyObject* object, PyFrameObject* frame, int what, PyObject* arg) {
    (void)object;
    (void)frame;
    (void)what;
    (void)arg;
    return 0;
}

#if PY_VERSION_HEX >= 0x030B0000
typedef struct _PyInterpreterFrame EvalFrame;
#else
typedef PyFrameObject EvalFrame;
#endif

static PyObject* noop_eval(PyThreadState* tstate, EvalFrame* frame, int throwflag) {
    return _PyEval_EvalFrameDefault(tstate, frame, throwflag);
}

static PyObject* clock_eval(PyThreadState* tstate, EvalFrame* frame, int throwflag) {
    last_clock = read_clock();
    PyObject* result = _PyEval_EvalFrameDefault(tstate, frame, throwflag);
    last_clock = read_clock();
    return result;
}

#if PY_VERSION_HEX >= 0x030C0000
static PyObject* noop_callback(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
    (void)self;
    (void)args;
    (void)nargs;
    Py_RETURN_NONE;
}

static PyObject* clock_callback(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
    (void)self;
    (void)args;
    (void)nargs;
    last_clock = read_clock();
    Py_RETURN_NONE;
}

static PyMethodDef noop_callback_def = {"noop_callback", (PyCFunction)(void (*)(void))noop_callback, METH_FASTCALL,
                                        NULL};
static PyMethodDef clock_callback_def = {"clock_callback", (PyCFunction)(void (*)(void))clock_callback,
                                         METH_FASTCALL, NULL};

/* Tool 4 (the one Pycroscope takes first), the --minimal events. */
static int install_monitoring(PyMethodDef* def) {
    static const char* const names[] = {"PY_START", "PY_RESUME", "PY_RETURN", "PY_YIELD", "PY_UNWIND", "PY_THROW"};
    PyObject* monitoring = PySys_GetObject("monitoring"); /* borrowed */
    PyObject* events = monitoring != NULL ? PyObject_GetAttrString(monitoring, "events") : NULL;
    PyObject* callback = PyCFunction_New(def, NULL);
    PyObject* result = events != NULL && callback != NULL
                           ? PyObject_CallMethod(monitoring, "use_tool_id", "is", 4, "floor")
                           : NULL;
    long mask = 0;
    int ok = result != NULL;
    Py_XDECREF(result);
    for (size_t i = 0; ok && i < sizeof names / sizeof names[0]; ++i) {
        PyObject* event = PyObject_GetAttrString(events, names[i]);
        ok = event != NULL;
        if (ok) {
            mask |= PyLong_AsLong(event);
            result = PyObject_CallMethod(monitoring, "register_callback", "iOO", 4, event, callback);
            ok = result != NULL;
            Py_XDECREF(result);
        }
        Py_XDECREF(event);
    }
    if (ok) {
        result = PyObject_CallMethod(monitoring, "set_events", "il", 4, mask);
        ok = result != NULL;
        Py_XDECREF(result);
    }
    Py_XDECREF(callback);
    Py_XDECREF(events);
    if (!ok) {
        PyErr_Print();
    }
    return ok;
}
#endif

int main(int argc, char** argv) {
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    PyStatus status = PyConfig_SetBytesArgv(&config, argc, argv);
    if (!PyStatus_Exception(status)) {
        status = Py_InitializeFromConfig(&config);
    }
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
        Py_ExitStatusException(status);
    }
    const char* floor = getenv("PYCROSCOPE_FLOOR");
    if (floor != NULL && strcmp(floor, "noop_profile") == 0) {
        PyEval_SetProfile(noop_profile, NULL);
    } else if (floor != NULL && strcmp(floor, "noop_eval") == 0) {
        _PyInterpreterState_SetEvalFrameFunc(PyInterpreterState_Get(), noop_eval);
    } else if (floor != NULL && strcmp(floor, "clock_eval") == 0) {
        _PyInterpreterState_SetEvalFrameFunc(PyInterpreterState_Get(), clock_eval);
    } else if (floor != NULL && strstr(floor, "_monitoring") != NULL) {
#if PY_VERSION_HEX >= 0x030C0000
        if (!install_monitoring(strcmp(floor, "clock_monitoring") == 0 ? &clock_callback_def : &noop_callback_def)) {
            return 1;
        }
#else
        fprintf(stderr, "%s: sys.monitoring needs Python 3.12 or later\n", floor);
        return 2;
#endif
    }
    return Py_RunMain();
}
