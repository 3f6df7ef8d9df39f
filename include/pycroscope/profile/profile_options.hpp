#pragma once
// The options of the standard profile: what `pycroscope profile` and a bare
// pycroscope.profile() record, and where they write it.

#include "pycroscope/analysis/findings.hpp"
#include "pycroscope/core/config.hpp"
#include "pycroscope/core/error.hpp"
#include "pycroscope/python/memory/memory_collector.hpp"
#include "pycroscope/python/tracer/tracer.hpp"
#include "pycroscope/sinks/complexity_section.hpp"
#include "pycroscope/system/system_monitor.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <system_error>
#include <vector>

namespace pycroscope {
namespace profile {

using python::Backend;
using python::MemoryOptions;
using python::TracerOptions;

struct ProfileOptions {
    // Empty: ./profiling_results/<YYYYmmdd-HHMMSS>/, with -2, -3, ... appended
    // when that directory exists. Otherwise created if missing and reused if present.
    std::string output_dir;
    // The mode (docs/cli.md, "Modes"): what is recorded when no option below
    // says otherwise. The default costs little: Python calls on the cheapest
    // backend, sampled memory, GC, imports, I/O, system. minimal: Python calls
    // and the per-operation collectors only. full: everything, on the profile
    // backend (C calls, lines, exceptions, every allocation).
    bool minimal = false;
    bool full = false;
    std::optional<bool> lines;   // line events (profile backend with a trace function); default: full
    std::optional<bool> c_calls; // C calls (profile or monitoring backend); default: full, unless backend eval_frame
    Backend backend = Backend::automatic;
    // Overhead compensation: the tracer's cost per event is measured when it
    // attaches (python/calibration/overhead_calibration.hpp) and subtracted
    // from self and inclusive times (model/overhead_compensation.hpp);
    // session.json "overhead_compensation" says what was subtracted.
    bool compensate_overhead = true;
    // The program's own sys.setprofile/settrace: chain keeps it working as without the profiler.
    python::ConflictPolicy on_conflict = python::ConflictPolicy::chain;
    // By default the outputs that fit a person's disk: every event goes to the
    // compact capture, from which `pycroscope report` or `export` writes any
    // other format later; the Chrome trace (tens of bytes per event) only on request.
    bool json = true;     // session.json
    bool folded = true;   // stacks.folded
    bool chrome = false;  // trace.json
    bool capture = true;  // capture.pycro (capture/capture_sink.hpp)
    // Exporters (sinks/export_sink.hpp), off by default: trace.perfetto-trace,
    // profile.speedscope.json, profile.pb.gz (and alloc.pb.gz with memory), callgrind.out.
    bool perfetto = false;
    bool speedscope = false;
    bool pprof = false;
    bool callgrind = false;
    static constexpr const char* sink_names =
        "json, folded, chrome, capture, perfetto, speedscope, pprof, callgrind";

    // Selects the output named name (one of sink_names); false when unknown.
    bool select_sink(std::string_view name) {
        for (const auto& output : outputs()) {
            if (name == output.first) {
                *output.second = true;
                return true;
            }
        }
        return false;
    }
    void clear_sinks() {
        for (const auto& output : outputs()) {
            *output.second = false;
        }
    }
    bool any_sink() {
        for (const auto& output : outputs()) {
            if (*output.second) {
                return true;
            }
        }
        return false;
    }
    // Allocations of the PyMem domains (memory section, memory.folded, the
    // chrome trace's memory counter). memory_sample_bytes: 0 records every
    // allocation, N about one per N bytes (MemoryOptions::sample_bytes).
    // Unset, records_memory() and memory_sample_interval() decide by mode.
    std::optional<bool> memory;
    std::optional<std::uint64_t> memory_sample_bytes;
    // The session metadata key naming the mode (session.json "metadata").
    static constexpr const char* mode_metadata_key = "profile_mode";
    // The default mode's memory sampling interval: the peak and the top
    // allocation sites at a small fraction of full tracking's cost (memory.md).
    static constexpr std::uint64_t default_memory_sample_bytes = 64 * 1024;
    // Sampling mode: the Sampler instead of the tracer; stacks.folded holds
    // sample counts and session.json a "hotspots" section.
    bool sample = false;
    double sample_rate = 100.0; // Hz
    // What a sample stands for (python::SamplerClock): CPU time of running
    // threads (false, the default) or wall time of every thread (true).
    bool sample_wall_clock = false;
    // Resource collectors (sections gc, imports, io, exceptions, system).
    // Exceptions: unset, records_exceptions() decides by mode and version.
    bool gc = true;
    bool imports = true;
    bool io = true;
    std::optional<bool> exceptions;
    bool system = true;
    std::chrono::milliseconds system_interval{100};
    std::vector<SystemAlertRule> system_alerts;
    // --complexity FUNC: time per call of FUNC against the size of its first
    // sized argument, fitted (session.json "complexity", docs/complexity.md).
    // "qualname" names a function of script (the __main__ file); "module:qualname" one of a module.
    std::string complexity_function;
    std::string script;
    // The pattern pass over the profiled sources (findings, recommendations,
    // health in session.json and the terminal summary): analysis/findings.hpp.
    analysis::FindingOptions patterns;
    Config config;

