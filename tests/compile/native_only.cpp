// A native-only host: built with include/ on the path and no Python headers
// anywhere, proving the core and the sinks never need <Python.h>.
#include <pycroscope.hpp>

#ifdef Py_PYTHON_H
#error "pycroscope.hpp pulled in Python.h for a native-only host"
#endif

#include <cstdio>

static int traced(int n) {
    PYCRO_SCOPE();
    return n <= 1 ? n : traced(n - 1) + 1;
}

int main() {
    pycroscope::Session<pycroscope::NativeZones> session;
    session.start();
    const int result = traced(10);
    const auto summary = session.stop();
    // 10 nested zones, begin and end each.
    if (result != 10 || summary.total_events != 20 || summary.total_lost != 0) {
        std::fprintf(stderr, "unexpected: result=%d events=%llu lost=%llu\n", result,
                     static_cast<unsigned long long>(summary.total_events),
                     static_cast<unsigned long long>(summary.total_lost));
        return 1;
    }
    return 0;
}
