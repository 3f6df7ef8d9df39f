#pragma once
// Where did a series of measurements (one per stored session, oldest first)
// change level? `pycroscope history` uses it to name the session where a
// regression began.
//
//     auto step = pycroscope::analysis::detect_step(wall_times);
//     if (step.found) ... step.index is the first session of the new level
//
// Method (docs/compare.md): for each split with at least min_segment points
// on each side, score = |median(after) - median(before)| / spread, where
// spread is the pooled median absolute deviation of both segments around
// their own medians (times 1.4826, a standard deviation for normal noise),
// floored at 1% of the earlier median so a perfectly flat series cannot
// divide by zero. The split with the highest score wins (equal scores: the
// one whose segments lie closer to their medians); it is a step when
// the score reaches min_score and the medians differ by at least
// min_change (relative).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace pycroscope {
namespace analysis {

struct StepOptions {
    std::size_t min_segment = 2; // points on each side of the split
    double min_score = 3.0;      // median difference in units of spread
    double min_change = 0.05;    // relative change of the median
};

struct Step {
    bool found = false;
    std::size_t index = 0;   // first point after the step (when found, or the best split tried)
    double before = 0;       // median before the split
    double after = 0;        // median from index on
    double change = 0;       // (after - before) / before; 0 when before is 0
    double score = 0;        // |after - before| / spread
};

namespace detail {

inline double median_of(std::vector<double> v) {
    if (v.empty()) {
        return 0;
    }
    const std::size_t mid = v.size() / 2;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
    const double upper = v[mid];
    if (v.size() % 2 == 1) {
        return upper;
    }
    const double lower = *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid));
    return (lower + upper) / 2.0;
}

} // namespace detail

inline double median(const std::vector<double>& values) { return detail::median_of(values); }

inline Step detect_step(const std::vector<double>& series, const StepOptions& options = {}) {
    Step best;
    const std::size_t n = series.size();
    const std::size_t seg = std::max<std::size_t>(1, options.min_segment);
    if (n < 2 * seg) {
        return best;
    }
    bool tried = false;
    double best_cost = 0; // sum of |x - its segment's median| of the best split
    for (std::size_t k = seg; k + seg <= n; ++k) {
        const std::vector<double> left(series.begin(), series.begin() + static_cast<std::ptrdiff_t>(k));
        const std::vector<double> right(series.begin() + static_cast<std::ptrdiff_t>(k), series.end());
        const double ml = median(left), mr = median(right);
        std::vector<double> deviations;
        deviations.reserve(n);
        double cost = 0;
        for (double v : left) {
            deviations.push_back(std::fabs(v - ml));
            cost += deviations.back();
        }
        for (double v : right) {
            deviations.push_back(std::fabs(v - mr));
            cost += deviations.back();
        }
        const double floor = 0.01 * std::fabs(ml);
        double spread = std::max(1.4826 * median(deviations), floor);
        if (spread <= 0) {
            spread = 1e-12; // both medians 0 and no deviation
        }
        const double score = std::fabs(mr - ml) / spread;
        if (!tried || score > best.score || (score == best.score && cost < best_cost)) {
            tried = true;
            best_cost = cost;
            best.index = k;
            best.before = ml;
            best.after = mr;
            best.score = score;
            best.change = ml != 0 ? (mr - ml) / std::fabs(ml) : 0;
        }
    }
    best.found = best.score >= options.min_score && std::fabs(best.change) >= options.min_change;
    return best;
}

} // namespace analysis
} // namespace pycroscope