    // Every output by its --sinks name.
    std::array<std::pair<const char*, bool*>, 8> outputs() {
        return {{{"json", &json},
                 {"folded", &folded},
                 {"chrome", &chrome},
                 {"capture", &capture},
                 {"perfetto", &perfetto},
                 {"speedscope", &speedscope},
                 {"pprof", &pprof},
                 {"callgrind", &callgrind}}};
    }

    // The session's Config: config, with the --complexity function named in
    // its metadata, so a capture keeps it (sinks/complexity_section.hpp).
    Config session_config() const {
        Config resolved = config;
        const bool named = std::any_of(resolved.metadata.begin(), resolved.metadata.end(),
                                       [](const auto& entry) { return entry.first == mode_metadata_key; });
        if (!named) {
            resolved.metadata.emplace_back(mode_metadata_key, mode_name());
        }
        if (!complexity_function.empty()) {
            resolved.metadata.emplace_back(sinks::complexity_metadata_key, complexity_function);
        }
        return resolved;
    }

    // The mode's name, as session.json and the summary print it.
    const char* mode_name() const noexcept { return sample ? "sample" : minimal ? "minimal" : full ? "full" : "default"; }

    // Allocations are tracked: unless memory says otherwise, in the default
    // and full modes, and with sample or minimal only when a sampling
    // interval is given (those modes stay near the cost of their tracer).
    bool records_memory() const noexcept {
        return memory.value_or(memory_sample_bytes.has_value() || (!sample && !minimal));
    }
    // 0: every allocation (full mode); else about one record per N bytes.
    std::uint64_t memory_sample_interval() const noexcept {
        return memory_sample_bytes.value_or(full ? 0 : default_memory_sample_bytes);
    }
    // Raised and caught exceptions are recorded: by default in full mode,
    // and where they come cheap (sys.monitoring's RAISE and EXCEPTION_HANDLED
    // on 3.12+; before, they need a trace function that sees every line).
    // Never with minimal, sample or the eval_frame backend.
    static constexpr bool cheap_exceptions = PYCROSCOPE_HAS_SYS_MONITORING != 0;
    bool records_exceptions() const noexcept {
        const bool cheap = cheap_exceptions && backend != Backend::profile;
        return exceptions.value_or(full || cheap) && !sample && !minimal && backend != Backend::eval_frame;
    }

    // The MemoryCollector options these resolve to.
    MemoryOptions memory_options() const {
        MemoryOptions resolved;
        resolved.enabled = records_memory();
        resolved.sample_bytes = memory_sample_interval();
        return resolved;
    }

    // Throws ConfigError on a contradiction between the mode and the options.
    void check_mode() const {
        if (static_cast<int>(minimal) + static_cast<int>(full) + static_cast<int>(sample) > 1) {
            throw ConfigError("choose one mode: minimal, full or sample");
        }
        if (memory == false && memory_sample_bytes.has_value()) {
            throw ConfigError("memory sampling and no memory tracking contradict each other");
        }
    }

    // The tracer options these resolve to; throws ConfigError on a contradiction.
    TracerOptions tracer_options() const {
        check_mode();
        TracerOptions tracer;
        tracer.backend = backend;
        tracer.lines = lines.value_or(full);
        tracer.on_conflict = on_conflict;
        if (minimal && c_calls.value_or(false)) {
            throw ConfigError("minimal profiling records Python functions only; it cannot be combined with C calls");
        }
        if (minimal && lines.value_or(false)) {
            throw ConfigError("minimal profiling records Python functions only; it cannot be combined with lines");
        }
        const bool c = c_calls.value_or(full && backend != Backend::eval_frame);
        if (backend == Backend::eval_frame) {
#if !PYCROSCOPE_HAS_EVAL_FRAME_BACKEND
            throw ConfigError("the eval_frame backend is not available on Python " PY_VERSION
                              "; use the profile backend");
#endif
            if (c) {
                throw ConfigError("the eval_frame backend sees Python functions only; it cannot record C calls");
            }
            if (tracer.lines) {
                throw ConfigError("the eval_frame backend cannot record lines; use the profile backend");
            }
        }
        tracer.c_calls = c;
        tracer.exceptions = records_exceptions();
        return tracer;
    }
};


namespace detail {

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

} // namespace profile
} // namespace pycroscope
