// `pycroscope`: profiles a Python script the way `python3 script.py args`
// would run it, with native zones and the Python tracer in one timeline.
//
//   pycroscope profile [OPTIONS] SCRIPT [ARGS...]
//   pycroscope profile [OPTIONS] -m MODULE [ARGS...]  |  -c CODE [ARGS...]
//   pycroscope report | export ...   a recorded capture, replayed (replay_commands.cpp)
//   pycroscope list | show | compare | history | export-session | import-session,
//   profile --runs N ...             the session store (store_commands.cpp)
//   pycroscope calibrate             the clock, each backend's cost, compensation (calibrate_command.cpp)
//
// The script runs in an embedded interpreter (the libpython this binary links)
// configured like the real `python3`: sys.executable is that interpreter,
// sys.argv is [SCRIPT, ARGS...], sys.path[0] is the script's directory,
// __name__ is "__main__", tracebacks and SystemExit behave the same, and the
// exit status is the script's. -m and -c run as `python3 -m` / `python3 -c` do
// (sys.argv[0] "-m"/"-c", sys.path[0] the working directory / ''). An activated
// virtualenv ($VIRTUAL_ENV) of the same Python version is honoured as python3
// honours it: sys.prefix is the venv and its packages import. The `pycroscope` module is importable: zones,
// marks and counters from the script land in the same session, and
// pycroscope.profile() inside the script joins it (its options are ignored).
//
// The session stops from an atexit handler registered before the script
// runs, so the outputs are written when the script returns, raises, or calls
// sys.exit(), and atexit handlers the script registers are still profiled.
// Not after os._exit() or a fatal signal.
//
// SIGTERM and SIGHUP (what `timeout`, systemd and container runtimes send)
// end the script as Python's default does, at once (no finally blocks, no
// atexit handlers), but first the outputs are written; then the process dies
// by that signal (a shell sees 128+signo: 143, 129). A second signal during
// the writing kills at once. A script that installs its own handler keeps
// it; one inherited ignored (nohup) stays ignored.
//
// Exit status: the script's own; 3 when the script succeeded (0) but an
// output could not be written; 2 for a usage error (see docs/cli.md).
//
// os.fork(): the child keeps running the script but detaches from the
// session. It never stops it or writes the outputs (the parent does); what
// the child runs is not profiled.

#define PYCROSCOPE_PYTHON 1
#include <pycroscope.hpp>

#include "pattern_flags.hpp"
#include "option_value.hpp"
#include "calibrate_command.hpp"
#include "replay_commands.hpp"
#include "store_commands.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <signal.h>
#include <unistd.h>
#endif

#ifndef PYCROSCOPE_PYTHON_EXECUTABLE
// Set by CMake from pkg-config python3-embed; empty: Python's own search.
#define PYCROSCOPE_PYTHON_EXECUTABLE ""
#endif

