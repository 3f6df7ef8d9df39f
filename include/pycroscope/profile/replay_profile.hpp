#pragma once
// A recorded capture (capture.pycro) turned back into the outputs of a
// profile, with no Python and no re-run: `pycroscope report` and
// `pycroscope export`.
//
//   replay_report(source, options)  session.json, stacks.folded,
//       memory.folded (a capture with memory events), trace.json (options.chrome),
//       then report.html and report.md
//   replay_export(source, format, path)  one make_export_sink() format
//
// source is a capture file or a folder holding capture.pycro. The outputs go
// to the capture's folder unless told otherwise. A source that is missing,
// foreign or damaged throws (CaptureError or ConfigError) and leaves nothing
// behind: every file is committed atomically, and a folder made for the
// outputs is removed again when empty. A capture cut short (no trailer) is
// replayed up to its last whole chunk; the result says so.
//
// The findings are the live run's: the same Profile and the same sources,
// read again through options.source_facts (the interpreter's `ast`).
//
// What session.json cannot hold on replay: the "python" section (interpreter
// version, backend, conflicts: properties of the live tracer), "system" (the
// monitor's own samples are not events) and "memory" (its mode and sampling
// are properties of the live allocator hooks; the memory model itself is
// replayed, for the recommendations and the health score). Everything else
// is derived from the recorded events, as live.

#include "pycroscope/analysis/answers.hpp"
#include "pycroscope/capture/capture_error.hpp"
#include "pycroscope/capture/replay.hpp"
#include "pycroscope/core/error.hpp"
#include "pycroscope/model/exception_model.hpp"
#include "pycroscope/model/gc_model.hpp"
#include "pycroscope/model/import_model.hpp"
#include "pycroscope/model/io_model.hpp"
#include "pycroscope/model/memory_model.hpp"
#include "pycroscope/model/profile_builder.hpp"
#include "pycroscope/report/html_report.hpp"
#include "pycroscope/report/markdown_report.hpp"
#include "pycroscope/sinks/answer_sections.hpp"
#include "pycroscope/sinks/chrome_trace_sink.hpp"
#include "pycroscope/sinks/compensation_section.hpp"
#include "pycroscope/sinks/complexity_section.hpp"
#include "pycroscope/sinks/export_sink.hpp"
#include "pycroscope/sinks/folded_stack_sink.hpp"
#include "pycroscope/sinks/function_entries.hpp"
#include "pycroscope/sinks/hotspot_sections.hpp"
#include "pycroscope/sinks/json_summary_sink.hpp"
#include "pycroscope/sinks/memory_folded_sink.hpp"
#include "pycroscope/sinks/profile_sections.hpp"
#include "pycroscope/sinks/sample_profile_sink.hpp"
#include "pycroscope/sinks/sampled_stack_sink.hpp"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace pycroscope {
namespace profile {

struct ReplayOptions {
    std::string output_dir; // empty: the capture's own folder
    bool json = true;       // session.json
    bool folded = true;     // stacks.folded (and memory.folded)
    bool chrome = false;    // trace.json
    bool reports = true;    // report.html and report.md (from session.json and the folded stacks)
    // The pattern pass (findings, recommendations, health): the same options
    // as the live run's give the same findings. Without source_facts (no
    // interpreter) the findings section says the sources were not read.
    analysis::FindingOptions patterns;
    analysis::SourceFactsProvider source_facts;
};

struct ReplayOutcome {
    std::string capture;    // the file replayed
    std::string output_dir;
    capture::ReplayResult result; // complete or cut, chunks, events, errors of failed sinks
    bool sampled = false;   // a sampling capture (weights are samples)
    std::vector<std::string> written;     // files on disk, complete
    std::vector<std::string> not_written; // outputs that failed (result.errors / report_errors say why)
    std::vector<std::string> report_errors;
    analysis::Answers answers; // findings, recommendations, health (session.json written)
};

namespace detail {

inline const char* const capture_file_name = "capture.pycro";

// The capture a command names: FILE, or DIR/capture.pycro.
inline std::string resolve_capture(const std::string& source) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::file_status status = fs::status(source, ec);
    if (ec || !fs::exists(status)) {
        throw ConfigError("pycroscope: no such file or folder: '" + source + "'");
    }
    if (fs::is_directory(status)) {
        const fs::path file = fs::path(source) / capture_file_name;
        if (!fs::is_regular_file(file, ec)) {
            throw ConfigError("pycroscope: '" + source + "' holds no " + capture_file_name +
                              " (profile with --sinks ...,capture to record one)");
        }
        return file.string();
    }
    return source;
}

inline std::string folder_of(const std::string& file) {
    const std::filesystem::path parent = std::filesystem::path(file).parent_path();
    return parent.empty() ? std::string(".") : parent.string();
}

// Makes dir when missing; true when it did (so that a failure can remove it).
inline bool make_dir(const std::string& dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::is_directory(dir, ec)) {
        return false;
    }
    fs::create_directories(dir, ec);
    if (ec) {
        throw ConfigError("pycroscope: cannot create '" + dir + "': " + ec.message());
    }
    return true;
}

