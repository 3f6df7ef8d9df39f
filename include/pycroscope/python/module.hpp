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
//     with pycroscope.profile(output_dir="out") as session:
//         ...
//     print(session.duration, session.get_completed_profilers())
//
// pycroscope.profile() calls the host's ProfileHandler (set_profile_handler);
// without one it runs a StandardProfile: native zones + the Python tracer,
// writing session.json, stacks.folded and trace.json into its output directory.
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
#include "pycroscope/core/system_monitor.hpp"
#include "pycroscope/core/thread_registry.hpp"
#include "pycroscope/core/zone.hpp"
#include "pycroscope/python/cpython.hpp"
#include "pycroscope/python/exception_collector.hpp"
#include "pycroscope/python/frame_walk.hpp"
#include "pycroscope/python/gc_collector.hpp"
#include "pycroscope/python/import_collector.hpp"
#include "pycroscope/python/io_collector.hpp"
#include "pycroscope/python/memory_collector.hpp"
#include "pycroscope/python/memory_sections.hpp"
#include "pycroscope/python/sampler.hpp"
#include "pycroscope/python/shutdown.hpp"
#include "pycroscope/python/summary_sections.hpp"
#include "pycroscope/python/tracer.hpp"
#include "pycroscope/sinks/chrome_trace_sink.hpp"
#include "pycroscope/sinks/export_sink.hpp"
#include "pycroscope/sinks/folded_stack_sink.hpp"
#include "pycroscope/sinks/hotspot_sections.hpp"
#include "pycroscope/sinks/json_summary_sink.hpp"
#include "pycroscope/sinks/memory_folded_sink.hpp"
#include "pycroscope/sinks/sample_profile_sink.hpp"
#include "pycroscope/sinks/sampled_stack_sink.hpp"
#include "pycroscope/sinks/system_sections.hpp"
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

inline std::string local_timestamp() {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
#if defined(_WIN32)
    localtime_s(&tm, &now);
#else
    localtime_r(&now, &tm);
#endif
    char text[32];
    std::strftime(text, sizeof text, "%Y%m%d-%H%M%S", &tm);
    return text;
}

} // namespace detail

// ---------------------------------------------------------------------------
// The standard profile: what `pycroscope profile script.py` and a bare
// pycroscope.profile() record.
// ---------------------------------------------------------------------------

struct ProfileOptions {
    // Empty: ./profiling_results/<YYYYmmdd-HHMMSS>/, with -2, -3, ... appended
    // when that directory exists. Otherwise created if missing and reused if present.
    std::string output_dir;
    bool minimal = false;        // Python functions only (no C calls): the eval_frame backend
    bool lines = false;          // line events (profile backend with a trace function)
    std::optional<bool> c_calls; // default: on unless minimal or backend eval_frame
    Backend backend = Backend::automatic;
    bool json = true;   // session.json
    bool folded = true; // stacks.folded
    bool chrome = true; // trace.json
    // Exporters (sinks/export_sink.hpp), off by default: trace.perfetto-trace,
    // profile.speedscope.json, profile.pb.gz (and alloc.pb.gz with memory), callgrind.out.
    bool perfetto = false;
    bool speedscope = false;
    bool pprof = false;
    bool callgrind = false;
    static constexpr const char* sink_names = "json, folded, chrome, perfetto, speedscope, pprof, callgrind";

    // Selects the output named name (one of sink_names); false when unknown.
    bool select_sink(std::string_view name) {
        bool* const flags[] = {&json, &folded, &chrome, &perfetto, &speedscope, &pprof, &callgrind};
        const char* const names[] = {"json", "folded", "chrome", "perfetto", "speedscope", "pprof", "callgrind"};
        for (std::size_t i = 0; i < 7; ++i) {
            if (name == names[i]) {
                *flags[i] = true;
                return true;
            }
        }
        return false;
    }
    void clear_sinks() { json = folded = chrome = perfetto = speedscope = pprof = callgrind = false; }
    bool any_sink() const { return json || folded || chrome || perfetto || speedscope || pprof || callgrind; }