namespace {

namespace py = pycroscope::python;
using pycroscope_cli::option_value;

constexpr int exit_usage = 2;
constexpr int exit_output_error = 3; // the script succeeded, an output was not written

const char* const usage_text =
    "usage: pycroscope profile [OPTIONS] SCRIPT [ARGS...]\n"
    "       pycroscope profile [OPTIONS] -m MODULE [ARGS...]\n"
    "       pycroscope profile [OPTIONS] -c CODE [ARGS...]\n"
    "\n"
    "Runs SCRIPT like `python3 SCRIPT ARGS...` (or `python3 -m MODULE`, `python3 -c CODE`) and\n"
    "profiles it. Options come before SCRIPT; everything after SCRIPT goes to the script. An\n"
    "activated virtualenv of the same Python version is used as python3 would use it.\n"
    "\n"
    "options:\n"
    "  --output-dir DIR   where to write the outputs (default: ./profiling_results/<YYYYmmdd-HHMMSS>/,\n"
    "                     with -2, -3, ... appended if it exists)\n"
    "modes (docs/cli.md#modes; the default records Python calls, sampled memory, GC, imports, I/O and\n"
    "system resources at a small cost):\n"
    "  --minimal          Python function calls only (no C calls, no memory): the lowest tracing overhead\n"
    "  --full             everything: C calls, lines, exceptions and every allocation\n"
    "  --sample           statistical profile: stack samples (Python frames and native zones) instead of\n"
    "                     tracing; stacks.folded holds sample counts, session.json a hotspots section\n"
    "  --rate HZ          sampling rate with --sample (default 100)\n"
    "  --clock cpu|wall   with --sample: cpu samples running threads in proportion to their CPU time\n"
    "                     (default); wall samples every thread at every tick, running or not\n"
    "\n"
    "what to record (each overrides the mode's choice):\n"
    "  --line, --no-line  record line events or not (default: with --full)\n"
    "  --c-calls          record calls of C functions (default: with --full)\n"
    "  --no-memory        do not track allocations (memory section, memory.folded, memory counter)\n"
    "  --memory-sample N  about one allocation record per N bytes; 0 records every allocation (default:\n"
    "                     65536, and 0 with --full; with --minimal and --sample, memory is tracked only\n"
    "                     when this is given)\n"
    "  --no-gc            do not record garbage collections (gc section, gc spans)\n"
    "  --no-imports       do not time imports (imports section, import spans)\n"
    "  --no-io            do not record file/socket/subprocess/os operations (io section)\n"
    "  --exceptions, --no-exceptions  record raised and caught exceptions or not (exceptions section;\n"
    "                     default: with --full, and on 3.12+ where sys.monitoring makes them cheap). Before\n"
    "                     3.12 they need a trace function; never recorded with --minimal or --sample\n"
    "  --no-system        do not sample process CPU, RSS, threads, disk and network (system section)\n"
    "  --system-interval MS  system sampling interval in milliseconds (default 100, 1..3600000)\n"
    "  --alert METRIC=VALUE[:N]  alert when METRIC exceeds VALUE for N samples (repeatable): cpu=90,\n"
    "                     rss_mb=500, threads=64, disk_write_mb=100, net_rx_mb=10, ...\n"
    "  --sinks LIST       comma-separated outputs among json, folded, capture (default: these three;\n"
    "                     capture.pycro is the compact binary capture), chrome (trace.json), perfetto,\n"
    "                     speedscope, pprof, callgrind (see docs/exporters.md)\n"
    "  --backend NAME     auto (default), eval_frame, profile or monitoring (3.12+)\n"
    "  --no-compensation  keep the tracer's own cost in the times (by default its cost per event is\n"
    "                     measured at start and subtracted; session.json \"overhead_compensation\")\n"
    "  --on-conflict POLICY  when the script sets its own profile/trace function (sys.setprofile,\n"
    "                     sys.settrace, threading.settrace, a debugger, doctest): chain (default: both\n"
    "                     run, the script behaves as under python3), step_aside (that thread goes\n"
    "                     unrecorded, reported), take_over (the script's call does nothing) or fail\n"
    "                     (the script's call raises RuntimeError)\n"
    "  --complexity FUNC  time every call of FUNC against its size (the len() of its first argument that has\n"
    "                     one, else its first int) and fit O(1)..O(2^n): session.json \"complexity\" (docs/complexity.md);\n"
    "                     FUNC is a function of SCRIPT (\"solve\", \"Graph.search\") or \"module:qualname\"\n"
    "  --top N            functions in the report printed at the end (default 15, 0: none)\n"
    "  --runs N           run SCRIPT N times, each in a fresh process, into run-1..run-N of one\n"
    "                     session with runs.json (for `pycroscope compare`; docs/compare.md)\n"
    "  -h, --help         show this help\n"
    "  --version          show the version\n"
    "\n"
    "pattern options (findings, recommendations, health score; docs/analysis.md):\n"
    "outputs: session.json (summary), stacks.folded (flame graphs), capture.pycro (every event, compact),\n"
    "         report.html (the interactive report, one offline file), report.md (summary for terminals and CI)\n";

void print_usage(std::FILE* stream) {
    const std::string text = usage_text;
    const std::string marker = "pattern options";
    const std::size_t at = text.find('\n', text.find(marker)) + 1;
    std::fputs((text.substr(0, at) + pattern_flags_usage + "\n" + text.substr(at)).c_str(), stream);
}

int usage_error(std::string message) {
    const std::string prefix = "pycroscope: ";
    if (message.compare(0, prefix.size(), prefix) == 0) {
        message.erase(0, prefix.size()); // ConfigError messages carry it already
    }
    std::fprintf(stderr, "pycroscope: %s\n\n", message.c_str());
    print_usage(stderr);
    return exit_usage;
}

// What runs: a file, `-m MODULE` or `-c CODE`, as python3 takes them.
enum class Target { file, module, code };

struct Command {
    pycroscope::profile::ProfileOptions options;
    std::size_t top = 15;
    Target target = Target::file;
    std::string module_or_code;
    int script_index = -1; // index in argv of SCRIPT, or of the first argument after -m MODULE / -c CODE
};

// Returns an exit code when the command is complete (help, version, error).
int parse(int argc, char** argv, Command& command, bool& done) {
    done = true;
    if (argc < 2) {
        return usage_error("missing command");
    }
    const std::string_view verb = argv[1];
    if (verb == "-h" || verb == "--help" || verb == "help") {
        std::printf("commands:\n"
                    "  pycroscope profile [OPTIONS] SCRIPT [ARGS...]\n"
                    "                     runs SCRIPT and profiles it (below)\n"
                    "%s%s%s\n",
                    replay_commands_overview, store_commands_overview, calibrate_command_overview);
        print_usage(stdout);
        return 0;
    }
    if (verb == "--version") {
        std::printf("pycroscope %s (Python %s)\n", PYCROSCOPE_VERSION_STRING, PY_VERSION);
        return 0;
    }
    if (verb != "profile") {
        return usage_error("unknown command '" + std::string(verb) + "' (commands: profile, report, export, list, show, "
                           "export-session, import-session, compare, history, calibrate)");
    }
    pycroscope::profile::ProfileOptions& options = command.options;
    bool line_flag = false;
    bool no_line_flag = false;
    bool rate_given = false;
    bool clock_given = false;
    bool system_flag_given = false;
    int i = 2;
    for (; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--") {
            ++i;
            break;
        }
        if (arg.empty() || arg[0] != '-' || arg == "-") {
            break;
        }
        std::string value;
        int matched = 0;
        if (arg == "-m" || arg == "-c") {
            // As for python3, what follows MODULE / CODE goes to the program.
            if (i + 1 >= argc) {
                return usage_error(std::string("argument expected for the ") + argv[i] + " option");
            }
            command.target = arg == "-m" ? Target::module : Target::code;
            command.module_or_code = argv[++i];
            ++i;
            break;
        }
        if (arg == "-h" || arg == "--help") {
            print_usage(stdout);
            return 0;
        } else if (arg == "--minimal") {
            options.minimal = true;
        } else if (arg == "--full") {
            options.full = true;
        } else if (arg == "--c-calls") {
            options.c_calls = true;
        } else if (arg == "--line") {
            line_flag = true;
        } else if (arg == "--no-line") {
            no_line_flag = true;
        } else if (arg == "--no-memory") {
            options.memory = false;
        } else if ((matched = option_value(argc, argv, i, "--memory-sample", value)) != 0) {
            char* end = nullptr;
            const unsigned long long bytes = matched > 0 ? std::strtoull(value.c_str(), &end, 10) : 0;
            if (matched < 0 || value.empty() || end == nullptr || *end != '\0' || value[0] == '-') {
                return usage_error("--memory-sample needs a number of bytes (0: every allocation)");
            }
            options.memory_sample_bytes = bytes;
        } else if (arg == "--no-compensation") {
            options.compensate_overhead = false;
        } else if (arg == "--no-gc") {
            options.gc = false;
        } else if (arg == "--no-imports") {
            options.imports = false;
        } else if (arg == "--no-io") {
            options.io = false;
        } else if (arg == "--no-exceptions") {
            options.exceptions = false;
        } else if (arg == "--exceptions") {
            options.exceptions = true;
        } else if (arg == "--no-system") {
            options.system = false;
        } else if ((matched = option_value(argc, argv, i, "--system-interval", value)) != 0) {
            char* end = nullptr;
            const unsigned long ms = matched > 0 ? std::strtoul(value.c_str(), &end, 10) : 0;
            if (matched < 0 || value.empty() || end == nullptr || *end != '\0' || ms == 0 || ms > 3600000) {
                return usage_error("--system-interval needs a number of milliseconds from 1 to 3600000");
            }
            options.system_interval = std::chrono::milliseconds(ms);
            system_flag_given = true;
        } else if ((matched = option_value(argc, argv, i, "--alert", value)) != 0) {
            if (matched < 0) {
                return usage_error("--alert needs METRIC=VALUE[:SAMPLES], e.g. rss_mb=500 or cpu=90:3");
            }
            try {
                options.system_alerts.push_back(pycroscope::parse_system_alert(value));
            } catch (const std::exception& error) {
                return usage_error(error.what());
            }
            system_flag_given = true;
        } else if ((matched = option_value(argc, argv, i, "--output-dir", value)) != 0) {
            if (matched < 0 || value.empty()) {
                return usage_error("--output-dir needs a directory");
            }
            options.output_dir = value;
        } else if ((matched = option_value(argc, argv, i, "--sinks", value)) != 0) {
            if (matched < 0) {
                return usage_error("--sinks needs a list such as json,folded,chrome");
            }
            options.clear_sinks();
            std::size_t start = 0;
            while (start <= value.size()) {
                const std::size_t comma = std::min(value.find(',', start), value.size());
                const std::string sink = value.substr(start, comma - start);
                if (!options.select_sink(sink)) {
                    return usage_error("unknown sink '" + sink + "' in --sinks (accepted: " +
                                       pycroscope::profile::ProfileOptions::sink_names + ")");
                }
                start = comma + 1;
            }
        } else if ((matched = option_value(argc, argv, i, "--backend", value)) != 0) {
            if (matched < 0) {
                return usage_error("--backend needs a name: auto, eval_frame, profile or monitoring");
            }
            if (value == "auto") {
                options.backend = py::Backend::automatic;
            } else if (value == "eval_frame") {
                options.backend = py::Backend::eval_frame;
            } else if (value == "profile") {
                options.backend = py::Backend::profile;
            } else if (value == "monitoring" && PYCROSCOPE_HAS_SYS_MONITORING) {
                options.backend = py::Backend::monitoring;
            } else if (value == "monitoring") {
                return usage_error("the monitoring backend needs Python 3.12 or newer (this is " PY_VERSION ")");
            } else {
                return usage_error("unknown backend '" + value + "' (accepted: auto, eval_frame, profile, monitoring)");
            }
        } else if ((matched = option_value(argc, argv, i, "--on-conflict", value)) != 0) {
            if (matched < 0 || !py::parse_conflict_policy(value, options.on_conflict)) {
                return usage_error("--on-conflict needs a policy: chain, step_aside, take_over or fail");
            }
        } else if (arg == "--sample") {
            options.sample = true;
        } else if ((matched = option_value(argc, argv, i, "--rate", value)) != 0) {
            char* end = nullptr;
            const double rate = matched > 0 ? std::strtod(value.c_str(), &end) : 0;
            if (matched < 0 || value.empty() || end == nullptr || *end != '\0') {
                return usage_error("--rate needs a number of samples per second (Hz)");
            }
            options.sample_rate = rate;
            rate_given = true;
        } else if ((matched = option_value(argc, argv, i, "--clock", value)) != 0) {
            if (matched < 0 || (value != "cpu" && value != "wall")) {
                return usage_error("--clock needs cpu or wall");
            }
            options.sample_wall_clock = value == "wall";
            clock_given = true;
        } else if ((matched = option_value(argc, argv, i, "--complexity", value)) != 0) {
            if (matched < 0 || value.empty() || value.back() == ':') {
                return usage_error("--complexity needs a function: a name in SCRIPT (solve, Graph.search) or "
                                   "module:qualname");
            }
            options.complexity_function = value;
        } else if ((matched = option_value(argc, argv, i, "--top", value)) != 0) {
            char* end = nullptr;
            const unsigned long top = matched > 0 ? std::strtoul(value.c_str(), &end, 10) : 0;
            if (matched < 0 || value.empty() || end == nullptr || *end != '\0') {
                return usage_error("--top needs a number");
            }
            command.top = top;
        } else if ((matched = parse_pattern_flag(argc, argv, i, options.patterns, value)) != 0) {
            if (matched < 0) {
                return usage_error(value);
            }
        } else {
            return usage_error("unknown option '" + std::string(arg) + "'");
        }
    }
    if (line_flag && no_line_flag) {
        return usage_error("--line and --no-line contradict each other");
    }
    if (!options.system && system_flag_given) {
        return usage_error("--system-interval and --alert need the system monitor; drop --no-system");
    }
    if (options.memory == false && options.memory_sample_bytes.has_value()) {
        return usage_error("--memory-sample and --no-memory contradict each other");
    }
    if (options.minimal + options.full + options.sample > 1) {
        return usage_error("--minimal, --full and --sample are modes: choose one");
    }
    if (options.exceptions == true && (options.minimal || options.sample)) {
        return usage_error("--exceptions needs a trace function: it cannot be combined with --minimal or --sample");
    }
    if (rate_given && !options.sample) {
        return usage_error("--rate needs --sample");
    }
    if (clock_given && !options.sample) {
        return usage_error("--clock needs --sample");
    }
    if (options.sample && !options.complexity_function.empty()) {
        return usage_error("--complexity times every call of the function: it needs tracing, not --sample");
    }
    if (options.sample && (line_flag || options.c_calls == true)) {
        return usage_error("--sample records stack samples; it cannot be combined with --line or --c-calls");
    }
    if (options.sample) {
        try {
            py::detail::validate_rate(options.sample_rate);
        } catch (const std::exception& error) {
            return usage_error(error.what());
        }
    }
    if (line_flag || no_line_flag) {
        options.lines = line_flag;
    }
    if (command.target == Target::file && i >= argc) {
        return usage_error("missing SCRIPT");
    }
    command.script_index = i;
    try {
        (void)options.tracer_options();
    } catch (const std::exception& error) {
        return usage_error(error.what());
    }
    done = false;
    return 0;
}

