#pragma once
// The answers' sections of session.json (analysis/answers.hpp; schema in
// docs/analysis.md):
//
//   "findings"          anti-patterns tied to the time of their lines
//   "recommendations"   what to change, where, and the whole-run gain
//   "health"            the score, its penalties and what cost the most
//   "pattern_analysis"  what the source pass read, skipped and took

#include "pycroscope/analysis/answers.hpp"
#include "pycroscope/sinks/json_summary_sink.hpp"
#include "pycroscope/sinks/json_writer.hpp"

#include <functional>
#include <memory>

namespace pycroscope {
namespace sinks {

inline void write_findings(JsonWriter& json, const analysis::FindingReport& report) {
    json.begin_array();
    for (const analysis::Finding& f : report.findings) {
        json.begin_object()
            .field("kind", f.kind)
            .field("file", f.file)
            .field("line", f.line)
            .field("end_line", f.end_line)
            .field("function", f.function)
            .field("severity", analysis::to_string(f.severity))
            .field("message", f.message)
            .field("suggestion", f.suggestion)
            .field("time_share", f.time_share)
            .field("estimated_saving", f.estimated_saving)
            .field("estimated_speedup", f.estimated_speedup)
            .field("time_basis", f.time_basis)
            .end_object();
    }
    json.end_array();
}

inline void write_recommendations(JsonWriter& json, const std::vector<analysis::Recommendation>& recommendations) {
    json.begin_array();
    for (const analysis::Recommendation& r : recommendations) {
        json.begin_object()
            .field("source", r.source)
            .field("kind", r.kind)
            .field("file", r.file)
            .field("line", r.line)
            .field("function", r.function)
            .field("severity", analysis::to_string(r.severity))
            .field("message", r.message)
            .field("suggestion", r.suggestion)
            .field("time_share", r.time_share)
            .field("estimated_saving", r.estimated_saving)
            .field("estimated_speedup", r.estimated_speedup)
            .end_object();
    }
    json.end_array();
}

inline void write_health(JsonWriter& json, const analysis::HealthScore& health) {
    json.begin_object()
        .field("score", health.score)
        .field("formula", "100 - min(40, time) - min(30, patterns) - min(15, memory) - min(15, io)");
    json.key("penalties")
        .begin_object()
        .field("time", health.time_penalty)
        .field("patterns", health.pattern_penalty)
        .field("memory", health.memory_penalty)
        .field("io", health.io_penalty)
        .end_object();
    json.key("costs").begin_array();
    for (const analysis::HealthCost& c : health.costs) {
        json.begin_object()
            .field("item", c.item)
            .field("file", c.file)
            .field("line", c.line)
            .field("points", c.points)
            .end_object();
    }
    json.end_array().end_object();
}

inline void write_pattern_analysis(JsonWriter& json, const analysis::Answers& answers,
                                   const analysis::FindingOptions& options) {
    const analysis::FindingReport& r = answers.findings;
    json.begin_object()
        .field("enabled", options.enabled)
        .field("files_analysed", static_cast<std::uint64_t>(r.files_analysed))
        .field("line_data", r.line_data)
        .field("severity_threshold", analysis::to_string(options.threshold))
        .field("below_threshold", static_cast<std::uint64_t>(r.below_threshold))
        .field("include_libraries", options.include_libraries)
        .field("source_seconds", r.seconds)
        .field("seconds", answers.seconds)
        .field("error", r.error);
    json.key("detectors").begin_array();
    const auto& kinds = analysis::finding_kinds();
    for (const char* kind : kinds) {
        if (options.wants(kind)) {
            json.value(kind);
        }
    }
    json.end_array();
    json.key("skipped").begin_array();
    for (const analysis::SkippedSource& s : r.skipped) {
        json.begin_object().field("file", s.file).field("reason", s.reason).end_object();
    }
    json.end_array().end_object();
}

// Answers computed once, at the first section that needs them (the Profile
// is complete once processors closed, before any sink writes).
class AnswerSource {
public:
    using Compute = std::function<analysis::Answers(const SessionSummary&)>;
    explicit AnswerSource(Compute compute) : compute_(std::move(compute)) {}
    const analysis::Answers& get(const SessionSummary& summary) {
        if (!ready_) {
            answers_ = compute_(summary);
            ready_ = true;
        }
        return answers_;
    }
    bool ready() const noexcept { return ready_; }
    const analysis::Answers& answers() const noexcept { return answers_; }
    void reset() noexcept { ready_ = false; }

private:
    Compute compute_;
    analysis::Answers answers_;
    bool ready_ = false;
};

// Registers "findings", "recommendations", "health" and "pattern_analysis".
// source must outlive the session's stop().
inline void add_answer_sections(JsonSummarySink& sink, std::shared_ptr<AnswerSource> source,
                                const analysis::FindingOptions& options) {
    sink.add_section("findings", [source](JsonWriter& json, const SessionSummary& summary) {
        write_findings(json, source->get(summary).findings);
    });
    sink.add_section("recommendations", [source](JsonWriter& json, const SessionSummary& summary) {
        write_recommendations(json, source->get(summary).recommendations);
    });
    sink.add_section("health", [source](JsonWriter& json, const SessionSummary& summary) {
        write_health(json, source->get(summary).health);
    });
    sink.add_section("pattern_analysis", [source, options](JsonWriter& json, const SessionSummary& summary) {
        write_pattern_analysis(json, source->get(summary), options);
    });
}

} // namespace sinks
} // namespace pycroscope
