#pragma once
// The product assembly: every collector, drain-side model, sink and
// session.json section that `pycroscope profile` and a bare
// pycroscope.profile() compose. The only layer that knows them all.

#include "pycroscope/core/session.hpp"
#include "pycroscope/profile/profile_options.hpp"
#include "pycroscope/python/exceptions/exception_collector.hpp"
#include "pycroscope/python/gc/gc_collector.hpp"
#include "pycroscope/python/imports/import_collector.hpp"
#include "pycroscope/python/io/io_collector.hpp"
#include "pycroscope/python/memory/memory_collector.hpp"
#include "pycroscope/python/memory/memory_section.hpp"
#include "pycroscope/python/sampler/sampler.hpp"
#include "pycroscope/python/tracer/function_sections.hpp"
#include "pycroscope/python/tracer/tracer.hpp"
#include "pycroscope/sinks/chrome_trace_sink.hpp"
#include "pycroscope/report/html_report.hpp"
#include "pycroscope/report/markdown_report.hpp"
#include "pycroscope/sinks/folded_stack_sink.hpp"
#include "pycroscope/sinks/hotspot_sections.hpp"
#include "pycroscope/sinks/json_summary_sink.hpp"
#include "pycroscope/sinks/memory_folded_sink.hpp"
#include "pycroscope/sinks/sample_profile_sink.hpp"
#include "pycroscope/sinks/sampled_stack_sink.hpp"
#include "pycroscope/system/system_monitor.hpp"
#include "pycroscope/system/system_section.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace pycroscope {
namespace profile {

using namespace python; // the collectors, their models and sections

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
        if (!options_.json && !options_.folded && !options_.chrome) {
            throw ConfigError("no output selected: enable at least one of json, folded, chrome");
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
    // report.html and report.md from the outputs stop() wrote. A report that
    // cannot be written is listed by report(); the other outputs stay.
    void write_reports() {
        if (!options_.json && !options_.folded) {
            return;
        }
        const auto inputs = report::ReportInputs::from_output_dir(dir_.string());
        const std::pair<const char*, void (*)(const std::string&, const report::ReportInputs&)> writers[] = {
            {"report.html", [](const std::string& path, const report::ReportInputs& in) { report::write_html_report(path, in); }},
            {"report.md", [](const std::string& path, const report::ReportInputs& in) { report::write_markdown_report(path, in); }}};
        for (const auto& writer : writers) {
            const std::string path = (dir_ / writer.first).string();
            try {
                writer.second(path, inputs);
                files_.push_back(path);
            } catch (const std::exception& error) {
                report_errors_.push_back(error.what());
            }
        }
    }
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
    const model::MemoryModel* memory_model() const noexcept { return memory_model_.get(); }
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
            for (const auto& error : report_errors_) {
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
        for (const auto& error : report_errors_) {
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
    std::shared_ptr<model::MemoryModel> memory_model_;
    std::shared_ptr<sinks::SampledStackSink> sampled_stacks_;
    std::shared_ptr<sinks::SampleProfileSink> sample_profile_sink_;
    // Null for a collector that is off.
    std::shared_ptr<GcModel> gc_model_;
    std::shared_ptr<ImportModel> import_model_;
    std::shared_ptr<IoModel> io_model_;
    std::shared_ptr<ExceptionModel> exception_model_;
    bool exceptions_ = false; // exception collection resolved from the options
    bool attached_ = false;
    const model::SampleProfile* sample_profile_ = nullptr; // sampling mode only
    std::vector<std::string> files_;
    std::vector<std::string> report_errors_;
};


} // namespace profile
} // namespace pycroscope
