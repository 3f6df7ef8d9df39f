#pragma once
// The Mann-Whitney U test (Wilcoxon rank-sum), two-sided: do two sets of
// runs come from the same distribution? Rank-based, so one slow outlier run
// (a noisy neighbour, a page-cache miss) moves the result by one rank, not by
// its size, which is why `pycroscope compare` uses it instead of a t-test.
//
//     auto r = pycroscope::analysis::mann_whitney_u(base_ns, candidate_ns);
//     if (r.p_value < 0.01) ...
//
// Exact p-value (the distribution of U counted by recurrence) when there are
// no ties and both samples are small; otherwise the normal approximation
// with tie and continuity correction. Both match scipy.stats.mannwhitneyu
// (method "exact" / "asymptotic", use_continuity=True). See docs/compare.md.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace pycroscope {
namespace analysis {

struct MannWhitneyResult {
    double u = 0;        // U of the first sample: pairs (a, b) with a > b, ties counting one half
    double p_value = 1;  // two-sided; 1 when either sample is empty
    bool exact = false;  // exact distribution (no ties, small samples) or normal approximation
};

enum class MannWhitneyMethod {
    automatic,  // exact when there are no ties and n1 + n2 <= 60, else asymptotic
    exact,      // the exact distribution (ties are then ignored: only for tie-free samples)
    asymptotic, // the normal approximation with tie and continuity correction
};

namespace detail {

// Samples up to this combined size with no ties get the exact distribution.
constexpr std::size_t mann_whitney_exact_limit = 60;

// P(U <= u) under the null hypothesis for sample sizes m and n (no ties).
// counts[m][n][u] obeys c(m,n,u) = c(m-1,n,u-n) + c(m,n-1,u); one row of
// doubles per n is enough, built up over m.
inline double mann_whitney_cdf(std::size_t m, std::size_t n, std::size_t u) {
    // table[j][k]: arrangements of (i, j) with U = k, for the current i.
    const std::size_t max_u = m * n;
    std::vector<std::vector<double>> table(n + 1);
    for (std::size_t j = 0; j <= n; ++j) {
        table[j].assign(max_u + 1, 0.0);
        table[j][0] = 1.0; // i = 0: U = 0 in one way
    }
    for (std::size_t i = 1; i <= m; ++i) {
        std::vector<std::vector<double>> next(n + 1, std::vector<double>(max_u + 1, 0.0));
        next[0][0] = 1.0; // j = 0: U = 0 in one way
        for (std::size_t j = 1; j <= n; ++j) {
            for (std::size_t k = 0; k <= i * j; ++k) {
                // The largest value is from the first sample (beats all j) or the second.
                double c = next[j - 1][k];
                if (k >= j) {
                    c += table[j][k - j];
                }
                next[j][k] = c;
            }
        }
        table.swap(next);
    }
    double total = 0, below = 0;
    for (std::size_t k = 0; k <= max_u; ++k) {
        total += table[n][k];
        if (k <= u) {
            below += table[n][k];
        }
    }
    return below / total;
}

// Upper tail of the standard normal: P(Z > z).
inline double normal_sf(double z) { return 0.5 * std::erfc(z / std::sqrt(2.0)); }

} // namespace detail

inline MannWhitneyResult mann_whitney_u(const std::vector<double>& a, const std::vector<double>& b,
                                        MannWhitneyMethod method = MannWhitneyMethod::automatic) {
    MannWhitneyResult result;
    const std::size_t n1 = a.size(), n2 = b.size();
    if (n1 == 0 || n2 == 0) {
        return result;
    }
    // Midranks of the pooled sample.
    std::vector<std::pair<double, bool>> pooled; // value, from a
    pooled.reserve(n1 + n2);
    for (double v : a) {
        pooled.emplace_back(v, true);
    }
    for (double v : b) {
        pooled.emplace_back(v, false);
    }
    std::sort(pooled.begin(), pooled.end(),
              [](const std::pair<double, bool>& x, const std::pair<double, bool>& y) { return x.first < y.first; });
    const double n = static_cast<double>(n1 + n2);
    double rank_sum_a = 0;
    double tie_term = 0; // sum of t^3 - t over groups of t tied values
    for (std::size_t i = 0; i < pooled.size();) {
        std::size_t j = i;
        while (j < pooled.size() && pooled[j].first == pooled[i].first) {
            ++j;
        }
        const double t = static_cast<double>(j - i);
        const double midrank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;
        for (std::size_t k = i; k < j; ++k) {
            if (pooled[k].second) {
                rank_sum_a += midrank;
            }
        }
        tie_term += t * t * t - t;
        i = j;
    }
    const double dn1 = static_cast<double>(n1), dn2 = static_cast<double>(n2);
    result.u = rank_sum_a - dn1 * (dn1 + 1) / 2.0;
    const double u_max = std::max(result.u, dn1 * dn2 - result.u);
    const bool exact = method == MannWhitneyMethod::exact ||
                       (method == MannWhitneyMethod::automatic && tie_term == 0 &&
                        n1 + n2 <= detail::mann_whitney_exact_limit);
    if (exact) {
        // P(U >= u_max) = P(U <= n1 n2 - u_max) by symmetry; doubled for two sides.
        const auto low = static_cast<std::size_t>(std::llround(dn1 * dn2 - u_max));
        result.p_value = std::min(1.0, 2.0 * detail::mann_whitney_cdf(n1, n2, low));
        result.exact = true;
        return result;
    }
    const double mean = dn1 * dn2 / 2.0;
    const double variance = dn1 * dn2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1)));
    if (variance <= 0) {
        result.p_value = 1.0; // every value equal: no evidence of a difference
        return result;
    }
    const double z = (u_max - mean - 0.5) / std::sqrt(variance);
    result.p_value = std::min(1.0, 2.0 * detail::normal_sf(z));
    return result;
}

} // namespace analysis
} // namespace pycroscope