long long current_pid() {
#if defined(__unix__) || defined(__APPLE__)
    return static_cast<long long>(::getpid());
#else
    return 0;
#endif
}

// Python's own buffered output first, so the report follows the script's.
void flush_python_streams() {
    for (const char* name : {"stdout", "stderr"}) {
        PyObject* stream = PySys_GetObject(name); // borrowed
        if (stream != nullptr && stream != Py_None) {
            PyObject* result = PyObject_CallMethod(stream, "flush", nullptr);
            Py_XDECREF(result);
        }
        PyErr_Clear();
    }
}

int check_status(PyStatus status, PyConfig& config) {
    if (PyStatus_Exception(status)) {
        PyConfig_Clear(&config);
        if (PyStatus_IsExit(status)) {
            return status.exitcode;
        }
        Py_ExitStatusException(status); // prints the error and exits
    }
    return -1;
}

// The end of a run, once, from whichever comes first: the atexit handler
// (the script returned, raised or called sys.exit) or a termination signal.
struct Finish {
    pycroscope::profile::StandardProfile* profile = nullptr;
    std::size_t top = 15;
    long long pid = 0;
    bool started = false;
    bool done = false;
    bool outputs_failed = false;
    int pending_signal = 0; // a termination signal that came while finishing
};
Finish finish_state;