    // Allocations of the PyMem domains (memory section, memory.folded, the
    // chrome trace's memory counter). memory_sample_bytes: 0 records every
    // allocation, N about one per N bytes (MemoryOptions::sample_bytes).
    bool memory = true;
    std::uint64_t memory_sample_bytes = 0;
    // Sampling mode: the Sampler instead of the tracer; stacks.folded holds
    // sample counts and session.json a "hotspots" section.
    bool sample = false;
    double sample_rate = 100.0; // Hz
    // Resource collectors (sections gc, imports, io, exceptions, system).
    // Exceptions need the profile backend's trace function, which sees every
    // line: off with minimal, eval_frame or sample.
    bool gc = true;
    bool imports = true;
    bool io = true;
    bool exceptions = true;
    bool system = true;
    std::chrono::milliseconds system_interval{100};
    std::vector<SystemAlertRule> system_alerts;
    Config config;

    // The MemoryCollector options these resolve to.
    MemoryOptions memory_options() const {
        MemoryOptions resolved;
        resolved.enabled = memory;
        resolved.sample_bytes = memory_sample_bytes;
        return resolved;
    }

    // The tracer options these resolve to; throws ConfigError on a contradiction.
    TracerOptions tracer_options() const {
        TracerOptions tracer;
        tracer.backend = backend;
        tracer.lines = lines;
        if (minimal && c_calls.value_or(false)) {
            throw ConfigError("minimal profiling records Python functions only; it cannot be combined with C calls");
        }
        const bool c = c_calls.value_or(!minimal && backend != Backend::eval_frame);
        if (backend == Backend::eval_frame) {
#if !PYCROSCOPE_HAS_EVAL_FRAME_BACKEND
            throw ConfigError("the eval_frame backend is not available on Python " PY_VERSION
                              "; use the profile backend");
#endif
            if (c) {
                throw ConfigError("the eval_frame backend sees Python functions only; it cannot record C calls");
            }
            if (lines) {
                throw ConfigError("the eval_frame backend cannot record lines; use the profile backend");
            }
        }
        tracer.c_calls = c;
        return tracer;
    }
};

namespace detail {

// Creates the output directory (see ProfileOptions::output_dir).
inline std::filesystem::path make_output_dir(const std::string& requested) {
    namespace fs = std::filesystem;
    std::error_code error;
    if (!requested.empty()) {
        const fs::path dir(requested);
        fs::create_directories(dir, error);
        if (error || !fs::is_directory(dir)) {
            throw ConfigError("cannot create output directory '" + requested +
                              "': " + (error ? error.message() : std::string("not a directory")));
        }
        return dir;
    }
    const fs::path root("profiling_results");
    fs::create_directories(root, error);
    if (error) {
        throw ConfigError("cannot create output directory '" + root.string() + "': " + error.message());
    }
    const std::string stamp = local_timestamp();
    for (int attempt = 1; attempt <= 1000; ++attempt) {
        const fs::path candidate = root / (attempt == 1 ? stamp : stamp + "-" + std::to_string(attempt));
        if (fs::create_directory(candidate, error)) {
            return candidate;
        }
        if (error) {
            throw ConfigError("cannot create output directory '" + candidate.string() + "': " + error.message());
        }
    }
    throw ConfigError("cannot create an output directory under '" + root.string() + "' for " + stamp);
}

} // namespace detail

// Native zones + the Python tracer, into the built-in sinks of one output
// directory. Construct anywhere (it creates the directory and nothing else);
// start() and stop() follow Session's rules (start with the GIL held).
class StandardProfile {
public:
    // ExceptionCollector needs the tracer before it. Collectors that need a
    // running interpreter start in attach_python().
    using SessionType = Session<NativeZones, PythonTracer, ExceptionCollector, GcCollector, ImportCollector,
                                IoCollector, MemoryCollector, Sampler, SystemMonitor>;

