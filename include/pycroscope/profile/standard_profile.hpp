#pragma once
// The product assembly: every collector, drain-side model, sink and
// session.json section that `pycroscope profile` and a bare
// pycroscope.profile() compose. The only layer that knows them all.

#include "pycroscope/analysis/answers.hpp"
#include "pycroscope/capture/capture_sink.hpp"
#include "pycroscope/core/recorder.hpp"
#include "pycroscope/core/session.hpp"
#include "pycroscope/model/call_size_model.hpp"
#include "pycroscope/model/profile_builder.hpp"
#include "pycroscope/report/terminal_summary.hpp"
#include "pycroscope/sinks/profile_sections.hpp"
#include "pycroscope/profile/profile_options.hpp"
#include "pycroscope/report/terminal_text.hpp"
#include "pycroscope/python/analysis/source_findings.hpp"
#include "pycroscope/python/calibration/overhead_calibration.hpp"
#include "pycroscope/python/exceptions/exception_collector.hpp"
#include "pycroscope/python/gc/gc_collector.hpp"
#include "pycroscope/python/imports/import_collector.hpp"
#include "pycroscope/python/io/io_collector.hpp"
#include "pycroscope/python/memory/memory_collector.hpp"
#include "pycroscope/python/memory/memory_section.hpp"
#include "pycroscope/python/sampler/sampler.hpp"
#include "pycroscope/python/tracer/function_sections.hpp"
#include "pycroscope/python/tracer/tracer.hpp"
#include "pycroscope/report/html_report.hpp"
#include "pycroscope/report/markdown_report.hpp"
#include "pycroscope/sinks/answer_sections.hpp"
#include "pycroscope/sinks/chrome_trace_sink.hpp"
#include "pycroscope/sinks/compensation_section.hpp"
#include "pycroscope/sinks/complexity_section.hpp"
#include "pycroscope/sinks/export_sink.hpp"
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
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace pycroscope {
namespace profile {

using namespace python; // the collectors, their models and sections
using report::terminal_text;

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
          session_(memory_tracking_config(options_.session_config(), options_.memory_options())) {
        if (!options_.any_sink()) {
            throw ConfigError(std::string("no output selected: enable at least one of ") + ProfileOptions::sink_names);
        }
        dir_ = detail::make_output_dir(options_.output_dir);
        PythonTracer& tracer = session_.collector<PythonTracer>();
        tracer.options = tracer_options_;
        tracer.options.deferred = true; // start() may precede Py_Initialize: see attach_python()
        tracer.options.enabled = !options_.sample;
        // The automatic backend picks the one that can record exceptions: the
        // profile backend's trace function on 3.9-3.11, sys.monitoring on 3.12+.
        exceptions_ = tracer.options.exceptions;
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
            gc_model_ = std::make_shared<model::GcModel>();
            session_.core().add_processor(gc_model_);
        }
        if (options_.imports) {
            import_model_ = std::make_shared<model::ImportModel>();
            session_.core().add_processor(import_model_);
        }
        if (options_.io) {
            io_model_ = std::make_shared<model::IoModel>(tracer_options_.c_calls && !options_.sample);
            session_.core().add_processor(io_model_);
        }
        if (exceptions_) {
            exception_model_ = std::make_shared<model::ExceptionModel>();
            session_.core().add_processor(exception_model_);
        }
        if (!options_.complexity_function.empty()) {
            if (options_.sample) {
                throw ConfigError("--complexity times every call of the function: it needs tracing, not --sample");
            }
            call_size_model_ = std::make_shared<model::CallSizeModel>();
            session_.core().add_processor(call_size_model_);
        }
        Sampler& sampler = session_.collector<Sampler>();
        sampler.options.enabled = options_.sample;
        sampler.options.deferred = true; // samples once the interpreter runs
        if (options_.sample) {
            sampler.set_rate(options_.sample_rate); // ConfigError now, not at start()
            sampler.options.clock = options_.sample_wall_clock ? python::SamplerClock::wall : python::SamplerClock::cpu;
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
        if (options_.records_memory()) {
            memory_model_ = add_memory_model(session_);
        }
        session_.core().add_processor(profile_model_);
        if (options_.json) {
            json_ = session_.add_sink<sinks::JsonSummarySink>((dir_ / "session.json").string());
            if (!options_.sample) {
                json_->use_profile(profile_model_);
            }
            add_summary_sections(*json_, tracer, profile_model_.get());
            sinks::add_profile_sections(*json_, *profile_model_);
            if (sample_profile_ != nullptr) {
                sinks::HotspotOptions hotspots;
                hotspots.rate_hz = options_.sample_rate;
                sinks::add_hotspot_section(*json_, *sample_profile_, hotspots);
            }
            if (memory_model_) {
                add_memory_section(*json_, memory_model_, memory);
            }
            if (gc_model_) {
                model::add_gc_section(*json_, *gc_model_);
            }
            if (import_model_) {
                model::add_imports_section(*json_, *import_model_);
            }
            if (io_model_) {
                model::add_io_section(*json_, *io_model_);
            }
            if (exception_model_) {
                model::add_exceptions_section(*json_, *exception_model_);
            }
            if (options_.system) {
                sinks::add_system_section(*json_, system);
            }
            if (call_size_model_) {
                sinks::add_complexity_section(*json_, options_.complexity_function, *call_size_model_);
            }
            if (!options_.sample) {
                sinks::add_compensation_section(*json_, *profile_model_, &measured_bias_, &compensation_note_);
            }
            sinks::add_answer_sections(*json_, answers_, options_.patterns);
            add_file(json_);
        }
        if (sampled_stacks_ != nullptr) {
            add_file(sampled_stacks_);
        } else if (options_.folded) {
            add_file(session_.add_sink<sinks::FoldedStackSink>((dir_ / "stacks.folded").string(), profile_model_));
            if (memory_model_) {
                add_file(session_.add_sink<sinks::MemoryFoldedSink>((dir_ / "memory.folded").string(), memory_model_));
            }
        }
        if (options_.chrome) {
            add_file(session_.add_sink<sinks::ChromeTraceSink>((dir_ / "trace.json").string()));
        }
        if (options_.capture) {
            add_file(session_.add_sink<capture::CaptureSink>((dir_ / "capture.pycro").string()));
        }
        const std::uint64_t interval_ns =
            options_.sample ? static_cast<std::uint64_t>(1e9 / options_.sample_rate + 0.5) : 0;
        const std::pair<bool, const char*> exports[] = {{options_.perfetto, "perfetto"},
                                                        {options_.speedscope, "speedscope"},
                                                        {options_.pprof, "pprof"},
                                                        {options_.pprof && options_.records_memory(), "pprof-alloc"},
                                                        {options_.callgrind, "callgrind"}};
        for (const auto& format : exports) {
            if (format.first) {
                const std::string path = (dir_ / sinks::export_file_name(format.second)).string();
                const std::shared_ptr<sinks::FileSink> sink = sinks::make_export_sink(
                    format.second, path, interval_ns,
                    options_.sample ? nullptr : std::shared_ptr<const model::ProfileBuilder>(profile_model_));
                session_.add_sink(sink);
                add_file(sink);
            }
        }
        // A run killed outright (SIGKILL) in this folder left its temporaries.
        stale_temporaries_ = sinks::remove_stale_temporaries(dir_.string(), output_file_names());
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
        answers_->reset();
        session_.set_collector_names(collectors()); // session.json lists what runs, and so does a capture
        if (call_size_model_) {
            watch_function(options_.complexity_function, options_.script); // before the script's code is seen
        }
        probe_.reset();
        if (Py_IsInitialized()) {
            measure_untraced(); // the tracer installs as the session starts
        }
        try {
            session_.start();
        } catch (...) {
            probe_.reset(); // with the GIL, which start() holds
            throw;
        }
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
        if (!probe_) {
            measure_untraced(); // the tracer was deferred: it is not installed yet
        }
        try {
            session_.collector<PythonTracer>().attach();
        } catch (...) {
            probe_.reset(); // with the GIL
            throw;
        }
        calibrate();
        session_.collector<Sampler>().attach();
        SessionCore& core = session_.core();
        start_late(session_.collector<ExceptionCollector>(), exceptions_, core);
        start_late(session_.collector<GcCollector>(), options_.gc, core);
        start_late(session_.collector<ImportCollector>(), options_.imports, core);
        start_late(session_.collector<IoCollector>(), options_.io, core);
    }
    // The tracer's cost measured at attach (valid when compensation is on).
    const OverheadMeasurement& overhead() const noexcept { return overhead_; }
    // Throws SinkError (after writing every output it could) when one failed.
    SessionSummary stop() {
        struct Unwatch {
            bool watching;
            ~Unwatch() {
                if (watching) {
                    watch_function("", "");
                }
            }
        } unwatch{call_size_model_ != nullptr};
        return session_.stop();
    }
    // report.html and report.md from the outputs stop() wrote. A report that
    // cannot be written is listed by report() as not written; the other outputs stay.
    void write_reports() {
        if (!options_.json && !options_.folded) {
            return;
        }
        const auto inputs = report::ReportInputs::from_output_dir(dir_.string());
        using Writer = void (*)(const std::string&, const report::ReportInputs&);
        const std::pair<const char*, Writer> writers[] = {
            {"report.html", [](const std::string& path, const report::ReportInputs& in) { report::write_html_report(path, in); }},
            {"report.md", [](const std::string& path, const report::ReportInputs& in) { report::write_markdown_report(path, in); }}};
        for (const auto& writer : writers) {
            const std::string path = (dir_ / writer.first).string();
            bool written = false;
            try {
                writer.second(path, inputs);
                written = true;
            } catch (const std::exception& error) {
                report_errors_.push_back(error.what());
            }
            files_.push_back(path);
            outputs_.push_back(Output{path, [written] { return written; }});
        }
    }
    bool running() const noexcept { return session_.running(); }

    std::string output_dir() const { return dir_.string(); }
    // Every output this profile writes, written or not.
    const std::vector<std::string>& files() const noexcept { return files_; }
    // After stop(): the outputs on disk, complete, and the ones that are not.
    std::vector<std::string> written_files() const { return files_where(true); }
    std::vector<std::string> failed_files() const { return files_where(false); }
    // After stop(): some output was not written (a sink failed, or a file is missing).
    bool outputs_failed() const { return !session_.summary().errors.empty() || !failed_files().empty(); }
    // Temporaries of dead runs removed from the output folder at construction.
    const std::vector<std::string>& stale_temporaries() const noexcept { return stale_temporaries_; }
    // The file names this profile may write in its folder.
    static std::vector<std::string> output_file_names() {
        return {"session.json", "stacks.folded", "memory.folded", "trace.json"};
    }
    // The collectors this profile runs.
    std::vector<std::string> collectors() const {
        std::vector<std::string> names{NativeZones::name};
        names.push_back(options_.sample ? Sampler::name : PythonTracer::name);
        const std::pair<bool, const char*> optional[] = {
            {exceptions_, ExceptionCollector::name}, {options_.gc, GcCollector::name},
            {options_.imports, ImportCollector::name}, {options_.io, IoCollector::name},
            {options_.records_memory(), MemoryCollector::name},  {options_.system, SystemMonitor::name}};
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
    // The Profile of the last run (model/profile.hpp).
    const model::Profile& profile() const noexcept { return profile_model_->profile(); }

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
                // Escaped line by line: the table's own newlines stay.
                const std::string table = sinks::format_hotspot_report(*sample_profile_, hotspots);
                for (std::size_t at = 0; at < table.size();) {
                    const std::size_t end = std::min(table.find('\n', at), table.size());
                    out += terminal_text(std::string_view(table).substr(at, end - at));
                    out += end < table.size() ? "\n" : "";
                    at = end + 1;
                }
                out += report::terminal_answers(answers(), top_answers(top));
            }
            out += outputs_report();
            return out;
        }
        std::snprintf(line, sizeof line,
                      "pycroscope: %.3f s profiled, %llu events (%llu lost), %zu thread(s), %s mode, backend %s\n",
                      static_cast<double>(s.duration_ns) / 1e9, static_cast<unsigned long long>(s.total_events),
                      static_cast<unsigned long long>(s.total_lost), s.threads.size(), options_.mode_name(),
                      to_string(backend()));
        out += line;
        if (top > 0) {
            report::TerminalSummaryOptions summary;
            summary.top = top;
            out += report::terminal_summary(profile_model_->profile(), summary);
            out += report::terminal_answers(answers(), top_answers(top));
        }
        if (call_size_model_) {
            const analysis::ComplexityFit fit = sinks::fit_call_sizes(*call_size_model_, s.info);
            out += "pycroscope: " +
                   terminal_text(sinks::complexity_line(options_.complexity_function, *call_size_model_, fit)) + "\n";
        }
        out += program_hooks_report(session_.collector<PythonTracer>().program_hooks());
        out += outputs_report();
        return out;
    }

    // The findings, recommendations and health score of the last run
    // (computed at stop when session.json is written, else on first use).
    const analysis::Answers& answers() { return answers_->get(session_.summary()); }

    // The end of report(): errors, the files written, the files not written.
    std::string outputs_report() const {
        std::string out;
        for (const auto& file : stale_temporaries_) {
            out += "pycroscope: removed " + terminal_text(file) + " (left by a run that was killed)\n";
        }
        for (const auto& error : session_.summary().errors) {
            out += "pycroscope: error: " + terminal_text(error) + "\n";
        }
        for (const auto& error : report_errors_) {
            out += "pycroscope: error: " + terminal_text(error) + "\n";
        }
        const std::vector<std::string> written = written_files();
        const std::vector<std::string> failed = failed_files();
        if (!written.empty()) {
            out += "pycroscope: wrote\n";
            for (const auto& file : written) {
                out += "  " + terminal_text(file) + "\n";
            }
        }
        if (!failed.empty()) {
            out += "pycroscope: NOT written\n";
            for (const auto& file : failed) {
                out += "  " + terminal_text(file) + "\n";
            }
        }
        return out;
    }

    // What the program's own profile/trace functions cost the profile; empty when nothing.
    static std::string program_hooks_report(const ProgramHookReport& hooks) {
        char line[256];
        std::string out;
        if (hooks.stepped_aside > 0) {
            std::snprintf(line, sizeof line,
                          "pycroscope: %llu thread(s) not recorded for %.3f s in all: the program set its own "
                          "profile/trace function there (--on-conflict step_aside)\n",
                          static_cast<unsigned long long>(hooks.stepped_aside),
                          static_cast<double>(hooks.untraced_ns) / 1e9);
            out += line;
        }
        if (hooks.ignored_calls > 0) {
            std::snprintf(line, sizeof line,
                          "pycroscope: %llu sys.setprofile/settrace call(s) of the program ignored "
                          "(--on-conflict take_over)\n",
                          static_cast<unsigned long long>(hooks.ignored_calls));
            out += line;
        }
        if (hooks.refused_calls > 0) {
            std::snprintf(line, sizeof line,
                          "pycroscope: %llu sys.setprofile/settrace call(s) of the program refused with "
                          "RuntimeError (--on-conflict fail)\n",
                          static_cast<unsigned long long>(hooks.refused_calls));
            out += line;
        }
        return out;
    }