void restore_default_termination();
[[noreturn]] void die_by_signal(int signo);

// Stops the session, writes the outputs and prints the report. GIL held.
void finish_run() {
    Finish& f = finish_state;
    if (f.started || f.profile == nullptr) {
        return;
    }
    f.started = true;
    flush_python_streams();
    try {
        f.profile->stop();
    } catch (const std::exception&) {
        // The failed outputs are listed by report().
    }
    f.profile->write_reports();
    f.outputs_failed = f.profile->outputs_failed();
    const std::string report = f.profile->report(f.top);
    std::fputs(report.c_str(), stderr);
    std::fflush(stderr);
    f.done = true;
    // Everything is on disk: from here a termination signal may kill as by default.
    restore_default_termination();
    if (f.pending_signal != 0) {
        die_by_signal(f.pending_signal);
    }
}

// The status to exit with: the script's, unless it succeeded and an output failed.
int exit_status(int script_status) {
    return script_status == 0 && finish_state.outputs_failed ? exit_output_error : script_status;
}

#if defined(__unix__) || defined(__APPLE__)
constexpr int termination_signals[] = {SIGTERM, SIGHUP};
using SignalHandler = void (*)(int);
// Python's own C-level handler for each termination signal (it trips the
// Python-level handler), saved when ours took its place.
SignalHandler python_c_handler[NSIG] = {};

