#pragma once
// Recommendations: what to change, where, and what the whole run would gain,
// most valuable first. Joins the findings, the hotspots, memory (steady
// growth, the peak) and blocking I/O.
//
//   estimated_saving   fraction of the whole run saved: the time share of
//                      what the change touches x the change's expected gain;
//                      estimated_speedup = 1 / (1 - saving) (Amdahl)
//     finding          its own estimate (findings.hpp)
//     hotspot          a function of the analysed sources (or a C function
//                      they call) with >= medium self share and no finding
//                      of its own: self share x 0.5 (make it twice as fast,
//                      or call it half as often)
//     io               a blocking I/O site of the analysed sources with >= 1% of the run: its share x
//                      0.5 (batch, buffer, or overlap the waits)
//     memory           a steadily growing site, or a peak above 1 GiB: 0
//                      (memory, not time), ranked after every time saving
//
// Ties break on severity, then on the place, so the order is stable.

#include "pycroscope/analysis/findings.hpp"
#include "pycroscope/analysis/hotspots.hpp"
#include "pycroscope/model/io_model.hpp"
#include "pycroscope/model/memory_model.hpp"
#include "pycroscope/model/profile.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace pycroscope {
namespace analysis {

// What the memory collector saw, when it ran.
struct MemoryFacts {
    bool present = false;
    std::uint64_t peak_bytes = 0;
    struct Growth {
        std::string file;
        std::uint32_t line = 0;
        std::string function;
        std::int64_t bytes = 0; // live at the end
        double slope_bytes_per_s = 0;
    };
    std::vector<Growth> growing; // sites whose live bytes grew steadily
};

// Blocking I/O the io collector timed, when it ran.
struct IoFacts {
    bool present = false;
    struct Site {
        std::string file;
        std::uint32_t line = 0;
        std::string function;
        std::string operation;
        std::uint64_t count = 0;
        std::uint64_t time_ns = 0;
    };
    std::vector<Site> sites;
};

// The facts of a memory model (null: memory was not tracked).
inline MemoryFacts memory_facts(const model::MemoryModel* model) {
    MemoryFacts memory;
    if (model == nullptr) {
        return memory;
    }
    memory.present = true;
    memory.peak_bytes = model->peak().bytes;
    for (const model::MemorySite& site : model->sites()) {
        if (site.line == nullptr || !model->growth(site).steady) {
            continue;
        }
        MemoryFacts::Growth g;
        g.file = site.line->file != nullptr ? site.line->file : "";
        g.line = site.line->line;
        g.function = site.line->function != nullptr ? site.line->function : "";
        g.bytes = site.live_bytes();
        g.slope_bytes_per_s = model->growth(site).slope_bytes_per_s;
        memory.growing.push_back(std::move(g));
    }
    return memory;
}

// The facts of an I/O model (null: I/O was not collected).
inline IoFacts io_facts(const model::IoModel* model, const SessionInfo& info) {
    IoFacts io;
    if (model == nullptr) {
        return io;
    }
    io.present = true;
    for (const model::IoModel::Site& s : model->sites()) {
        io.sites.push_back(IoFacts::Site{s.file, s.line, s.function, s.operation, s.count,
                                         static_cast<std::uint64_t>(info.ticks_to_ns(s.ticks) + 0.5)});
    }
    return io;
}

struct Recommendation {
    std::string source; // "finding", "hotspot", "io" or "memory"
    std::string kind;   // the finding's kind, "hot_function", "blocking_io", "memory_growth", "memory_peak"
    std::string file;
    std::uint32_t line = 0;
    std::string function;
    std::string suggestion; // what to change
    std::string message;    // what the run measured
    Severity severity = Severity::low;
    double time_share = 0;        // fraction of the run the change touches
    double estimated_saving = 0;  // fraction of the run saved
    double estimated_speedup = 1; // 1 / (1 - estimated_saving)
};

struct RecommendationOptions {
    std::size_t top = 10; // 0 keeps all
    double hotspot_gain = 0.5;
    double io_gain = 0.5;
    double io_min_pct = 1.0;
    double min_saving = 0.001; // time recommendations that save less (0.1% of the run) are left out
    std::uint64_t peak_bytes_limit = std::uint64_t{1} << 30;
};

namespace detail {
inline std::string format_pct(double pct) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f%%", pct);
    return text;
}
} // namespace detail

