// `pycroscope calibrate` (see calibrate_command.hpp).

#include "calibrate_command.hpp"

#include "option_value.hpp"

#include "pycroscope/core/clock.hpp"
#include "pycroscope/python/calibration/accuracy_check.hpp"
#include "pycroscope/python/calibration/overhead_calibration.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#ifndef PYCROSCOPE_PYTHON_EXECUTABLE
#define PYCROSCOPE_PYTHON_EXECUTABLE ""
#endif

namespace {

constexpr int exit_usage = 2;

const char* const calibrate_usage =
    "usage: pycroscope calibrate [--backend NAME] [--attempts N]\n"
    "\n"
    "Measures what profiling costs on this machine and Python, and how well it is\n"
    "compensated: the clock's source, resolution and cost per read; the cost of one\n"
    "traced event (a call or a return) on each tracing backend, as `pycroscope profile`\n"
    "measures it at start and subtracts it; and an accuracy check: functions of known\n"
    "cost (10 us to 10 ms, some calling thousands of empty functions, under a deep\n"
    "recursion), their self time per call unprofiled against what the profile reports,\n"
    "with and without compensation (per function, the fastest of a few attempts).\n"
    "\n"
    "options:\n"
    "  --backend NAME     the accuracy check's backend: auto (default), eval_frame, profile,\n"
    "                     monitoring (3.12+)\n"
    "  --attempts N       attempts of the accuracy check, 1..100 (default 5)\n"
    "  -h, --help         show this help\n"
    "\n"
    "exit status: 0; 1 when the interpreter or a measurement failed; 2 for a usage error\n";

int usage_error(const std::string& message) {
    std::fprintf(stderr, "pycroscope calibrate: %s\n\n%s", message.c_str(), calibrate_usage);
    return exit_usage;
}

void print_clock() {
    using namespace pycroscope;
    const clock::Calibration calibration = clock::select(ClockSource::automatic);
    // Resolution: the smallest step between two reads; cost: reads per ns.
    std::uint64_t step = 0;
    for (int i = 0; i < 100000; ++i) {
        const std::uint64_t a = clock::now();
        std::uint64_t b = clock::now();
        while (b == a) {
            b = clock::now();
        }
        step = step == 0 ? b - a : std::min<std::uint64_t>(step, b - a);
    }
    double cost = 1e300;
    for (int r = 0; r < 5; ++r) {
        constexpr int reads = 200000;
        std::uint64_t sink = 0;
        const std::int64_t begin = clock::steady_ns();
        for (int i = 0; i < reads; ++i) {
            sink += clock::now();
        }
        const std::int64_t end = clock::steady_ns();
        cost = std::min(cost, static_cast<double>(end - begin) / reads);
        if (sink == 1) {
            std::puts(""); // keeps the reads
        }
    }
    std::printf("clock\n");
    if (calibration.source == clock::Source::tsc) {
        std::printf("  source          tsc (invariant TSC, %.3f GHz)\n", 1.0 / calibration.ns_per_tick);
    } else {
        std::printf("  source          steady_clock\n");
    }
    std::printf("  resolution      %.2f ns (smallest step between two reads)\n",
                calibration.ticks_to_ns(step));
    std::printf("  cost per read   %.2f ns\n", cost);
}

void print_overheads() {
    using namespace pycroscope::python;
    const CalibrationOptions options;
    std::printf("\nper-event overhead (a traced call is two events; fastest of %d runs of %zu calls of an empty "
                "function)\n",
                options.repetitions, options.calls);
    std::printf("  %-12s %18s %16s %12s\n", "backend", "untraced ns/call", "traced ns/call", "ns/event");
    for (const Backend backend : available_backends()) {
        const OverheadMeasurement m = measure_backend_overhead(backend, options);
        if (!m.valid) {
            std::printf("  %-12s not measured: %s\n", to_string(backend), m.error.c_str());
            continue;
        }
        std::printf("  %-12s %18.1f %16.1f %12.1f\n", to_string(backend), m.untraced_ns_per_call,
                    m.traced_ns_per_call, m.ns_per_event);
    }
}

bool print_accuracy(pycroscope::python::Backend backend, int attempts) {
    using namespace pycroscope::python;
    const AccuracyCheck check = check_accuracy(backend, attempts);
    if (!check.error.empty()) {
        std::fprintf(stderr, "pycroscope calibrate: the accuracy check failed: %s\n", check.error.c_str());
        return false;
    }
    std::printf("\naccuracy check (backend %s, %.1f ns per event subtracted; self time per call, fastest of %d "
                "attempts)\n",
                to_string(check.overhead.backend), check.overhead.ns_per_event, attempts);
    std::printf("  %-12s %9s %13s %15s %8s %13s %8s\n", "function", "children", "unprofiled", "compensated", "error",
                "raw", "error");
    double worst_compensated = 0.0;
    double worst_raw = 0.0;
    for (std::size_t i = 0; i < check.compensated.size() && i < check.raw.size(); ++i) {
        const AccuracyRow& c = check.compensated[i];
        const AccuracyRow& r = check.raw[i];
        std::printf("  %-12s %9llu %10.1f us %12.1f us %+7.1f%% %10.1f us %+7.1f%%\n", c.function.c_str(),
                    static_cast<unsigned long long>(c.children), c.unprofiled_ns / 1e3, c.reported_ns / 1e3,
                    100.0 * c.error(), r.reported_ns / 1e3, 100.0 * r.error());
        worst_compensated = std::max(worst_compensated, std::fabs(c.error()));
        worst_raw = std::max(worst_raw, std::fabs(r.error()));
    }
    std::printf("  largest error: %.1f%% compensated, %.1f%% raw\n", 100.0 * worst_compensated, 100.0 * worst_raw);
    return true;
}

bool start_interpreter() {
    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    const std::string executable = PYCROSCOPE_PYTHON_EXECUTABLE;
    if (!executable.empty()) {
        PyConfig_SetBytesString(&config, &config.program_name, executable.c_str());
    }
    const PyStatus status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
        std::fprintf(stderr, "pycroscope calibrate: the interpreter did not start: %s\n",
                     status.err_msg != nullptr ? status.err_msg : "unknown error");
        return false;
    }
    return true;
}

} // namespace