extern "C" void on_termination_signal(int signo);

// Every termination signal still routed through us goes back to the
// default, so the next one kills at once. Async-signal-safe.
void restore_default_termination() {
    for (const int signo : termination_signals) {
        struct sigaction current {};
        if (::sigaction(signo, nullptr, &current) == 0 && current.sa_handler == &on_termination_signal) {
            struct sigaction fallback {};
            fallback.sa_handler = SIG_DFL;
            sigemptyset(&fallback.sa_mask);
            ::sigaction(signo, &fallback, nullptr);
        }
    }
}

// The first signal: later ones kill by default; this one goes to Python,
// which runs on_python_termination() in the main thread.
extern "C" void on_termination_signal(int signo) {
    const int saved = errno;
    restore_default_termination();
    if (signo > 0 && signo < NSIG && python_c_handler[signo] != nullptr) {
        python_c_handler[signo](signo);
    }
    errno = saved;
}

[[noreturn]] void die_by_signal(int signo) {
    std::fflush(stdout);
    std::fflush(stderr);
    struct sigaction fallback {};
    fallback.sa_handler = SIG_DFL;
    sigemptyset(&fallback.sa_mask);
    ::sigaction(signo, &fallback, nullptr);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signo);
    ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    ::raise(signo);
    std::_Exit(128 + signo); // not reached: the signal is fatal by default
}

