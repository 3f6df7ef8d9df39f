// `pycroscope`: profiles a Python script the way `python3 script.py args`
// would run it, with native zones and the Python tracer in one timeline.
//
//   pycroscope profile [OPTIONS] SCRIPT [ARGS...]
//
// The script runs in an embedded interpreter (the libpython this binary links)
// configured like the real `python3`: sys.executable is that interpreter,
// sys.argv is [SCRIPT, ARGS...], sys.path[0] is the script's directory,
// __name__ is "__main__", tracebacks and SystemExit behave the same, and the
// exit status is the script's. The `pycroscope` module is importable: zones,
// marks and counters from the script land in the same session, and
// pycroscope.profile() inside the script joins it (its options are ignored).
//
// The session stops from an atexit handler registered before the script
// runs, so the outputs are written when the script returns, raises, or calls
// sys.exit(), and atexit handlers the script registers are still profiled.
// Not after os._exit() or a fatal signal.
//
// os.fork(): the child keeps running the script but detaches from the
// session. It never stops it or writes the outputs (the parent does); what
// the child runs is not profiled.

#define PYCROSCOPE_PYTHON 1
#include <pycroscope.hpp>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

#ifndef PYCROSCOPE_PYTHON_EXECUTABLE
// Set by CMake from pkg-config python3-embed; empty: Python's own search.
#define PYCROSCOPE_PYTHON_EXECUTABLE ""
#endif

