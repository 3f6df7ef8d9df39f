#pragma once
// The "memory" section of session.json, read off the memory model at stop:
//   mode            "full" (hooks before Py_Initialize: every block known),
//                   "degraded" (hooks installed on a running interpreter) or "off"
//   sampling        {mode: "full"|"sampled", sample_bytes, samples_not_taken}
//   peak_bytes      peak of live bytes traced through the PyMem domains
//   peak_stack      [{name, function, file, line, kind}] outermost first,
//                   ending with the allocating line; peak_thread names the thread
//   live_bytes_at_stop, live_count_at_stop, allocations, frees, unknown_frees
//   sites           top sites by bytes allocated: {file, line, function, zone,
//                   bytes, count, live_bytes, live_count, lifetime_log2_ns}
//                   (lifetime_log2_ns[b]: freed blocks that lived [2^b, 2^(b+1)) ns)
//   leaks           sites whose live bytes grew steadily over the snapshots
//                   (MemoryModelOptions): {file, line, function, zone, bytes,
//                   count (live at stop), slope_bytes_per_s, r2, grew_fraction}
//   live_at_stop    top sites by bytes still live at stop (interpreter caches
//                   and module globals included: not a leak verdict)
//   growth          per site (top by slope): snapshots, growth_bytes,
//                   slope_bytes_per_s, r2, grew_fraction, steady

#include "pycroscope/model/memory_model.hpp"
#include "pycroscope/python/memory/memory_collector.hpp"
#include "pycroscope/sinks/json_summary_sink.hpp"

#include <algorithm>
#include <memory>
#include <vector>