// The Python-level handler of SIGTERM and SIGHUP: write, then die by the signal.
PyObject* on_python_termination(PyObject*, PyObject* args) {
    int signo = 0;
    PyObject* frame = nullptr;
    if (!PyArg_ParseTuple(args, "i|O", &signo, &frame)) {
        return nullptr;
    }
    Finish& f = finish_state;
    if (current_pid() != f.pid) {
        die_by_signal(signo); // a fork child: Python's default
    }
    if (f.started && !f.done) {
        f.pending_signal = signo; // finish_run() is writing: it dies when done
        Py_RETURN_NONE;
    }
    std::fprintf(stderr, "pycroscope: %s received: stopping the script and writing the outputs\n",
                 signo == SIGTERM ? "SIGTERM" : signo == SIGHUP ? "SIGHUP" : "signal");
    finish_run();
    die_by_signal(signo);
}

PyMethodDef termination_method = {
    "pycroscope_termination_handler",
    reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&on_python_termination)),
    METH_VARARGS,
    "Writes pycroscope's outputs, then dies by the signal (SIGTERM, SIGHUP).",
};

// GIL held, main thread, before the script runs. Takes SIGTERM and SIGHUP
// where their disposition is the default; an ignored one stays ignored.
void install_termination_handlers() {
    PyObject* module = PyImport_ImportModule("_signal"); // the C module: no enum import in the profile
    PyObject* handler = module != nullptr ? PyCFunction_New(&termination_method, nullptr) : nullptr;
    PyObject* fallback = module != nullptr ? PyObject_GetAttrString(module, "SIG_DFL") : nullptr;
    for (const int signo : termination_signals) {
        if (handler == nullptr || fallback == nullptr) {
            break;
        }
        PyObject* current = PyObject_CallMethod(module, "getsignal", "i", signo);
        const bool is_default = current != nullptr && PyObject_RichCompareBool(current, fallback, Py_EQ) == 1;
        Py_XDECREF(current);
        if (!is_default) {
            continue;
        }
        PyObject* previous = PyObject_CallMethod(module, "signal", "iO", signo, handler);
        if (previous == nullptr) {
            break;
        }
        Py_DECREF(previous);
        struct sigaction python_action {};
        if (::sigaction(signo, nullptr, &python_action) != 0 || (python_action.sa_flags & SA_SIGINFO) != 0 ||
            python_action.sa_handler == SIG_DFL || python_action.sa_handler == SIG_IGN) {
            continue; // Python's handler stays: the first signal still writes, a second waits its turn
        }
        python_c_handler[signo] = python_action.sa_handler;
        struct sigaction ours = python_action;
        ours.sa_handler = &on_termination_signal;
        ::sigaction(signo, &ours, nullptr);
    }
    if (PyErr_Occurred()) {
        std::fputs("pycroscope: warning: SIGTERM/SIGHUP will not write the outputs: ", stderr);
        PyErr_Print();
    }
    Py_XDECREF(fallback);
    Py_XDECREF(handler);
    Py_XDECREF(module);
}
#else
void restore_default_termination() {}
[[noreturn]] void die_by_signal(int) { std::_Exit(1); }
void install_termination_handlers() {}
#endif

