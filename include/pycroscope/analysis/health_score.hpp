#pragma once
// The health score of a run, 0 (worst) to 100:
//
//   score = 100 - time - patterns - memory - io, each penalty capped
//     time      min(40, 100 x the sum of the findings' estimated_saving):
//               the time the patterns are measured to waste, in % of the run
//     patterns  min(30, sum over findings of 10 / 4 / 1.5 / 0.25 points
//               for critical / high / medium / low)
//     memory    min(15, 5 per steadily growing site, + 5 for a peak above 1 GiB)
//     io        min(15, blocking I/O share of the run / 2), I/O of the
//               analysed sources only (an import reading its .pyc is not the program's)
//
// A hot function without a pattern costs nothing: a program that computes
// is not unhealthy for computing. costs lists what cost the most points
// (before the caps), most first.

#include "pycroscope/analysis/findings.hpp"
#include "pycroscope/analysis/recommendations.hpp"

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

namespace pycroscope {
namespace analysis {

struct HealthCost {
    std::string item; // what: a finding, memory growth, blocking I/O
    std::string file;
    std::uint32_t line = 0;
    double points = 0;
};

struct HealthScore {
    int score = 100;
    double time_penalty = 0;
    double pattern_penalty = 0;
    double memory_penalty = 0;
    double io_penalty = 0;
    std::vector<HealthCost> costs; // most points first
};

inline double severity_points(Severity severity) noexcept {
    switch (severity) {
    case Severity::critical: return 10.0;
    case Severity::high: return 4.0;
    case Severity::medium: return 1.5;
    case Severity::low: return 0.25;
    }
    return 0.25;
}

// sources: as for recommend().
inline HealthScore health_score(const model::Profile& profile, const std::vector<Finding>& findings,
                                const MemoryFacts& memory, const IoFacts& io,
                                const std::vector<std::string>& sources = {}, std::size_t top_costs = 5) {
    HealthScore h;
    double time = 0, patterns = 0, mem = 0, io_pct = 0;
    for (const Finding& f : findings) {
        time += 100 * f.estimated_saving;
        patterns += severity_points(f.severity);
        HealthCost cost;
        cost.item = f.kind + " in " + f.function;
        cost.file = f.file;
        cost.line = f.line;
        cost.points = 100 * f.estimated_saving + severity_points(f.severity);
        h.costs.push_back(std::move(cost));
    }
    if (memory.present) {
        for (const MemoryFacts::Growth& g : memory.growing) {
            mem += 5;
            h.costs.push_back(HealthCost{"memory growth in " + g.function, g.file, g.line, 5});
        }
        if (memory.peak_bytes > RecommendationOptions{}.peak_bytes_limit) {
            mem += 5;
            h.costs.push_back(HealthCost{"memory peak above 1 GiB", "", 0, 5});
        }
    }
    if (io.present && profile.unit == model::Unit::nanoseconds) {
        for (const IoFacts::Site& site : io.sites) {
            const bool own = sources.empty() ? !site.file.empty() && site.file.front() != '<'
                                             : std::find(sources.begin(), sources.end(), site.file) != sources.end();
            if (!own) {
                continue;
            }
            const double pct = detail::share(site.time_ns, profile.total);
            io_pct += pct;
            if (pct / 2 >= 0.5) {
                h.costs.push_back(HealthCost{"blocking " + site.operation, site.file, site.line, pct / 2});
            }
        }
    }
    h.time_penalty = std::min(40.0, time);
    h.pattern_penalty = std::min(30.0, patterns);
    h.memory_penalty = std::min(15.0, mem);
    h.io_penalty = std::min(15.0, io_pct / 2);
    const double score = 100.0 - h.time_penalty - h.pattern_penalty - h.memory_penalty - h.io_penalty;
    h.score = static_cast<int>(std::max(0.0, std::min(100.0, score)) + 0.5);
    std::stable_sort(h.costs.begin(), h.costs.end(),
                     [](const HealthCost& a, const HealthCost& b) { return a.points > b.points; });
    if (h.costs.size() > top_costs) {
        h.costs.resize(top_costs);
    }
    return h;
}

} // namespace analysis
} // namespace pycroscope