    explicit StandardProfile(ProfileOptions options)
        : options_(std::move(options)), tracer_options_(options_.tracer_options()),
          session_(memory_tracking_config(options_.config, options_.memory_options())) {
        if (!options_.any_sink()) {
            throw ConfigError(std::string("no output selected: enable at least one of ") + ProfileOptions::sink_names);
        }
        dir_ = detail::make_output_dir(options_.output_dir);
        PythonTracer& tracer = session_.collector<PythonTracer>();
        tracer.options = tracer_options_;
        tracer.options.deferred = true; // start() may precede Py_Initialize: see attach_python()
        tracer.options.enabled = !options_.sample;
        exceptions_ = options_.exceptions && !options_.sample && !options_.minimal &&
                      tracer.options.backend != Backend::eval_frame;
        if (exceptions_) {
            tracer.options.exceptions = true;
            tracer.options.backend = Backend::profile;
        }
        // Started by attach_python(), once the interpreter runs.
        session_.collector<ExceptionCollector>().enabled = false;
        session_.collector<GcCollector>().enabled = false;
        session_.collector<ImportCollector>().enabled = false;
        session_.collector<IoCollector>().enabled = false;
        SystemMonitor& system = session_.collector<SystemMonitor>();
        system.options.enabled = options_.system;
        system.options.interval = options_.system_interval;
        system.options.alerts = options_.system_alerts;
        if (options_.system) {
            system.options.validate(); // ConfigError now, not at start()
        }
        // A model reads every drained event: only collectors that run get one,
        // and with it their session.json section (zeros would read as "none happened").
        if (options_.gc) {
            gc_model_ = session_.add_sink<GcModel>();
        }
        if (options_.imports) {
            import_model_ = session_.add_sink<ImportModel>();
        }
        if (options_.io) {
            io_model_ = session_.add_sink<IoModel>();
        }
        if (exceptions_) {
            exception_model_ = session_.add_sink<ExceptionModel>();
        }
        Sampler& sampler = session_.collector<Sampler>();
        sampler.options.enabled = options_.sample;
        sampler.options.deferred = true; // samples once the interpreter runs
        if (options_.sample) {
            sampler.set_rate(options_.sample_rate); // ConfigError now, not at start()
            if (options_.folded) {
                sampled_stacks_ = session_.add_sink<sinks::SampledStackSink>((dir_ / "stacks.folded").string());
                sample_profile_ = &sampled_stacks_->profile();
            } else {
                sample_profile_sink_ = session_.add_sink<sinks::SampleProfileSink>();
                sample_profile_ = &sample_profile_sink_->profile();
            }
        }
        MemoryCollector& memory = session_.collector<MemoryCollector>();
        memory.options = options_.memory_options();
        if (options_.memory) {
            memory_model_ = add_memory_model(session_);
        }
        if (options_.json) {
            json_ = session_.add_sink<sinks::JsonSummarySink>((dir_ / "session.json").string());
            add_summary_sections(*json_, tracer);
            if (sample_profile_ != nullptr) {
                sinks::HotspotOptions hotspots;
                hotspots.rate_hz = options_.sample_rate;
                sinks::add_hotspot_section(*json_, *sample_profile_, hotspots);
            }
            if (memory_model_) {
                add_memory_section(*json_, memory_model_, memory);
            }
            if (gc_model_) {
                add_gc_section(*json_, *gc_model_);
            }
            if (import_model_) {
                add_imports_section(*json_, *import_model_);
            }
            if (io_model_) {
                add_io_section(*json_, *io_model_);
            }
            if (exception_model_) {
                add_exceptions_section(*json_, *exception_model_);
            }
            if (options_.system) {
                sinks::add_system_section(*json_, system);
            }
            files_.push_back(json_->path());
        }
        if (sampled_stacks_ != nullptr) {
            files_.push_back(sampled_stacks_->path());
        } else if (options_.folded) {
            files_.push_back(session_.add_sink<sinks::FoldedStackSink>((dir_ / "stacks.folded").string())->path());
            if (memory_model_) {
                files_.push_back(
                    session_.add_sink<sinks::MemoryFoldedSink>((dir_ / "memory.folded").string())->path());
            }
        }
        if (options_.chrome) {
            files_.push_back(session_.add_sink<sinks::ChromeTraceSink>((dir_ / "trace.json").string())->path());
        }
        const std::uint64_t interval_ns =
            options_.sample ? static_cast<std::uint64_t>(1e9 / options_.sample_rate + 0.5) : 0;
        const std::pair<bool, const char*> exports[] = {{options_.perfetto, "perfetto"},
                                                        {options_.speedscope, "speedscope"},
                                                        {options_.pprof, "pprof"},
                                                        {options_.pprof && options_.memory, "pprof-alloc"},
                                                        {options_.callgrind, "callgrind"}};
        for (const auto& format : exports) {
            if (format.first) {
                const std::string path = (dir_ / sinks::export_file_name(format.second)).string();
                session_.add_sink(sinks::make_export_sink(format.second, path, interval_ns));
                files_.push_back(path);
            }
        }
    }
    StandardProfile(const StandardProfile&) = delete;
    StandardProfile& operator=(const StandardProfile&) = delete;

