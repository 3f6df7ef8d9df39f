#pragma once
// The answers of a run, computed once from the Profile and the facts about
// its sources, memory and I/O: the findings, the recommendations and the
// health score. session.json's "findings", "recommendations", "health" and
// "pattern_analysis" sections and the terminal summary read this.

#include "pycroscope/analysis/findings.hpp"
#include "pycroscope/analysis/health_score.hpp"
#include "pycroscope/analysis/hotspots.hpp"
#include "pycroscope/analysis/recommendations.hpp"
#include "pycroscope/analysis/source_facts.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace pycroscope {
namespace analysis {

struct AnswerOptions {
    FindingOptions findings;
    RecommendationOptions recommendations;
    RankingOptions ranking;
};

struct Answers {
    FindingReport findings;
    std::vector<Recommendation> recommendations;
    HealthScore health;
    double seconds = 0; // the whole analysis: source pass, join, recommendations, score
};

inline Answers answer(const model::Profile& profile, const SourceFacts& facts, const MemoryFacts& memory,
                      const IoFacts& io, const AnswerOptions& options = {}) {
    const auto start = std::chrono::steady_clock::now();
    Answers out;
    out.findings = find_patterns(profile, facts, options.findings);
    const HotspotRanking ranking = rank_hotspots(profile, options.ranking);
    out.recommendations = recommend(profile, ranking, out.findings.findings, memory, io, out.findings.files,
                                    options.recommendations);
    out.health = health_score(profile, out.findings.findings, memory, io, out.findings.files);
    out.seconds = facts.seconds + std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return out;
}

// Gathers the source facts with provider (when the pass is on and there is
// one), then answers.
inline Answers answer(const model::Profile& profile, const SourceFactsProvider& provider, const MemoryFacts& memory,
                      const IoFacts& io, const AnswerOptions& options = {}) {
    SourceFacts facts;
    if (options.findings.enabled) {
        const std::vector<std::string> files = profiled_sources(profile);
        if (files.empty()) {
            // Nothing to read (code from strings only, or no Python ran).
        } else if (provider) {
            const auto start = std::chrono::steady_clock::now();
            try {
                facts = provider(files, options.findings.include_libraries);
            } catch (const std::exception& error) {
                facts = SourceFacts{};
                facts.error = error.what();
            }
            facts.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        } else {
            facts.error = "no Python interpreter to read the sources";
        }
    }
    return answer(profile, facts, memory, io, options);
}

} // namespace analysis
} // namespace pycroscope
