#pragma once
// Empirical complexity: which of O(1), O(log n), O(n), O(n log n), O(n^2),
// O(n^3), O(2^n) best explains measured (n, seconds) points. Python-free;
// pycroscope.complexity() and `pycroscope profile --complexity` call it.
//
// Each model is t(n) = a + b * g(n) with a, b >= 0 (a: the fixed cost of a
// call, b: the cost per unit of growth), fitted by least squares on the
// RELATIVE error (weights 1 / t^2): timing noise is multiplicative, and an
// absolute fit would let the largest n decide alone. Models are compared by
// BIC on the log-ratio residuals ln(t / t_model): m ln(RSS/m) + k ln(m),
// k = 1 for O(1) and 2 for the others. The pick is the simplest model whose
// BIC is within `parsimony` of the
// lowest: 6, "strong evidence" on Kass and Raftery's scale, so noise does
// not buy a more complex model; and a pick that predicts less than 30% more
// time over the whole range is O(1). docs/complexity.md says why.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstddef>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace pycroscope {
namespace analysis {

struct ComplexityPoint {
    double n = 0;
    double seconds = 0;
};

// One model's fit. fitted is false when the model cannot be evaluated on
// these sizes (O(2^n) beyond n = 1000): its numbers are then meaningless.
struct ComplexityModelFit {
    std::string name;   // "O(n log n)"
    bool fitted = false;
    double a = 0;       // seconds: the constant term
    double b = 0;       // seconds per unit of g(n)
    double error = 0;   // root mean square of ln(t / t_model): about the relative error
    double score = 0;   // BIC; lower is better
    double r2 = 0;      // on ln(t): the share of the variance of ln(t) the model explains
};

struct ComplexityFitOptions {
    std::size_t min_points = 4;   // distinct sizes needed
    double min_size_ratio = 3.0;  // largest size / smallest size needed
    double parsimony = 6.0;       // BIC margin within which the simpler model wins
    // The pick must predict at least this much more time at the largest size
    // than at the smallest, or it is O(1): flat functions show steps of 10-25%
    // where their data leaves a cache level, which are not a complexity class.
    double min_growth = 1.3;
};

struct ComplexityFit {
    bool ok = false;
    std::string error;                    // why not ok ("insufficient data: ...")
    std::string best;                     // a model name when ok
    double r2 = 0;                        // the best model's
    std::vector<ComplexityModelFit> models; // simplest first
    std::vector<ComplexityPoint> points;  // the points used: valid ones, by size
    std::size_t dropped = 0;              // points with n < 1, seconds <= 0 or not finite
};

// The model names, simplest first.
inline const std::vector<std::string>& complexity_model_names() {
    static const std::vector<std::string> names{"O(1)", "O(log n)", "O(n)", "O(n log n)", "O(n^2)", "O(n^3)",
                                                "O(2^n)"};
    return names;
}

namespace detail {

// g(n) of model index; O(log n) uses ln(n + 1) so that n = 1 is not a zero.
inline double growth(std::size_t model, double n) {
    switch (model) {
    case 0: return 1.0;
    case 1: return std::log(n + 1.0);
    case 2: return n;
    case 3: return n * std::log(n + 1.0);
    case 4: return n * n;
    case 5: return n * n * n;
    default: return std::exp2(n);
    }
}

struct LinearFit {
    double a = 0;
    double b = 0;
    double weighted_sse = std::numeric_limits<double>::infinity();
};

inline double weighted_sse(const std::vector<double>& t, const std::vector<double>& g, double a, double b) {
    double sse = 0;
    for (std::size_t i = 0; i < t.size(); ++i) {
        const double r = (t[i] - a - b * g[i]) / t[i];
        sse += r * r;
    }
    return sse;
}

// min sum ((t - a - b g) / t)^2 over a, b >= 0. g is scaled to at most 1 so
// that n^3 at large n keeps the normal equations well conditioned.
inline LinearFit fit_nonnegative(const std::vector<double>& t, const std::vector<double>& g_raw, bool with_growth) {
    const std::size_t m = t.size();
    double scale = 0;
    for (double g : g_raw) {
        scale = std::max(scale, g);
    }
    if (!(scale > 0) || !std::isfinite(scale)) {
        scale = 1;
    }
    std::vector<double> g(m);
    for (std::size_t i = 0; i < m; ++i) {
        g[i] = g_raw[i] / scale;
    }
    double sw = 0, sg = 0, sgg = 0, st = 0, sgt = 0;
    for (std::size_t i = 0; i < m; ++i) {
        const double w = 1.0 / (t[i] * t[i]);
        sw += w;
        sg += w * g[i];
        sgg += w * g[i] * g[i];
        st += w * t[i];
        sgt += w * g[i] * t[i];
    }
    std::vector<LinearFit> candidates;
    // a only (also the O(1) model)
    {
        LinearFit fit;
        fit.a = st / sw;
        fit.weighted_sse = weighted_sse(t, g, fit.a, 0);
        candidates.push_back(fit);
    }
    if (with_growth) {
        if (sgg > 0) { // b only
            LinearFit fit;
            fit.b = sgt / sgg;
            if (fit.b >= 0) {
                fit.weighted_sse = weighted_sse(t, g, 0, fit.b);
                candidates.push_back(fit);
            }
        }
        const double det = sw * sgg - sg * sg;
        if (std::fabs(det) > 1e-12 * sw * sgg) { // both
            LinearFit fit;
            fit.a = (st * sgg - sg * sgt) / det;
            fit.b = (sw * sgt - sg * st) / det;
            if (fit.a >= 0 && fit.b >= 0) {
                fit.weighted_sse = weighted_sse(t, g, fit.a, fit.b);
                candidates.push_back(fit);
            }
        }
    }
    LinearFit best = candidates.front();
    for (const LinearFit& fit : candidates) {
        if (fit.weighted_sse < best.weighted_sse) {
            best = fit;
        }
    }
    best.b /= scale;
    return best;
}

} // namespace detail

// Fits every model to points (any order; several points may share a size).
// Never throws on bad data: too few usable points give ok = false and an
// "insufficient data: ..." error, with the points kept.
inline ComplexityFit fit_complexity(std::vector<ComplexityPoint> points, const ComplexityFitOptions& options = {}) {
    ComplexityFit result;
    for (const ComplexityPoint& p : points) {
        if (std::isfinite(p.n) && std::isfinite(p.seconds) && p.n >= 1 && p.seconds > 0) {
            result.points.push_back(p);
        } else {
            ++result.dropped;
        }
    }
    std::stable_sort(result.points.begin(), result.points.end(),
                     [](const ComplexityPoint& x, const ComplexityPoint& y) { return x.n < y.n; });
    std::size_t distinct = 0;
    for (std::size_t i = 0; i < result.points.size(); ++i) {
        distinct += (i == 0 || result.points[i].n != result.points[i - 1].n) ? 1 : 0;
    }
    const std::size_t min_points = std::max<std::size_t>(options.min_points, 3);
    if (distinct < min_points) {
        result.error = "insufficient data: " + std::to_string(distinct) + " distinct size(s), at least " +
                       std::to_string(min_points) + " needed";
        return result;
    }
    const double ratio = result.points.back().n / result.points.front().n;
    if (ratio < options.min_size_ratio) {
        char text[160];
        std::snprintf(text, sizeof text,
                      "insufficient data: sizes span a factor of %.3g, at least %.3g needed to tell models apart",
                      ratio, options.min_size_ratio);
        result.error = text;
        return result;
    }

    const std::size_t m = result.points.size();
    std::vector<double> t(m), log_t(m);
    double mean_log_t = 0;
    for (std::size_t i = 0; i < m; ++i) {
        t[i] = result.points[i].seconds;
        log_t[i] = std::log(t[i]);
        mean_log_t += log_t[i] / static_cast<double>(m);
    }
    double total_ss = 0;
    for (double v : log_t) {
        total_ss += (v - mean_log_t) * (v - mean_log_t);
    }
    // A floor on the residual sum: exact synthetic data would give ln(0).
    const double rss_floor = 1e-12 * static_cast<double>(m);
    const std::vector<std::string>& names = complexity_model_names();
    for (std::size_t model = 0; model < names.size(); ++model) {
        ComplexityModelFit fit;
        fit.name = names[model];
        std::vector<double> g(m);
        bool finite = true;
        for (std::size_t i = 0; i < m; ++i) {
            g[i] = detail::growth(model, result.points[i].n);
            finite = finite && std::isfinite(g[i]);
        }
        const bool exponential = model == names.size() - 1;
        if (!finite || (exponential && result.points.back().n > 1000)) {
            result.models.push_back(fit); // not fitted
            continue;
        }
        const detail::LinearFit linear = detail::fit_nonnegative(t, g, model != 0);
        fit.a = linear.a;
        fit.b = linear.b;
        double rss = 0;
        for (std::size_t i = 0; i < m; ++i) {
            const double predicted = std::max(fit.a + fit.b * g[i], std::numeric_limits<double>::min());
            const double r = log_t[i] - std::log(predicted);
            rss += r * r;
        }
        const double k = model == 0 ? 1.0 : 2.0;
        const double md = static_cast<double>(m);
        fit.error = std::sqrt(rss / md);
        fit.score = md * std::log(std::max(rss, rss_floor) / md) + k * std::log(md);
        fit.r2 = total_ss > 0 ? std::max(0.0, 1.0 - rss / total_ss) : 0.0;
        fit.fitted = true;
        result.models.push_back(fit);
    }
    double lowest = std::numeric_limits<double>::infinity();
    for (const ComplexityModelFit& fit : result.models) {
        if (fit.fitted) {
            lowest = std::min(lowest, fit.score);
        }
    }
    std::size_t pick = 0;
    for (std::size_t model = 0; model < result.models.size(); ++model) { // simplest first
        const ComplexityModelFit& fit = result.models[model];
        if (fit.fitted && fit.score <= lowest + options.parsimony) {
            pick = model;
            break;
        }
    }
    const ComplexityModelFit& picked = result.models[pick];
    const double first = picked.a + picked.b * detail::growth(pick, result.points.front().n);
    const double last = picked.a + picked.b * detail::growth(pick, result.points.back().n);
    if (pick != 0 && !(last >= options.min_growth * first)) {
        pick = 0;
    }
    result.best = result.models[pick].name;
    result.r2 = result.models[pick].r2;
    result.ok = true;
    return result;
}

} // namespace analysis
} // namespace pycroscope