// The interpreter path python3 would run under an activated virtualenv
// ($VIRTUAL_ENV/bin/python3, whose pyvenv.cfg makes sys.prefix the venv), or
// "" when none is active or its Python version is not the one linked here.
std::string virtualenv_python() {
    const char* venv = std::getenv("VIRTUAL_ENV");
    if (venv == nullptr || *venv == '\0') {
        return "";
    }
    const std::string root = venv;
    std::FILE* cfg = std::fopen((root + "/pyvenv.cfg").c_str(), "r");
    if (cfg == nullptr) {
        std::fprintf(stderr, "pycroscope: VIRTUAL_ENV=%s has no pyvenv.cfg; not using it\n", venv);
        return "";
    }
    std::string version;
    char line[4096];
    while (std::fgets(line, sizeof line, cfg) != nullptr) {
        std::string_view text(line);
        const std::size_t equals = text.find('=');
        if (equals == std::string_view::npos) {
            continue;
        }
        std::string_view key = text.substr(0, equals);
        std::string_view value = text.substr(equals + 1);
        const auto trim = [](std::string_view v) {
            while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) {
                v.remove_prefix(1);
            }
            while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\n' || v.back() == '\r')) {
                v.remove_suffix(1);
            }
            return v;
        };
        key = trim(key);
        if (key == "version" || key == "version_info") {
            version = std::string(trim(value));
        }
    }
    std::fclose(cfg);
    const std::string ours = std::to_string(PY_MAJOR_VERSION) + "." + std::to_string(PY_MINOR_VERSION);
    if (version.compare(0, ours.size() + 1, ours + ".") != 0 && version != ours) {
        std::fprintf(stderr,
                     "pycroscope: the active virtualenv %s is Python %s; this pycroscope embeds Python %s, so "
                     "its packages are not used\n",
                     venv, version.empty() ? "of unknown version" : version.c_str(), ours.c_str());
        return "";
    }
    for (const char* name : {"/bin/python3", "/bin/python"}) {
        const std::string candidate = root + name;
        if (std::FILE* file = std::fopen(candidate.c_str(), "rb")) {
            std::fclose(file);
            return candidate;
        }
    }
    return "";
}

} // namespace