const char* const calibrate_command_overview =
    "  pycroscope calibrate [--backend NAME] [--attempts N]\n"
    "                     the clock, each backend's cost per event, and compensation's accuracy\n";

bool is_calibrate_command(int argc, char** argv) { return argc >= 2 && std::string_view(argv[1]) == "calibrate"; }

int run_calibrate_command(int argc, char** argv) {
    using pycroscope::python::Backend;
    Backend backend = Backend::automatic;
    int attempts = 5;
    for (int i = 2; i < argc; ++i) {
        const std::string_view arg = argv[i];
        std::string value;
        if (arg == "-h" || arg == "--help") {
            std::fputs(calibrate_usage, stdout);
            return 0;
        }
        int found = pycroscope_cli::option_value(argc, argv, i, "--backend", value);
        if (found < 0) {
            return usage_error("--backend needs a name: auto, eval_frame, profile or monitoring");
        }
        if (found > 0) {
            bool known = value == "auto";
            for (const Backend b : pycroscope::python::available_backends()) {
                if (value == pycroscope::python::to_string(b)) {
                    backend = b;
                    known = true;
                }
            }
            if (!known) {
                return usage_error("unknown or unavailable backend '" + value + "' on Python " PY_VERSION);
            }
            continue;
        }
        found = pycroscope_cli::option_value(argc, argv, i, "--attempts", value);
        if (found < 0) {
            return usage_error("--attempts needs a number from 1 to 100");
        }
        if (found > 0) {
            char* end = nullptr;
            const long n = std::strtol(value.c_str(), &end, 10);
            if (value.empty() || *end != '\0' || n < 1 || n > 100) {
                return usage_error("--attempts needs a number from 1 to 100");
            }
            attempts = static_cast<int>(n);
            continue;
        }
        return usage_error("unknown option '" + std::string(arg) + "'");
    }
    if (!start_interpreter()) {
        return 1;
    }
    bool ok = true;
    try {
        std::printf("pycroscope calibrate (Python %s)\n\n", PY_VERSION);
        print_clock();
        print_overheads();
        ok = print_accuracy(backend, attempts);
    } catch (const std::exception& error) {
        std::fprintf(stderr, "pycroscope calibrate: %s\n", error.what());
        ok = false;
    }
    std::fflush(stdout);
    Py_FinalizeEx();
    return ok ? 0 : 1;
}