    // Before Py_Initialize the tracer waits for attach_python(); the memory
    // collector then needs install_memory_hooks() after Py_PreInitialize.
    // On a running interpreter (pycroscope.profile()) this attaches at once.
    void start() {
        attached_ = false;
        session_.collector<ExceptionCollector>().enabled = false;
        session_.collector<GcCollector>().enabled = false;
        session_.collector<ImportCollector>().enabled = false;
        session_.collector<IoCollector>().enabled = false;
        session_.start();
        if (Py_IsInitialized()) {
            attach_python();
        }
    }
    // After Py_Initialize (GIL held) when start() ran before it: installs the
    // tracer and starts the collectors that need an interpreter. stop() stops them.
    void attach_python() {
        if (attached_ || !session_.running()) {
            return;
        }
        attached_ = true;
        session_.collector<PythonTracer>().attach();
        session_.collector<Sampler>().attach();
        SessionCore& core = session_.core();
        start_late(session_.collector<ExceptionCollector>(), exceptions_, core);
        start_late(session_.collector<GcCollector>(), options_.gc, core);
        start_late(session_.collector<ImportCollector>(), options_.imports, core);
        start_late(session_.collector<IoCollector>(), options_.io, core);
    }
    // Throws SinkError (after writing every output it could) when one failed.
    SessionSummary stop() { return session_.stop(); }
    bool running() const noexcept { return session_.running(); }

    std::string output_dir() const { return dir_.string(); }
    const std::vector<std::string>& files() const noexcept { return files_; }
    // The collectors this profile runs.
    std::vector<std::string> collectors() const {
        std::vector<std::string> names{NativeZones::name};
        names.push_back(options_.sample ? Sampler::name : PythonTracer::name);
        const std::pair<bool, const char*> optional[] = {
            {exceptions_, ExceptionCollector::name}, {options_.gc, GcCollector::name},
            {options_.imports, ImportCollector::name}, {options_.io, IoCollector::name},
            {options_.memory, MemoryCollector::name},  {options_.system, SystemMonitor::name}};
        for (const auto& collector : optional) {
            if (collector.first) {
                names.push_back(collector.second);
            }
        }
        return names;
    }
    // Null when memory is off.
    const analysis::MemoryModel* memory_model() const noexcept { return memory_model_.get(); }
    Backend backend() { return session_.collector<PythonTracer>().backend(); }
    const SessionSummary& summary() const noexcept { return session_.summary(); }
    SessionType& session() noexcept { return session_; }
    // Per-location totals of the last run; null when json is off.
    const sinks::JsonSummarySink* summary_sink() const noexcept { return json_.get(); }

    // A text report of the last run: the top Python functions by self time,
    // then the files written.
    std::string report(std::size_t top = 15) {
        std::string out;
        char line[512];
        const SessionSummary& s = session_.summary();
        if (sample_profile_ != nullptr) {
            const SamplerStats stats = session_.collector<Sampler>().stats();
            std::snprintf(line, sizeof line,
                          "pycroscope: %.3f s profiled, sampling at %.0f Hz (achieved %.1f Hz), %llu lost events\n",
                          static_cast<double>(s.duration_ns) / 1e9, options_.sample_rate, stats.achieved_rate(),
                          static_cast<unsigned long long>(s.total_lost));
            out += line;
            if (top > 0) {
                sinks::HotspotOptions hotspots;
                hotspots.top = top;
                hotspots.rate_hz = options_.sample_rate;
                out += sinks::format_hotspot_report(*sample_profile_, hotspots);
            }
            for (const auto& error : s.errors) {
                out += "pycroscope: error: " + error + "\n";
            }
            out += "pycroscope: wrote\n";
            for (const auto& file : files_) {
                out += "  " + file + "\n";
            }
            return out;
        }
        std::snprintf(line, sizeof line,
                      "pycroscope: %.3f s profiled, %llu events (%llu lost), %zu thread(s), backend %s\n",
                      static_cast<double>(s.duration_ns) / 1e9, static_cast<unsigned long long>(s.total_events),
                      static_cast<unsigned long long>(s.total_lost), s.threads.size(), to_string(backend()));
        out += line;
        if (json_ != nullptr && top > 0) {
            std::vector<sinks::LocationStats> functions;
            for (const auto& stats : json_->location_stats()) {
                if (stats.location->kind == LocationKind::python_function) {
                    functions.push_back(stats);
                }
            }
            std::sort(functions.begin(), functions.end(),
                      [](const sinks::LocationStats& a, const sinks::LocationStats& b) {
                          return a.self_ns != b.self_ns ? a.self_ns > b.self_ns : a.count > b.count;
                      });
            const std::size_t shown = std::min(top, functions.size());
            std::snprintf(line, sizeof line, "pycroscope: top %zu of %zu Python functions by self time\n", shown,
                          functions.size());
            out += line;
            std::snprintf(line, sizeof line, "%11s %11s %10s  %-32s %s\n", "self ms", "incl ms", "calls",
                          "function", "location");
            out += line;
            for (std::size_t i = 0; i < shown; ++i) {
                const sinks::LocationStats& f = functions[i];
                const std::string where = std::string(f.location->file) + ":" + std::to_string(f.location->line);
                std::snprintf(line, sizeof line, "%11.3f %11.3f %10llu  %-32s %s\n", f.self_ns / 1e6,
                              f.inclusive_ns / 1e6, static_cast<unsigned long long>(f.count),
                              f.location->display_name(), where.c_str());
                out += line;
            }
        } else if (json_ == nullptr && top > 0) {
            out += "pycroscope: no function table (the json output is off)\n";
        }
        for (const auto& error : s.errors) {
            out += "pycroscope: error: " + error + "\n";
        }
        out += "pycroscope: wrote\n";
        for (const auto& file : files_) {
            out += "  " + file + "\n";
        }
        return out;
    }

private:
    template <class Collector>
    static void start_late(Collector& collector, bool wanted, SessionCore& core) {
        if (wanted) {
            collector.enabled = true;
            collector.start(core);
        }
    }