namespace {

namespace py = pycroscope::python;

constexpr int exit_usage = 2;

const char* const usage_text =
    "usage: pycroscope profile [OPTIONS] SCRIPT [ARGS...]\n"
    "\n"
    "Runs SCRIPT like `python3 SCRIPT ARGS...` and profiles it. Options come before\n"
    "SCRIPT; everything after SCRIPT goes to the script.\n"
    "\n"
    "options:\n"
    "  --output-dir DIR   where to write the outputs (default: ./profiling_results/<YYYYmmdd-HHMMSS>/,\n"
    "                     with -2, -3, ... appended if it exists)\n"
    "  --minimal          Python function calls only, no C calls (lowest overhead: eval_frame backend)\n"
    "  --line             record line events (profile backend)\n"
    "  --no-line          do not record line events (the default)\n"
    "  --no-memory        accepted for compatibility; there is no memory collector yet\n"
    "  --sinks LIST       comma-separated outputs among json, folded, chrome (default: all three)\n"
    "  --backend NAME     auto (default), eval_frame or profile\n"
    "  --top N            functions in the report printed at the end (default 15, 0: none)\n"
    "  -h, --help         show this help\n"
    "  --version          show the version\n"
    "\n"
    "outputs: session.json (summary), stacks.folded (flame graphs), trace.json (ui.perfetto.dev)\n";

int usage_error(std::string message) {
    const std::string prefix = "pycroscope: ";
    if (message.compare(0, prefix.size(), prefix) == 0) {
        message.erase(0, prefix.size()); // ConfigError messages carry it already
    }
    std::fprintf(stderr, "pycroscope: %s\n\n%s", message.c_str(), usage_text);
    return exit_usage;
}

struct Command {
    py::ProfileOptions options;
    std::size_t top = 15;
    int script_index = -1; // index in argv of SCRIPT
};

// Returns an exit code when the command is complete (help, version, error).
int parse(int argc, char** argv, Command& command, bool& done) {
    done = true;
    if (argc < 2) {
        return usage_error("missing command");
    }
    const std::string_view verb = argv[1];
    if (verb == "-h" || verb == "--help" || verb == "help") {
        std::fputs(usage_text, stdout);
        return 0;
    }
    if (verb == "--version") {
        std::printf("pycroscope %s (Python %s)\n", PYCROSCOPE_VERSION_STRING, PY_VERSION);
        return 0;
    }
    if (verb != "profile") {
        return usage_error("unknown command '" + std::string(verb) + "' (the command is: profile)");
    }
    py::ProfileOptions& options = command.options;
    bool line_flag = false;
    bool no_line_flag = false;
    int i = 2;
    // The value of --name VALUE or --name=VALUE.
    auto value_of = [&](std::string_view arg, std::string_view name, std::string& value) -> int {
        if (arg.size() > name.size() && arg.substr(0, name.size()) == name && arg[name.size()] == '=') {
            value = std::string(arg.substr(name.size() + 1));
            return 1;
        }
        if (arg == name) {
            if (i + 1 >= argc) {
                return -1;
            }
            value = argv[++i];
            return 1;
        }
        return 0;
    };
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
        if (arg == "-h" || arg == "--help") {
            std::fputs(usage_text, stdout);
            return 0;
        } else if (arg == "--minimal") {
            options.minimal = true;
        } else if (arg == "--line") {
            line_flag = true;
        } else if (arg == "--no-line") {
            no_line_flag = true;
        } else if (arg == "--no-memory") {
            // No memory collector exists yet: nothing to turn off.
        } else if ((matched = value_of(arg, "--output-dir", value)) != 0) {
            if (matched < 0 || value.empty()) {
                return usage_error("--output-dir needs a directory");
            }
            options.output_dir = value;
        } else if ((matched = value_of(arg, "--sinks", value)) != 0) {
            if (matched < 0) {
                return usage_error("--sinks needs a list such as json,folded,chrome");
            }
            options.json = options.folded = options.chrome = false;
            std::size_t start = 0;
            while (start <= value.size()) {
                const std::size_t comma = std::min(value.find(',', start), value.size());
                const std::string sink = value.substr(start, comma - start);
                if (sink == "json") {
                    options.json = true;
                } else if (sink == "folded") {
                    options.folded = true;
                } else if (sink == "chrome") {
                    options.chrome = true;
                } else {
                    return usage_error("unknown sink '" + sink + "' in --sinks (accepted: json, folded, chrome)");
                }
                start = comma + 1;
            }
        } else if ((matched = value_of(arg, "--backend", value)) != 0) {
            if (matched < 0) {
                return usage_error("--backend needs a name: auto, eval_frame or profile");
            }
            if (value == "auto") {
                options.backend = py::Backend::automatic;
            } else if (value == "eval_frame") {
                options.backend = py::Backend::eval_frame;
            } else if (value == "profile") {
                options.backend = py::Backend::profile;
            } else {
                return usage_error("unknown backend '" + value + "' (accepted: auto, eval_frame, profile)");
            }
        } else if ((matched = value_of(arg, "--top", value)) != 0) {
            char* end = nullptr;
            const unsigned long top = matched > 0 ? std::strtoul(value.c_str(), &end, 10) : 0;
            if (matched < 0 || value.empty() || end == nullptr || *end != '\0') {
                return usage_error("--top needs a number");
            }
            command.top = top;
        } else {
            return usage_error("unknown option '" + std::string(arg) + "'");
        }
    }
    if (line_flag && no_line_flag) {
        return usage_error("--line and --no-line contradict each other");
    }
    options.lines = line_flag;
    if (i >= argc) {
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

} // namespace

int main(int argc, char** argv) {
    Command command;
    bool done = false;
    const int parsed = parse(argc, argv, command, done);
    if (done) {
        return parsed;
    }
    const char* script = argv[command.script_index];

    // Same message and status as `python3 missing.py`, before anything starts.
    if (std::FILE* file = std::fopen(script, "rb")) {
        std::fclose(file);
    } else {
        const int error = errno;
        std::fprintf(stderr, "pycroscope: can't open file '%s': [Errno %d] %s\n", script, error,
                     std::strerror(error));
        return exit_usage;
    }

    // The output directory and the session exist before the interpreter.
    std::unique_ptr<py::StandardProfile> profile;
    try {
        command.options.config.process_name = script;
        command.options.config.metadata = {{"script", script}, {"command", "pycroscope profile"}};
        profile = std::make_unique<py::StandardProfile>(command.options);
    } catch (const std::exception& error) {
        std::fprintf(stderr, "%s\n", error.what());
        return exit_usage;
    }

    py::register_builtin_module();

    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.parse_argv = 0; // the script's arguments are not Python's options
    int code = -1;
    const std::string executable = PYCROSCOPE_PYTHON_EXECUTABLE;
    if (!executable.empty()) {
        code = check_status(PyConfig_SetBytesString(&config, &config.program_name, executable.c_str()), config);
        if (code < 0) {
            code = check_status(PyConfig_SetBytesString(&config, &config.executable, executable.c_str()), config);
        }
        if (code >= 0) {
            return code;
        }
    }
    code = check_status(PyConfig_SetBytesArgv(&config, argc - command.script_index, argv + command.script_index),
                        config);
    if (code >= 0) {
        return code;
    }
    code = check_status(PyConfig_SetBytesString(&config, &config.run_filename, script), config);
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
        pycroscope::set_thread_name("MainThread");
        profile->start();
        py::StandardProfile* running = profile.get();
        const std::size_t top = command.top;
        // pycroscope.profile() in the script joins this session.
        py::set_profile_handler(py::ProfileHandler{
            nullptr,
            [running](PyObject*) { return running->output_dir(); },
            [running]() { return py::ProfileResult{py::StandardProfile::collectors(), running->files()}; },
        });
        py::stop_at_exit([running, top] {
            flush_python_streams();
            try {
                running->stop();
            } catch (const std::exception&) {
                // The failed outputs are listed by report().
            }
            const std::string report = running->report(top);
            std::fputs(report.c_str(), stderr);
            std::fflush(stderr);
        });
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
    return status;
}