inline void remove_if_empty(const std::string& dir) noexcept {
    std::error_code ec;
    if (std::filesystem::is_empty(dir, ec) && !ec) {
        std::filesystem::remove(dir, ec);
    }
}

inline bool has_collector(const SessionInfo& info, const char* name) {
    return std::find(info.collectors.begin(), info.collectors.end(), name) != info.collectors.end();
}

// Replays source's capture into sinks (+ processors) writing into dir; the
// outcome lists what was written. Cleans up dir when the replay throws.
template <class Setup>
ReplayOutcome run_replay(const std::string& source, const std::string& dir_option, Setup setup) {
    ReplayOutcome outcome;
    outcome.capture = resolve_capture(source);
    capture::CaptureReader reader(outcome.capture); // a foreign file throws here, before any output exists
    outcome.output_dir = dir_option.empty() ? folder_of(outcome.capture) : dir_option;
    outcome.sampled = has_collector(reader.info(), "sampler");
    const bool made = make_dir(outcome.output_dir);
    std::vector<std::shared_ptr<EventProcessor>> processors;
    std::vector<std::shared_ptr<Sink>> sinks;
    std::vector<std::shared_ptr<sinks::FileSink>> files;
    try {
        setup(reader.info(), outcome, processors, sinks, files);
        outcome.result = capture::replay(reader, processors, sinks);
    } catch (...) {
        if (made) {
            remove_if_empty(outcome.output_dir);
        }
        throw;
    }
    for (const auto& file : files) {
        (file->written() ? outcome.written : outcome.not_written).push_back(file->path());
    }
    return outcome;
}

} // namespace detail