    ProfileOptions options_;
    TracerOptions tracer_options_;
    SessionType session_;
    std::filesystem::path dir_;
    std::shared_ptr<sinks::JsonSummarySink> json_;
    std::shared_ptr<analysis::MemoryModel> memory_model_;
    std::shared_ptr<sinks::SampledStackSink> sampled_stacks_;
    std::shared_ptr<sinks::SampleProfileSink> sample_profile_sink_;
    // Null for a collector that is off.
    std::shared_ptr<GcModel> gc_model_;
    std::shared_ptr<ImportModel> import_model_;
    std::shared_ptr<IoModel> io_model_;
    std::shared_ptr<ExceptionModel> exception_model_;
    bool exceptions_ = false; // exception collection resolved from the options
    bool attached_ = false;
    const analysis::SampleProfile* sample_profile_ = nullptr; // sampling mode only
    std::vector<std::string> files_;
};

// Reads the keyword arguments of pycroscope.profile(**options) for the
// default handler. Accepted: output_dir (str/PathLike/None), minimal, lines,
// c_calls (bools), backend ("auto", "eval_frame", "profile"), sinks ("json,folded,chrome"
// or an iterable of names among ProfileOptions::sink_names). GIL held.
inline ProfileOptions profile_options_from_kwargs(PyObject* options) {
    ProfileOptions result;
    result.config.process_name = "python";
    if (options == nullptr) {
        return result;
    }
    Py_ssize_t pos = 0;
    PyObject* key = nullptr;
    PyObject* value = nullptr;
    while (PyDict_Next(options, &pos, &key, &value)) {
        const std::string name(detail::str_arg(key, "option name"));
        if (name == "output_dir") {
            result.output_dir = value == Py_None ? std::string() : detail::path_arg(value);
        } else if (name == "minimal") {
            result.minimal = detail::truth_arg(value);
        } else if (name == "lines") {
            result.lines = detail::truth_arg(value);
        } else if (name == "c_calls") {
            if (value != Py_None) {
                result.c_calls = detail::truth_arg(value);
            }
        } else if (name == "backend") {
            const std::string_view backend = detail::str_arg(value, "backend");
            if (backend == "auto" || backend == "automatic") {
                result.backend = Backend::automatic;
            } else if (backend == "eval_frame") {
                result.backend = Backend::eval_frame;
            } else if (backend == "profile") {
                result.backend = Backend::profile;
            } else {
                throw ConfigError("unknown backend '" + std::string(backend) +
                                  "' (accepted: auto, eval_frame, profile)");
            }
        } else if (name == "sample") {
            result.sample = detail::truth_arg(value);
        } else if (name == "rate") {
            if (!PyLong_Check(value) && !PyFloat_Check(value)) {
                PyErr_Format(PyExc_TypeError, "profile(): rate must be a number (Hz), not %.100s",
                             Py_TYPE(value)->tp_name);
                throw PythonErrorSet();
            }
            result.sample_rate = PyFloat_AsDouble(value);
            if (result.sample_rate == -1.0 && PyErr_Occurred()) {
                throw PythonErrorSet();
            }
            detail::validate_rate(result.sample_rate);
        } else if (name == "sinks") {
            std::vector<std::string> names;
            if (PyUnicode_Check(value)) {
                const std::string text(detail::str_arg(value, "sinks"));
                std::size_t start = 0;
                while (start <= text.size()) {
                    const std::size_t comma = std::min(text.find(',', start), text.size());
                    names.push_back(text.substr(start, comma - start));
                    start = comma + 1;
                }
            } else {
                PyObject* iterator = PyObject_GetIter(value);
                if (iterator == nullptr) {
                    throw PythonErrorSet();
                }
                PyObject* item = nullptr;
                try {
                    while ((item = PyIter_Next(iterator)) != nullptr) {
                        names.emplace_back(detail::str_arg(item, "a sink name"));
                        Py_DECREF(item);
                        item = nullptr;
                    }
                } catch (...) {
                    Py_XDECREF(item);
                    Py_DECREF(iterator);
                    throw;
                }
                Py_DECREF(iterator);
                if (PyErr_Occurred()) {
                    throw PythonErrorSet();
                }
            }
            result.clear_sinks();
            for (const auto& sink : names) {
                if (!result.select_sink(sink)) {
                    throw ConfigError("unknown sink '" + sink + "' (accepted: " + ProfileOptions::sink_names + ")");
                }
            }
        } else {
            throw OptionError("profile() got an unexpected keyword argument '" + name +
                              "' (accepted: output_dir, minimal, lines, c_calls, backend, sinks, sample, rate)");
        }
    }
    (void)result.tracer_options(); // contradictions are errors now, not at start
    return result;
}

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
};

