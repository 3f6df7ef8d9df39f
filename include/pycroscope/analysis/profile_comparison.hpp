#pragma once
// Before/after: two sets of runs of the same program (each run's totals and
// per-function times), compared metric by metric with a noise-aware rule:
//
//   a change is reported when |median change| >= threshold (default 5%);
//   it is significant when, in addition, both sides have at least two runs
//   and the Mann-Whitney U test gives p < alpha (default 0.01).
//
// One run against one run has no statistics: changes beyond the threshold
// are listed, none is significant. Small functions are left out (their
// time is below min_share of the run's wall time on both sides; self time
// is held to the same share on its own), because a
// few microseconds move by more than any threshold between two identical
// runs. Method and defaults: docs/compare.md.
//
//     auto result = pycroscope::analysis::compare_runs(base_runs, candidate_runs);
//     if (result.has_significant_regression()) ... // the CI gate

#include "pycroscope/analysis/mann_whitney.hpp"
#include "pycroscope/analysis/step_detection.hpp"
#include "pycroscope/model/profile.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace pycroscope {
namespace analysis {

struct FunctionId {
    std::string name;
    std::string file;
    std::uint32_t line = 0;
    bool operator<(const FunctionId& o) const { return std::tie(file, line, name) < std::tie(o.file, o.line, o.name); }
    bool operator==(const FunctionId& o) const { return name == o.name && file == o.file && line == o.line; }
};

struct FunctionMeasures {
    double self_ns = 0;
    double total_ns = 0;
    double calls = 0;
    double allocated_bytes = 0;
};

// What one run contributes to a comparison.
struct RunMeasures {
    double wall_ns = 0;
    double peak_bytes = 0; // 0: memory not tracked
    std::map<FunctionId, FunctionMeasures> functions;
};

// The functions of a traced Profile (Python and C functions, zones); the
// allocated bytes are added by the caller from the memory section.
inline RunMeasures run_measures(const model::Profile& profile) {
    RunMeasures run;
    run.wall_ns = static_cast<double>(profile.wall_ns);
    for (const model::Function& f : profile.functions) {
        FunctionMeasures& m = run.functions[FunctionId{f.name, f.file, f.line}];
        m.self_ns += static_cast<double>(f.self);
        m.total_ns += static_cast<double>(f.inclusive);
        m.calls += static_cast<double>(f.calls);
    }
    return run;
}

enum class Metric { self_time, total_time, calls, allocated_bytes, wall_time, peak_memory };

inline const char* metric_name(Metric metric) noexcept {
    switch (metric) {
    case Metric::self_time: return "self_time";
    case Metric::total_time: return "total_time";
    case Metric::calls: return "calls";
    case Metric::allocated_bytes: return "allocated_bytes";
    case Metric::wall_time: return "wall_time";
    case Metric::peak_memory: return "peak_memory";
    }
    return "?";
}

inline bool is_time(Metric metric) noexcept {
    return metric == Metric::self_time || metric == Metric::total_time || metric == Metric::wall_time;
}

struct CompareOptions {
    double threshold = 0.05; // minimum relative change of the median
    double alpha = 0.01;     // significance level of the Mann-Whitney test
    double min_share = 0.01; // functions below this share of the wall time (both sides) are skipped
};

struct MetricChange {
    FunctionId function; // empty name: the whole run
    Metric metric = Metric::wall_time;
    double base = 0;      // median over the base runs
    double candidate = 0; // median over the candidate runs
    double change = 0;    // (candidate - base) / base
    double p_value = 1;   // meaningful only when tested
    bool tested = false;  // both sides had at least two runs
    bool significant = false;
    bool beyond_threshold = false;
};

struct Comparison {
    std::size_t base_runs = 0;
    std::size_t candidate_runs = 0;
    bool statistics = false;       // both sides have at least two runs
    double smallest_p_value = 0;   // the smallest p the test can give with these run counts
    CompareOptions options;
    MetricChange wall_time;
    MetricChange peak_memory;      // base and candidate 0 when memory was not tracked
    std::vector<MetricChange> regressions;   // beyond the threshold, worse; most important first
    std::vector<MetricChange> improvements;  // beyond the threshold, better
    std::vector<FunctionId> only_in_base;      // above min_share, absent from the candidate
    std::vector<FunctionId> only_in_candidate; // above min_share, absent from the base