namespace pycroscope {
namespace python {

struct MemorySectionOptions {
    std::size_t top_sites = 50;
};

namespace detail {

inline void write_site_head(sinks::JsonWriter& json, const model::MemorySite& site) {
    const SourceLocation* line = site.line;
    json.begin_object()
        .field("file", line != nullptr ? line->file : "")
        .field("line", line != nullptr ? line->line : 0u)
        .field("function", line != nullptr ? line->function : "[no Python frame]");
    if (site.zone != nullptr) {
        json.field("zone", site.zone->display_name());
    } else {
        json.key("zone").null();
    }
}

inline void write_memory_section(sinks::JsonWriter& json, const SessionSummary& summary,
                                 const model::MemoryModel& model, const MemoryCollector& collector,
                                 const MemorySectionOptions& options) {
    const auto& sites = model.sites();
    json.begin_object();
    json.field("mode", collector.options.enabled ? to_string(collector.mode()) : "off");
    json.key("sampling")
        .begin_object()
        .field("mode", collector.sampling() ? "sampled" : "full")
        .field("sample_bytes", collector.options.sample_bytes)
        // Samples dropped because their filter bucket was full (memory_hooks.hpp).
        .field("samples_not_taken", detail::sampled_unrecorded.load(std::memory_order_relaxed))
        .end_object();
    const model::MemoryPeak peak = model.peak();
    json.field("peak_bytes", peak.bytes);
    json.field("peak_time_ns", peak.bytes > 0 ? summary.info.session_ns(peak.ticks) : 0);
    const ThreadInfo* peak_thread = summary.thread(peak.thread);
    json.field("peak_thread", peak_thread != nullptr ? peak_thread->name : std::string());
    json.key("peak_stack").begin_array();
    for (const SourceLocation* frame : peak.stack) {
        json.begin_object()
            .field("name", frame != nullptr ? frame->display_name() : "?")
            .field("function", frame != nullptr ? frame->function : "?")
            .field("file", frame != nullptr ? frame->file : "")
            .field("line", frame != nullptr ? frame->line : 0u)
            .field("kind", frame != nullptr ? kind_name(frame->kind) : "other")
            .end_object();
    }
    json.end_array();
    json.field("live_bytes_at_stop", model.live_bytes())
        .field("live_count_at_stop", model.live_count())
        .field("allocations", model.allocations())
        .field("frees", model.frees())
        .field("unknown_frees", model.unknown_frees())
        .field("snapshots", static_cast<std::uint64_t>(model.snapshots()))
        .field("snapshot_interval_ns",
               static_cast<std::uint64_t>(model.info().ticks_to_ns(model.snapshot_interval_ticks()) + 0.5));

    std::vector<std::size_t> order(sites.size());
    for (std::size_t i = 0; i < order.size(); ++i) {
        order[i] = i;
    }
    const std::size_t top = std::min(options.top_sites, order.size());

    std::sort(order.begin(), order.end(),
              [&](std::size_t a, std::size_t b) { return sites[a].alloc_bytes > sites[b].alloc_bytes; });
    json.key("sites").begin_array();
    for (std::size_t k = 0; k < top; ++k) {
        const model::MemorySite& site = sites[order[k]];
        write_site_head(json, site);
        json.field("bytes", site.alloc_bytes)
            .field("count", site.alloc_count)
            .field("live_bytes", site.live_bytes())
            .field("live_count", site.live_count());
        std::size_t used = model::lifetime_buckets;
        while (used > 0 && site.lifetimes[used - 1] == 0) {
            --used;
        }
        json.key("lifetime_log2_ns").begin_array();
        for (std::size_t b = 0; b < used; ++b) {
            json.value(site.lifetimes[b]);
        }
        json.end_array().end_object();
    }
    json.end_array();

    std::vector<model::SiteGrowth> growth(sites.size());
    for (std::size_t i = 0; i < sites.size(); ++i) {
        growth[i] = model.growth(sites[i]);
    }
    json.key("leaks").begin_array();
    std::sort(order.begin(), order.end(),
              [&](std::size_t a, std::size_t b) { return sites[a].live_bytes() > sites[b].live_bytes(); });
    for (const std::size_t i : order) {
        if (!growth[i].steady) {
            continue;
        }
        write_site_head(json, sites[i]);
        json.field("bytes", sites[i].live_bytes())
            .field("count", sites[i].live_count())
            .field("slope_bytes_per_s", growth[i].slope_bytes_per_s)
            .field("r2", growth[i].r2)
            .field("grew_fraction", growth[i].grew_fraction)
            .end_object();
    }
    json.end_array();
    json.key("live_at_stop").begin_array();
    for (std::size_t k = 0; k < top && sites[order[k]].live_bytes() > 0; ++k) {
        write_site_head(json, sites[order[k]]);
        json.field("bytes", sites[order[k]].live_bytes()).field("count", sites[order[k]].live_count()).end_object();
    }
    json.end_array();
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return growth[a].slope_bytes_per_s > growth[b].slope_bytes_per_s;
    });
    json.key("growth").begin_array();
    for (std::size_t k = 0; k < top; ++k) {
        const model::SiteGrowth& g = growth[order[k]];
        if (g.slope_bytes_per_s <= 0) {
            break;
        }
        write_site_head(json, sites[order[k]]);
        json.field("snapshots", static_cast<std::uint64_t>(g.snapshots))
            .field("growth_bytes", g.growth_bytes)
            .field("slope_bytes_per_s", g.slope_bytes_per_s)
            .field("r2", g.r2)
            .field("grew_fraction", g.grew_fraction)
            .field("still_growing", g.still_growing)
            .field("steady", g.steady)
            .end_object();
    }
    json.end_array();
    json.end_object();
}

} // namespace detail

// Adds "memory" to sink. model and collector must outlive the session's stop().
inline void add_memory_section(sinks::JsonSummarySink& sink, std::shared_ptr<const model::MemoryModel> model,
                               const MemoryCollector& collector, MemorySectionOptions options = {}) {
    const MemoryCollector* source = &collector;
    sink.add_section("memory", [model, source, options](sinks::JsonWriter& json, const SessionSummary& summary) {
        detail::write_memory_section(json, summary, *model, *source, options);
    });
}

} // namespace python
} // namespace pycroscope