namespace detail {

struct ModuleState {
    ProfileHandler handler; // the host's; empty: the default handler
    std::unique_ptr<StandardProfile> standard;
};

inline ModuleState& module_state() {
    static ModuleState* state = new ModuleState(); // outlives atexit handlers and static destructors
    return *state;
}

inline void default_check(PyObject* options) { (void)profile_options_from_kwargs(options); }

inline std::string default_start(PyObject* options) {
    ModuleState& state = module_state();
    if (state.standard != nullptr && state.standard->running()) {
        throw SessionError("pycroscope.profile() is already running; profiles do not nest");
    }
    if (pycroscope::detail::session_slot_taken().load()) {
        throw SessionError("another session is already recording in this process; stop it first");
    }
    ProfileOptions parsed = profile_options_from_kwargs(options);
    const bool default_dir = parsed.output_dir.empty();
    auto profile = std::make_unique<StandardProfile>(std::move(parsed));
    try {
        profile->start();
    } catch (...) {
        if (default_dir) {
            std::error_code ignored;
            std::filesystem::remove(profile->output_dir(), ignored); // only if still empty
        }
        throw;
    }
    state.standard = std::move(profile);
    return state.standard->output_dir();
}

inline ProfileResult default_stop() {
    std::unique_ptr<StandardProfile> profile = std::move(module_state().standard);
    if (profile == nullptr) {
        return {};
    }
    ProfileResult result{profile->collectors(), profile->files()};
    profile->stop();
    return result;
}

inline const ProfileHandler& profile_handler() {
    static const ProfileHandler fallback{&default_check, &default_start, &default_stop};
    const ProfileHandler& handler = module_state().handler;
    return handler.start ? handler : fallback;
}

} // namespace detail

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
            const char* text = PyUnicode_AsUTF8(value);
            if (text != nullptr) {
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
        return new_zone(intern_python_zone(str_arg(name, "zone name")));
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
            return new_zone(intern_python_zone(str_arg(argument, "zone name")));
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
        mark(str_arg(name, "mark name")); // records only while native zones are collected
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
        const std::string_view name = str_arg(args[0], "counter name");
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
            const std::string_view name = str_arg(args[0], "frame name");
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
        set_thread_name(str_arg(name, "thread name"));
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
        {"profile", as_cfunction(&module_profile), METH_VARARGS | METH_KEYWORDS,
         "profile(**options)\n--\n\nProfiles a block (`with pycroscope.profile() as session:`) or a "
         "function\n(`@pycroscope.profile()`). Without a host handler the options are output_dir,\n"
         "minimal, lines, c_calls, backend ('auto', 'eval_frame', 'profile') and sinks\n"
         "('json,folded,chrome' by default; also perfetto, speedscope, pprof, callgrind)."},
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
            if (detail::module_state().standard != nullptr) {
                detail::default_stop();
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