    bool has_significant_regression() const {
        for (const MetricChange& c : regressions) {
            if (c.significant) {
                return true;
            }
        }
        return false;
    }
};

namespace detail {

inline MetricChange measure_change(const std::vector<double>& base, const std::vector<double>& candidate,
                                   const CompareOptions& options) {
    MetricChange c;
    c.base = median(base);
    c.candidate = median(candidate);
    if (c.base != 0) {
        c.change = (c.candidate - c.base) / std::fabs(c.base);
    } else {
        c.change = c.candidate != 0 ? 1.0 : 0.0; // from nothing: counted as +100%
    }
    c.beyond_threshold = std::fabs(c.change) >= options.threshold;
    if (base.size() >= 2 && candidate.size() >= 2) {
        c.tested = true;
        c.p_value = mann_whitney_u(base, candidate).p_value;
        c.significant = c.beyond_threshold && c.p_value < options.alpha;
    }
    return c;
}

// Most important first: significant changes before the others; then where
// the cost is, before what it propagates to: self time (by the absolute
// change of the median, what a user wins back), allocated bytes (absolute
// change), total time (every caller of a slower function grows too), calls
// (relative change); whole-run metrics last (they are in the summary too).
inline bool more_important(const MetricChange& a, const MetricChange& b) {
    if (a.significant != b.significant) {
        return a.significant;
    }
    auto group = [](const MetricChange& c) {
        if (c.function.name.empty()) {
            return 4;
        }
        switch (c.metric) {
        case Metric::self_time: return 0;
        case Metric::allocated_bytes: return 1;
        case Metric::total_time: return 2;
        default: return 3;
        }
    };
    const int ga = group(a), gb = group(b);
    if (ga != gb) {
        return ga < gb;
    }
    const double sa = ga == 3 ? std::fabs(a.change) : std::fabs(a.candidate - a.base);
    const double sb = gb == 3 ? std::fabs(b.change) : std::fabs(b.candidate - b.base);
    return sa > sb;
}

} // namespace detail

// The smallest two-sided p-value the exact test can reach with n1 and n2
// runs (complete separation): 2 / C(n1 + n2, n1).
inline double smallest_p_value(std::size_t n1, std::size_t n2) {
    if (n1 == 0 || n2 == 0) {
        return 1.0;
    }
    double combinations = 1;
    for (std::size_t i = 1; i <= n1; ++i) {
        combinations = combinations * static_cast<double>(n2 + i) / static_cast<double>(i);
    }
    return std::min(1.0, 2.0 / combinations);
}

inline Comparison compare_runs(const std::vector<RunMeasures>& base, const std::vector<RunMeasures>& candidate,
                               const CompareOptions& options = {}) {
    Comparison result;
    result.options = options;
    result.base_runs = base.size();
    result.candidate_runs = candidate.size();
    result.statistics = base.size() >= 2 && candidate.size() >= 2;
    result.smallest_p_value = smallest_p_value(base.size(), candidate.size());
    if (base.empty() || candidate.empty()) {
        return result;
    }
    auto collect = [](const std::vector<RunMeasures>& runs, auto get) {
        std::vector<double> values;
        values.reserve(runs.size());
        for (const RunMeasures& r : runs) {
            values.push_back(get(r));
        }
        return values;
    };
    std::vector<MetricChange> changes;
    auto add = [&](MetricChange c, const FunctionId& id, Metric metric) {
        c.function = id;
        c.metric = metric;
        if (c.beyond_threshold) {
            changes.push_back(c);
        }
        return c;
    };
    result.wall_time = add(detail::measure_change(collect(base, [](const RunMeasures& r) { return r.wall_ns; }),
                                                  collect(candidate, [](const RunMeasures& r) { return r.wall_ns; }),
                                                  options),
                           FunctionId{}, Metric::wall_time);
    const auto base_peak = collect(base, [](const RunMeasures& r) { return r.peak_bytes; });
    const auto candidate_peak = collect(candidate, [](const RunMeasures& r) { return r.peak_bytes; });
    if (median(base_peak) > 0 && median(candidate_peak) > 0) {
        result.peak_memory = add(detail::measure_change(base_peak, candidate_peak, options), FunctionId{},
                                 Metric::peak_memory);
    } else {
        result.peak_memory.metric = Metric::peak_memory;
    }

    // Every function seen on either side; a run without it counts zero.
    std::map<FunctionId, bool> ids;
    for (const auto* side : {&base, &candidate}) {
        for (const RunMeasures& r : *side) {
            for (const auto& f : r.functions) {
                ids[f.first] = true;
            }
        }
    }
    const double base_wall = std::max(result.wall_time.base, 1.0);
    const double candidate_wall = std::max(result.wall_time.candidate, 1.0);
    auto total_allocated = [](const RunMeasures& r) {
        double sum = 0;
        for (const auto& f : r.functions) {
            sum += f.second.allocated_bytes;
        }
        return sum;
    };
    const double base_allocated = median(collect(base, total_allocated));
    const double candidate_allocated = median(collect(candidate, total_allocated));
    for (const auto& entry : ids) {
        const FunctionId& id = entry.first;
        auto values = [&](const std::vector<RunMeasures>& runs, double FunctionMeasures::*field) {
            std::vector<double> out;
            out.reserve(runs.size());
            for (const RunMeasures& r : runs) {
                const auto it = r.functions.find(id);
                out.push_back(it == r.functions.end() ? 0.0 : it->second.*field);
            }
            return out;
        };
        const auto base_total = values(base, &FunctionMeasures::total_ns);
        const auto candidate_total = values(candidate, &FunctionMeasures::total_ns);
        const double base_median = median(base_total), candidate_median = median(candidate_total);
        const bool base_big = base_median >= options.min_share * base_wall;
        const bool candidate_big = candidate_median >= options.min_share * candidate_wall;
        const auto base_calls = values(base, &FunctionMeasures::calls);
        const auto candidate_calls = values(candidate, &FunctionMeasures::calls);
        if (base_big || candidate_big) {
            if (median(base_calls) == 0 && base_median == 0) {
                result.only_in_candidate.push_back(id);
                continue;
            }
            if (median(candidate_calls) == 0 && candidate_median == 0) {
                result.only_in_base.push_back(id);
                continue;
            }
            // Self time has its own share: a big caller with little self time is noise there.
            const auto base_self = values(base, &FunctionMeasures::self_ns);
            const auto candidate_self = values(candidate, &FunctionMeasures::self_ns);
            if (median(base_self) >= options.min_share * base_wall ||
                median(candidate_self) >= options.min_share * candidate_wall) {
                add(detail::measure_change(base_self, candidate_self, options), id, Metric::self_time);
            }
            add(detail::measure_change(base_total, candidate_total, options), id, Metric::total_time);
            add(detail::measure_change(base_calls, candidate_calls, options), id, Metric::calls);
        }
        const auto base_bytes = values(base, &FunctionMeasures::allocated_bytes);
        const auto candidate_bytes = values(candidate, &FunctionMeasures::allocated_bytes);
        const double bb = median(base_bytes), cb = median(candidate_bytes);
        if ((bb > 0 || cb > 0) && (bb >= options.min_share * base_allocated || cb >= options.min_share * candidate_allocated)) {
            add(detail::measure_change(base_bytes, candidate_bytes, options), id, Metric::allocated_bytes);
        }
    }
    std::stable_sort(changes.begin(), changes.end(), detail::more_important);
    for (MetricChange& c : changes) {
        (c.change > 0 ? result.regressions : result.improvements).push_back(std::move(c));
    }
    return result;
}

} // namespace analysis
} // namespace pycroscope