// sources: the files the user can change (FindingReport::files); empty:
// any file that is not a pseudo-file ("<frozen ...>", "<built-in>").
inline std::vector<Recommendation> recommend(const model::Profile& profile, const HotspotRanking& ranking,
                                             const std::vector<Finding>& findings, const MemoryFacts& memory,
                                             const IoFacts& io, const std::vector<std::string>& sources = {},
                                             const RecommendationOptions& options = {}) {
    std::vector<Recommendation> out;
    const auto changeable = [&](const std::string& file) {
        if (sources.empty()) {
            return !file.empty() && file.front() != '<';
        }
        return std::find(sources.begin(), sources.end(), file) != sources.end();
    };
    for (const Finding& f : findings) {
        if (f.estimated_saving < options.min_saving) {
            continue;
        }
        Recommendation r;
        r.source = "finding";
        r.kind = f.kind;
        r.file = f.file;
        r.line = f.line;
        r.function = f.function;
        r.suggestion = f.suggestion;
        r.message = message_without_basis(f.message) + ", " + detail::format_pct(100 * f.time_share) + " of the run";
        r.severity = f.severity;
        r.time_share = f.time_share;
        r.estimated_saving = f.estimated_saving;
        out.push_back(std::move(r));
    }
    const auto has_finding = [&](const model::Function& fn) {
        for (const Finding& f : findings) {
            if (f.file == fn.file && f.estimated_saving > 0 &&
                (f.function == fn.name ||
                 (f.function.size() > fn.name.size() &&
                  f.function.compare(f.function.size() - fn.name.size(), fn.name.size(), fn.name) == 0))) {
                return true;
            }
        }
        return false;
    };
    for (const RankedFunction& r : ranking.functions) {
        const model::Function& fn = profile.functions[r.function];
        // A C function's time counts in its caller's findings (findings.hpp).
        const bool covered = has_finding(fn) || (fn.kind == LocationKind::c_function && !r.callers.empty() &&
                                                 has_finding(profile.functions[r.callers.front().function]));
        const bool own = fn.kind == LocationKind::c_function
                             ? !r.callers.empty() && changeable(profile.functions[r.callers.front().function].file)
                             : changeable(fn.file);
        if (r.severity < Severity::medium || covered || !own ||
            r.self_pct / 100 * options.hotspot_gain < options.min_saving) {
            continue;
        }
        Recommendation rec;
        rec.source = "hotspot";
        rec.kind = "hot_function";
        rec.file = fn.file;
        rec.line = fn.line;
        rec.function = fn.name;
        std::string caller;
        if (!r.callers.empty()) {
            caller = " (mostly from " + profile.functions[r.callers.front().function].name + ")";
        }
        if (fn.kind == LocationKind::c_function) {
            rec.suggestion = "call " + fn.name + " less often" + caller + ", or overlap its waits with other work";
        } else {
            rec.suggestion = "make " + fn.name + " cheaper, or call it less often" + caller;
        }
        rec.message = detail::format_pct(r.self_pct) + " of the run in its own code";
        if (r.calls > 0) {
            rec.message += ", " + std::to_string(r.calls) + " calls";
        }
        rec.severity = r.severity;
        rec.time_share = r.self_pct / 100;
        rec.estimated_saving = rec.time_share * options.hotspot_gain;
        out.push_back(std::move(rec));
    }
    if (io.present && profile.unit == model::Unit::nanoseconds) {
        for (const IoFacts::Site& site : io.sites) {
            const double pct = detail::share(site.time_ns, profile.total);
            if (pct < options.io_min_pct || !changeable(site.file)) {
                continue;
            }
            Recommendation rec;
            rec.source = "io";
            rec.kind = "blocking_io";
            rec.file = site.file;
            rec.line = site.line;
            rec.function = site.function;
            rec.suggestion = "batch or buffer the " + site.operation + " calls here, or overlap them with other work";
            rec.message = std::to_string(site.count) + " " + site.operation + " calls waited " +
                         detail::format_pct(pct) + " of the run";
            rec.severity = SeverityThresholds{}.grade(pct);
            rec.time_share = pct / 100;
            rec.estimated_saving = rec.time_share * options.io_gain;
            out.push_back(std::move(rec));
        }
    }
    if (memory.present) {
        for (const MemoryFacts::Growth& g : memory.growing) {
            Recommendation rec;
            rec.source = "memory";
            rec.kind = "memory_growth";
            rec.file = g.file;
            rec.line = g.line;
            rec.function = g.function;
            rec.suggestion = "release or bound what this line keeps (a cache without a limit, a list that only grows)";
            char text[160];
            std::snprintf(text, sizeof text, "live memory grew steadily to %.1f MiB (%.1f KiB/s)",
                          static_cast<double>(g.bytes) / (1024.0 * 1024.0), g.slope_bytes_per_s / 1024.0);
            rec.message = text;
            rec.severity = Severity::medium;
            out.push_back(std::move(rec));
        }
        if (memory.peak_bytes > options.peak_bytes_limit) {
            Recommendation rec;
            rec.source = "memory";
            rec.kind = "memory_peak";
            rec.suggestion = "stream the data instead of holding it all (generators, chunks), or use compact types";
            char text[96];
            std::snprintf(text, sizeof text, "memory peaked at %.2f GiB",
                          static_cast<double>(memory.peak_bytes) / (1024.0 * 1024.0 * 1024.0));
            rec.message = text;
            rec.severity = Severity::high;
            out.push_back(std::move(rec));
        }
    }
    for (Recommendation& r : out) {
        r.estimated_speedup = amdahl_speedup(r.estimated_saving);
    }
    std::stable_sort(out.begin(), out.end(), [](const Recommendation& a, const Recommendation& b) {
        if (a.estimated_saving != b.estimated_saving) {
            return a.estimated_saving > b.estimated_saving;
        }
        if (a.severity != b.severity) {
            return a.severity > b.severity;
        }
        return a.file != b.file ? a.file < b.file : a.line < b.line;
    });
    if (options.top > 0 && out.size() > options.top) {
        out.resize(options.top);
    }
    return out;
}

} // namespace analysis
} // namespace pycroscope
