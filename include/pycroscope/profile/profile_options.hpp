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
    bool minimal = false;        // Python functions only (no C calls): the eval_frame backend
    bool lines = false;          // line events (profile backend with a trace function)
    std::optional<bool> c_calls; // default: on unless minimal or backend eval_frame
    Backend backend = Backend::automatic;
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
    bool memory = true;
    std::uint64_t memory_sample_bytes = 0;
    // Sampling mode: the Sampler instead of the tracer; stacks.folded holds
    // sample counts and session.json a "hotspots" section.
    bool sample = false;
    double sample_rate = 100.0; // Hz
    // What a sample stands for (python::SamplerClock): CPU time of running
    // threads (false, the default) or wall time of every thread (true).
    bool sample_wall_clock = false;
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
        if (!complexity_function.empty()) {
            resolved.metadata.emplace_back(sinks::complexity_metadata_key, complexity_function);
        }
        return resolved;
    }

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
        tracer.on_conflict = on_conflict;
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
