#pragma once
// The "complexity" section of session.json, for `--complexity FUNC`: the
// watched function's calls by argument size (model/call_size_model.hpp),
// fitted by analysis::fit_complexity (docs/complexity.md):
//
//   {"function": "solve", "calls": 40, "unsized_calls": 0,
//    "best": "O(n^2)" | null, "r2": 0.99 | null, "error": null | "insufficient data: ...",
//    "points": [[n, seconds], ...],          // per size, the fastest call
//    "models": [{"name", "fitted", "a", "b", "error", "score", "r2"}, ...]}

#include "pycroscope/analysis/complexity_fit.hpp"
#include "pycroscope/core/session_info.hpp"
#include "pycroscope/model/call_size_model.hpp"
#include "pycroscope/sinks/json_summary_sink.hpp"
#include "pycroscope/sinks/json_writer.hpp"

#include <cstdio>
#include <string>
#include <vector>

namespace pycroscope {
namespace sinks {

// The session metadata key naming the watched function: a capture keeps it,
// and a replay rebuilds the section from the sizes the watched calls carry.
constexpr const char* complexity_metadata_key = "complexity_function";

// The watched function a session's metadata names, or empty.
inline std::string complexity_function_of(const SessionInfo& info) {
    for (const auto& entry : info.metadata) {
        if (entry.first == complexity_metadata_key) {
            return entry.second;
        }
    }
    return {};
}

// The fit of a model's calls; ticks converted with info.
inline analysis::ComplexityFit fit_call_sizes(const model::CallSizeModel& model, const SessionInfo& info) {
    std::vector<analysis::ComplexityPoint> points;
    for (const model::CallSizeModel::SizeBin& bin : model.bins()) {
        points.push_back({bin.size(), info.ticks_to_ns(bin.min_ticks) / 1e9});
    }
    return analysis::fit_complexity(points);
}

inline void write_complexity(JsonWriter& json, const std::string& function, const model::CallSizeModel& model,
                             const analysis::ComplexityFit& fit) {
    json.begin_object().field("function", function).field("calls", model.calls()).field("unsized_calls",
                                                                                       model.unsized_calls());
    json.key("best");
    fit.ok ? json.value(fit.best) : json.null();
    json.key("r2");
    fit.ok ? json.value(fit.r2) : json.null();
    json.key("error");
    fit.ok ? json.null() : json.value(fit.error);
    json.key("points").begin_array();
    for (const analysis::ComplexityPoint& point : fit.points) {
        json.begin_array().value(point.n).value(point.seconds).end_array();
    }
    json.end_array();
    json.key("models").begin_array();
    for (const analysis::ComplexityModelFit& m : fit.models) {
        json.begin_object().field("name", m.name).field("fitted", m.fitted);
        for (const auto& number : {std::make_pair("a", m.a), std::make_pair("b", m.b), std::make_pair("error", m.error),
                                   std::make_pair("score", m.score), std::make_pair("r2", m.r2)}) {
            json.key(number.first);
            m.fitted ? json.value(number.second) : json.null();
        }
        json.end_object();
    }
    json.end_array().end_object();
}

// model must outlive the session's stop().
inline void add_complexity_section(JsonSummarySink& sink, std::string function, const model::CallSizeModel& model) {
    const model::CallSizeModel* source = &model;
    sink.add_section("complexity", [source, function](JsonWriter& json, const SessionSummary& summary) {
        write_complexity(json, function, *source, fit_call_sizes(*source, summary.info));
    });
}

// The terminal summary's line: "pycroscope: complexity of solve: O(n^2) (r2 0.99, 40 calls, 12 sizes)".
inline std::string complexity_line(const std::string& function, const model::CallSizeModel& model,
                                   const analysis::ComplexityFit& fit) {
    char text[256];
    if (fit.ok) {
        std::snprintf(text, sizeof text, "complexity of %s: %s (r2 %.2f, %llu calls, %zu sizes)", function.c_str(),
                      fit.best.c_str(), fit.r2, static_cast<unsigned long long>(model.calls()), fit.points.size());
    } else if (model.calls() == 0) {
        std::snprintf(text, sizeof text, "complexity of %s: not fitted, the function was never called",
                      function.c_str());
    } else {
        std::snprintf(text, sizeof text, "complexity of %s: not fitted, %s (%llu calls, %llu without a sized argument)",
                      function.c_str(), fit.error.c_str(), static_cast<unsigned long long>(model.calls()),
                      static_cast<unsigned long long>(model.unsized_calls()));
    }
    return text;
}

} // namespace sinks
} // namespace pycroscope