private:
    // An output file and whether its last session's file is whole on disk.
    struct Output {
        std::string path;
        std::function<bool()> written;
    };
    template <class FileSink>
    void add_file(const std::shared_ptr<FileSink>& sink) {
        files_.push_back(sink->path());
        outputs_.push_back(Output{sink->path(), [sink] { return sink->written(); }});
    }
    std::vector<std::string> files_where(bool written) const {
        std::vector<std::string> out;
        for (const auto& output : outputs_) {
            if (output.written() == written) {
                out.push_back(output.path);
            }
        }
        return out;
    }

    static std::size_t top_answers(std::size_t top) { return std::min<std::size_t>(top, 5); }

    // Overhead compensation (docs/calibration.md). The untraced half of the
    // calibration, before the tracer is installed (GIL held).
    void measure_untraced() {
        untraced_ = -1.0;
        if (options_.compensate_overhead && !options_.sample) {
            probe_ = std::make_unique<OverheadProbe>();
            untraced_ = probe_->ok() ? probe_->ns_per_call(calibration_options_) : -1.0;
        }
    }
    // The traced half, with the tracer attached; the result goes to the
    // profile model (and session.json), or the note says why not.
    void calibrate() {
        std::unique_ptr<OverheadProbe> probe = std::move(probe_);
        const double untraced = untraced_;
        overhead_ = OverheadMeasurement{};
        measured_bias_ = model::OverheadBias{};
        profile_model_->set_overhead(model::OverheadBias{});
        if (!probe) {
            compensation_note_ = options_.sample ? "sampling mode" : "turned off";
            return;
        }
        if (!probe->ok()) {
            compensation_note_ = probe->error();
            return;
        }
        const Backend running = session_.collector<PythonTracer>().backend();
        overhead_ = overhead_from(running, calibration_options_, untraced, probe->traced_ns_per_call(calibration_options_));
        if (!overhead_.valid) {
            compensation_note_ = overhead_.error;
            return;
        }
        compensation_note_ = overhead_.ns_per_event > 0.0 ? "" : "the measured cost per event was not above zero";
        measured_bias_ = model::OverheadBias{overhead_.ns_per_event, to_string(running), overhead_.untraced_ns_per_call,
                                             overhead_.traced_ns_per_call};
        // Into the event stream, so that a capture replays with the same
        // compensation; the model takes it from there.
        const bool recorded =
            record(EventKind::counter, &model::overhead_untraced_location, double_bits(overhead_.untraced_ns_per_call)) &&
            record(EventKind::counter, &model::overhead_traced_location, double_bits(overhead_.traced_ns_per_call)) &&
            record(EventKind::counter, &model::overhead_bias_location_for(measured_bias_.backend),
                   double_bits(overhead_.ns_per_event));
        if (!recorded) {
            profile_model_->set_overhead(measured_bias_); // lost to a full ring: this run only
        }
    }

    // Runs at the first section that needs them, on the thread that stops
    // the session (which holds, or can take, the GIL).
    analysis::Answers compute_answers(const SessionSummary& summary) const {
        analysis::AnswerOptions options;
        options.findings = options_.patterns;
        return analysis::answer(profile_model_->profile(), &python::collect_source_facts,
                                analysis::memory_facts(memory_model_.get()),
                                analysis::io_facts(io_model_.get(), summary.info), options);
    }

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
    std::shared_ptr<model::ProfileBuilder> profile_model_ = std::make_shared<model::ProfileBuilder>();
    std::shared_ptr<model::MemoryModel> memory_model_;
    std::shared_ptr<sinks::SampledStackSink> sampled_stacks_;
    std::shared_ptr<sinks::SampleProfileSink> sample_profile_sink_;
    // Null for a collector that is off.
    std::shared_ptr<model::GcModel> gc_model_;
    std::shared_ptr<model::ImportModel> import_model_;
    std::shared_ptr<model::IoModel> io_model_;
    std::shared_ptr<model::ExceptionModel> exception_model_;
    std::shared_ptr<model::CallSizeModel> call_size_model_; // --complexity
    bool exceptions_ = false; // exception collection resolved from the options
    bool attached_ = false;
    CalibrationOptions calibration_options_;
    std::unique_ptr<OverheadProbe> probe_; // between the untraced and traced halves
    double untraced_ = -1.0;
    OverheadMeasurement overhead_;
    model::OverheadBias measured_bias_; // what overhead_ gave, for session.json
    std::string compensation_note_ = "not measured"; // why there is no compensation
    const model::SampleProfile* sample_profile_ = nullptr; // sampling mode only
    std::vector<std::string> files_;
    std::vector<Output> outputs_; // in files_'s order
    std::vector<std::string> report_errors_; // report.html / report.md that could not be written
    std::vector<std::string> stale_temporaries_;
    std::shared_ptr<sinks::AnswerSource> answers_ = std::make_shared<sinks::AnswerSource>(
        [this](const SessionSummary& summary) { return compute_answers(summary); });
};


} // namespace profile
} // namespace pycroscope