// session.json, stacks.folded, memory.folded, trace.json, report.html and
// report.md of a capture (see the top of this file).
inline ReplayOutcome replay_report(const std::string& source, const ReplayOptions& options = {}) {
    if (!options.json && !options.folded && !options.chrome) {
        throw ConfigError("pycroscope: no output selected: enable at least one of json, folded, chrome");
    }
    // Kept alive until the sinks closed: their sections read them.
    auto builder = std::make_shared<model::ProfileBuilder>();
    auto gc = std::make_shared<model::GcModel>();
    auto imports = std::make_shared<model::ImportModel>();
    auto io = std::make_shared<model::IoModel>();
    auto exceptions = std::make_shared<model::ExceptionModel>();
    std::shared_ptr<model::MemoryModel> memory; // when the capture has memory events
    std::shared_ptr<model::CallSizeModel> call_sizes; // when the run watched a function (--complexity)
    std::shared_ptr<sinks::SampleProfileSink> samples;
    std::shared_ptr<sinks::SampledStackSink> sampled_stacks;
    std::shared_ptr<sinks::JsonSummarySink> json;
    bool io_ran = false;
    auto answers = std::make_shared<sinks::AnswerSource>([&](const SessionSummary& summary) {
        analysis::AnswerOptions answer_options;
        answer_options.findings = options.patterns;
        // The memory model replayed from the same allocation events as live
        // gives the same peak and growing sites, so the same recommendations.
        return analysis::answer(builder->profile(), options.source_facts, analysis::memory_facts(memory.get()),
                                analysis::io_facts(io_ran ? io.get() : nullptr, summary.info), answer_options);
    });

    ReplayOutcome outcome = detail::run_replay(
        source, options.output_dir,
        [&](const SessionInfo& info, ReplayOutcome& out, std::vector<std::shared_ptr<EventProcessor>>& processors,
            std::vector<std::shared_ptr<Sink>>& sinks, std::vector<std::shared_ptr<sinks::FileSink>>& files) {
            const std::filesystem::path dir(out.output_dir);
            processors.push_back(builder);
            // A model only for a collector that ran: zeros would read as "none happened".
            const bool has_gc = detail::has_collector(info, "gc");
            const bool has_imports = detail::has_collector(info, "imports");
            const bool has_io = detail::has_collector(info, "io");
            const bool has_exceptions = detail::has_collector(info, "exceptions");
            const bool has_memory = detail::has_collector(info, "memory");
            io_ran = has_io;
            if (has_gc) processors.push_back(gc);
            if (has_imports) processors.push_back(imports);
            if (has_io) processors.push_back(io);
            if (has_exceptions) processors.push_back(exceptions);
            if (has_memory) {
                memory = std::make_shared<model::MemoryModel>();
                processors.push_back(memory);
            }
            const std::string watched = sinks::complexity_function_of(info);
            if (!watched.empty()) {
                call_sizes = std::make_shared<model::CallSizeModel>();
                processors.push_back(call_sizes);
            }
            const model::SampleProfile* sample_profile = nullptr;
            if (out.sampled) {
                if (options.folded) {
                    sampled_stacks = std::make_shared<sinks::SampledStackSink>((dir / "stacks.folded").string());
                    sample_profile = &sampled_stacks->profile();
                    sinks.push_back(sampled_stacks);
                } else {
                    samples = std::make_shared<sinks::SampleProfileSink>();
                    sample_profile = &samples->profile();
                    sinks.push_back(samples);
                }
            }
            if (options.json) {
                json = std::make_shared<sinks::JsonSummarySink>((dir / "session.json").string());
                if (!out.sampled) {
                    json->use_profile(builder);
                }
                const sinks::JsonSummarySink* source_sink = json.get();
                const model::ProfileBuilder* graph = builder.get();
                json->add_section("functions", [source_sink, graph](sinks::JsonWriter& w, const SessionSummary&) {
                    sinks::write_function_entries(w, *source_sink, LocationKind::python_function, graph);
                });
                json->add_section("c_functions", [source_sink, graph](sinks::JsonWriter& w, const SessionSummary&) {
                    sinks::write_function_entries(w, *source_sink, LocationKind::c_function, graph);
                });
                sinks::add_profile_sections(*json, *builder);
                if (sample_profile != nullptr) {
                    sinks::add_hotspot_section(*json, *sample_profile, sinks::HotspotOptions{});
                }
                if (has_gc) model::add_gc_section(*json, *gc);
                if (has_imports) model::add_imports_section(*json, *imports);
                if (has_io) model::add_io_section(*json, *io);
                if (has_exceptions) model::add_exceptions_section(*json, *exceptions);
                sinks::add_answer_sections(*json, answers, options.patterns);
                if (call_sizes) {
                    sinks::add_complexity_section(*json, watched, *call_sizes);
                }
                if (!out.sampled) {
                    // The calibration's counters in the capture give the builder its bias.
                    static const std::string no_bias = "no calibration in the capture";
                    sinks::add_compensation_section(*json, *builder, nullptr, &no_bias);
                }
                sinks.push_back(json);
                files.push_back(json);
            }
            if (sampled_stacks) {
                files.push_back(sampled_stacks);
            } else if (options.folded) {
                auto folded = std::make_shared<sinks::FoldedStackSink>((dir / "stacks.folded").string(), builder);
                sinks.push_back(folded);
                files.push_back(folded);
                if (has_memory) {
                    auto folded_memory =
                        std::make_shared<sinks::MemoryFoldedSink>((dir / "memory.folded").string(), memory);
                    sinks.push_back(folded_memory);
                    files.push_back(folded_memory);
                }
            }
            if (options.chrome) {
                auto chrome = std::make_shared<sinks::ChromeTraceSink>((dir / "trace.json").string());
                sinks.push_back(chrome);
                files.push_back(chrome);
            }
        });

    if (answers->ready()) {
        outcome.answers = answers->answers();
    }
    if (options.reports && (options.json || options.folded)) {
        const auto inputs = report::ReportInputs::from_output_dir(outcome.output_dir);
        using Writer = void (*)(const std::string&, const report::ReportInputs&);
        const std::pair<const char*, Writer> writers[] = {
            {"report.html",
             [](const std::string& path, const report::ReportInputs& in) { report::write_html_report(path, in); }},
            {"report.md",
             [](const std::string& path, const report::ReportInputs& in) { report::write_markdown_report(path, in); }}};
        for (const auto& writer : writers) {
            const std::string path = (std::filesystem::path(outcome.output_dir) / writer.first).string();
            try {
                writer.second(path, inputs);
                outcome.written.push_back(path);
            } catch (const std::exception& error) {
                outcome.report_errors.push_back(error.what());
                outcome.not_written.push_back(path);
            }
        }
    }
    return outcome;
}

// One make_export_sink() format of a capture; path empty: export_file_name(format)
// in the capture's folder.
inline ReplayOutcome replay_export(const std::string& source, const std::string& format, const std::string& path = {}) {
    const std::string file_name = sinks::export_file_name(format); // an unknown format throws first
    std::string dir = path.empty() ? std::string() : detail::folder_of(path);
    ReplayOutcome outcome = detail::run_replay(
        source, dir,
        [&](const SessionInfo&, ReplayOutcome& out, std::vector<std::shared_ptr<EventProcessor>>& processors,
            std::vector<std::shared_ptr<Sink>>& sinks, std::vector<std::shared_ptr<sinks::FileSink>>& files) {
            const std::string target =
                path.empty() ? (std::filesystem::path(out.output_dir) / file_name).string() : path;
            if (std::filesystem::path(target) == std::filesystem::path(out.capture)) {
                throw ConfigError("pycroscope: refusing to overwrite the capture itself: '" + target + "'");
            }
            // The times of a traced run's callgrind profile come from the
            // Profile, as session.json's do (compensated alike).
            std::shared_ptr<model::ProfileBuilder> profile;
            if (format == "callgrind" && !out.sampled) {
                profile = std::make_shared<model::ProfileBuilder>();
                processors.push_back(profile);
            }
            // The sampling interval is not recorded in the capture: 0 (unknown).
            auto sink = sinks::make_export_sink(format, target, 0, profile);
            sinks.push_back(sink);
            files.push_back(sink);
        });
    return outcome;
}

} // namespace profile
} // namespace pycroscope
