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
 * Anything else (or unset) installs nothing.
 *
 *   cc -O2 floor_launcher.c $(pkg-config --cflags --libs python3-embed)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

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
    }
    return Py_RunMain();
}