int main(int argc, char** argv) {
    if (is_calibrate_command(argc, argv)) {
        return run_calibrate_command(argc, argv); // an interpreter of its own, no script
    }
    if (argc >= 2 && is_replay_command(argv[1])) {
        return run_replay_command(argc, argv); // no interpreter: the capture is replayed
    }
    if (is_store_command(argc, argv)) {
        return run_store_command(argc, argv); // the store's commands, and profile --runs N
    }
    const std::int64_t started_unix_ns = unix_time_ns();
    Command command;
    bool done = false;
    const int parsed = parse(argc, argv, command, done);
    if (done) {
        return parsed;
    }
    // What the session calls the program, and sys.argv as python3 would set it.
    const std::string program = command.target == Target::file     ? std::string(argv[command.script_index])
                                : command.target == Target::module ? "-m " + command.module_or_code
                                                                   : std::string("-c");
    const char* script = program.c_str();
    std::vector<char*> python_argv;
    std::string dash_option = command.target == Target::module ? "-m" : "-c";
    if (command.target != Target::file) {
        python_argv.push_back(dash_option.data());
    }
    for (int i = command.script_index; i < argc; ++i) {
        python_argv.push_back(argv[i]);
    }

    // Same message and status as `python3 missing.py`, before anything starts.
    if (command.target != Target::file) {
        // python3 reports a missing module or a bad command itself.
    } else if (std::FILE* file = std::fopen(script, "rb")) {
        std::fclose(file);
    } else {
        const int error = errno;
        std::fprintf(stderr, "pycroscope: can't open file '%s': [Errno %d] %s\n", script, error,
                     std::strerror(error));
        return exit_usage;
    }

    // The output directory and the session exist before the interpreter.
    std::unique_ptr<pycroscope::profile::StandardProfile> profile;
    try {
        command.options.config.process_name = script;
        command.options.script = script;
        command.options.config.metadata = {{"script", script}, {"command", "pycroscope profile"}};
        profile = std::make_unique<pycroscope::profile::StandardProfile>(command.options);
    } catch (const std::exception& error) {
        std::fprintf(stderr, "%s\n", error.what());
        return exit_usage;
    }

    // manifest.json when the process exits: after main returns, or inside
    // Py_RunMain when the script calls sys.exit() (Python exits there).
    record_session_manifest_at_exit(profile->output_dir(), argc, argv, command.script_index, PY_VERSION,
                                    started_unix_ns);

    py::register_builtin_module();

    // The session starts before the interpreter, so the memory peak counts
    // from interpreter start: Py_PreInitialize, then the allocator hooks
    // (the order every PYTHONMALLOC setting survives), then the session; the
    // tracer attaches once the interpreter runs.
    {
        PyPreConfig preconfig;
        PyPreConfig_InitPythonConfig(&preconfig);
        preconfig.parse_argv = 0;
        const PyStatus status = Py_PreInitialize(&preconfig);
        if (PyStatus_Exception(status)) {
            if (PyStatus_IsExit(status)) {
                return status.exitcode;
            }
            Py_ExitStatusException(status);
        }
    }
    if (command.options.records_memory()) {
        py::install_memory_hooks();
    }
    try {
        pycroscope::set_thread_name("MainThread");
        profile->start();
    } catch (const std::exception& error) {
        std::fprintf(stderr, "%s\n", error.what());
        return 1;
    }

    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.parse_argv = 0; // the script's arguments are not Python's options
    int code = -1;
    const std::string venv_python = virtualenv_python();
    const std::string executable = venv_python.empty() ? PYCROSCOPE_PYTHON_EXECUTABLE : venv_python;
    if (!executable.empty()) {
        code = check_status(PyConfig_SetBytesString(&config, &config.program_name, executable.c_str()), config);
        if (code < 0) {
            code = check_status(PyConfig_SetBytesString(&config, &config.executable, executable.c_str()), config);
        }
        if (code >= 0) {
            return code;
        }
    }
    code = check_status(
        PyConfig_SetBytesArgv(&config, static_cast<Py_ssize_t>(python_argv.size()), python_argv.data()), config);
    if (code >= 0) {
        return code;
    }
    wchar_t** run_field = command.target == Target::file     ? &config.run_filename
                          : command.target == Target::module ? &config.run_module
                                                             : &config.run_command;
    const std::string run_value = command.target == Target::file   ? std::string(script)
                                  : command.target == Target::code ? command.module_or_code + "\n"
                                                                   : command.module_or_code;
    code = check_status(PyConfig_SetBytesString(&config, run_field, run_value.c_str()), config);
    if (code >= 0) {
        return code;
    }
    code = check_status(Py_InitializeFromConfig(&config), config);
    if (code >= 0) {
        return code;
    }
    PyConfig_Clear(&config);

    // The GIL is held from here until Py_RunMain.
    const long long pid = current_pid();
    try {
        profile->attach_python();
        pycroscope::profile::StandardProfile* running = profile.get();
        const std::size_t top = command.top;
        // pycroscope.profile() in the script joins this session.
        py::set_profile_handler(py::ProfileHandler{
            nullptr,
            [running](PyObject*) { return running->output_dir(); },
            [running]() { return py::ProfileResult{running->collectors(), running->files()}; },
            nullptr, // the session is stopped by the handler below
        });
        finish_state.profile = running;
        finish_state.top = top;
        finish_state.pid = pid;
        py::stop_at_exit([] { finish_run(); });
        install_termination_handlers();
    } catch (const std::exception& error) {
        std::fprintf(stderr, "%s\n", error.what());
        profile.reset();
        Py_FinalizeEx();
        return 1;
    }

    // Runs __main__ exactly as `python3 SCRIPT` would, then finalizes the
    // interpreter (our atexit handler stops the session first).
    const int status = Py_RunMain();

    if (current_pid() != pid) {
        // A fork child that returned here: the session belongs to the parent.
        std::fflush(stdout);
        std::fflush(stderr);
        std::_Exit(status);
    }
    profile.reset();
    return exit_status(status);
}
