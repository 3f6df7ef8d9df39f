#pragma once
// session.json: the summary of a session. Threads with their event and lost
// counts, per-location counts with inclusive and self time, marks, counters,
// frame statistics and the session metadata. Other layers add sections with
// add_section() (the Python layer adds "functions", for example).
//
// In a traced run the spans and lines can come from a model::ProfileBuilder
// fed the same events (use_profile()): the drain thread then keeps one call
// tree per thread instead of two.

#include "pycroscope/core/call_tree.hpp"
#include "pycroscope/model/profile_builder.hpp"
#include "pycroscope/sinks/file_sink.hpp"
#include "pycroscope/sinks/json_writer.hpp"
#include "pycroscope/sinks/line_profile.hpp"
#include "pycroscope/sinks/per_thread_state.hpp"

#include <algorithm>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace pycroscope {
namespace sinks {


// Per-location totals across all threads, in nanoseconds.
struct LocationStats {
    const SourceLocation* location = nullptr;
    std::uint64_t count = 0;   // calls (fresh entries)
    std::uint64_t resumes = 0; // generator/coroutine re-entries
    double inclusive_ns = 0;
    double self_ns = 0;
};

class JsonSummarySink : public FileSink {
public:
    using Section = std::function<void(JsonWriter&, const SessionSummary&)>;

    explicit JsonSummarySink(std::string path) : FileSink("session summary", std::move(path)) {}

    // Adds a top-level key written at close; call before the session starts.
    void add_section(std::string key, Section writer) {
        static const char* const built_in[] = {"format", "version", "process", "start_unix_ns", "duration_ns",
                                               "clock", "buffer", "collectors", "metadata", "events_total",
                                               "lost_events", "unmatched_ends", "threads", "zones", "marks",
                                               "counters", "frames", "lines", "errors"};
        for (const char* name : built_in) {
            if (key == name) {
                throw ConfigError("session summary section '" + key + "' is built in");
            }
        }
        for (const auto& section : sections_) {
            if (section.first == key) {
                throw ConfigError("session summary section '" + key + "' was added twice");
            }
        }
        sections_.emplace_back(std::move(key), std::move(writer));
    }

    // Zones, per-location totals and lines from this builder's Profile instead
    // of this sink's own tree. The builder must be a processor of the same
    // session (processors close before sinks) and the run traced: a sampled
    // Profile counts samples, not nanoseconds. Call before the session starts.
    void use_profile(std::shared_ptr<const model::ProfileBuilder> builder) { builder_ = std::move(builder); }

    // Merged per-location totals; valid during and after close().
    const std::vector<LocationStats>& location_stats() const noexcept { return stats_; }

protected:
    struct CounterStats {
        std::uint64_t samples = 0;
        double min = std::numeric_limits<double>::infinity();
        double max = -std::numeric_limits<double>::infinity();
        double sum = 0;
        double last = 0;
    };
    struct FrameStats {
        std::uint64_t count = 0;
        std::uint64_t previous = 0;
        std::uint64_t intervals = 0;
        std::uint64_t min_interval = std::numeric_limits<std::uint64_t>::max();
        std::uint64_t max_interval = 0;
        std::uint64_t sum_interval = 0;
    };
    struct ThreadState {
        CallTree tree;
        LineProfile lines;
        std::unordered_map<const SourceLocation*, FrameStats> frames;
    };

    void open_(const SessionInfo& info) override {
        FileSink::open_(info);
        threads_.clear();
        line_table_.clear();
        counters_.clear();
        marks_.clear();
        stats_.clear();
    }

    void sink_it_(const ThreadInfo& thread, const Event* events, std::size_t count) override {
        ThreadState& state = threads_[thread.index];
        for (std::size_t i = 0; i < count; ++i) {
            const Event& e = events[i];
            switch (e.kind) {
            // Most events of a memory session, and neither a span nor a line:
            // the memory section reads the model instead.
            case EventKind::mem_alloc:
            case EventKind::mem_free: break;
            case EventKind::instant: ++marks_[e.location()]; break;
            case EventKind::counter: {
                if (model::is_overhead_counter_event(e)) {
                    break; // the profiler's own (the overhead_compensation section)
                }
                CounterStats& c = counters_[e.location()];
                const double v = e.value();
                ++c.samples;
                c.min = std::min(c.min, v);
                c.max = std::max(c.max, v);
                c.sum += v;
                c.last = v;
                break;
            }
            case EventKind::frame_mark: {
                // Frame time is the interval between consecutive marks of one thread.
                FrameStats& f = state.frames[e.location()];
                if (f.count > 0 && e.timestamp >= f.previous) {
                    const std::uint64_t interval = e.timestamp - f.previous;
                    ++f.intervals;
                    f.min_interval = std::min(f.min_interval, interval);
                    f.max_interval = std::max(f.max_interval, interval);
                    f.sum_interval += interval;
                }
                ++f.count;
                f.previous = e.timestamp;
                break;
            }
            default:
                if (!builder_) {
                    state.tree.add(e);
                    state.lines.add(e, line_table_);
                }
                break;
            }
        }
    }

    void close_(const SessionSummary& summary) override {
        const SessionInfo& info = summary.info;
        std::unordered_map<const SourceLocation*, LocationTotals> totals;
        std::uint64_t unmatched = 0;
        std::unordered_map<const SourceLocation*, FrameStats> frames;
        threads_.for_each([&](std::uint32_t, ThreadState& state) {
            if (!builder_) {
                state.tree.finish(summary.stop_ticks);
                state.lines.finish(summary.stop_ticks, line_table_);
                unmatched += state.tree.unmatched_ends();
                accumulate_totals(state.tree, totals);
            }
            for (const auto& entry : state.frames) {
                FrameStats& merged = frames[entry.first];
                merged.count += entry.second.count;
                merged.intervals += entry.second.intervals;
                merged.sum_interval += entry.second.sum_interval;
                merged.min_interval = std::min(merged.min_interval, entry.second.min_interval);
                merged.max_interval = std::max(merged.max_interval, entry.second.max_interval);
            }
        });
        stats_.clear();
        if (builder_) {
            const model::Profile& profile = builder_->profile();
            unmatched = profile.unmatched_ends;
            for (const model::Function& f : profile.functions) {
                if (f.location != nullptr) {
                    stats_.push_back(LocationStats{f.location, f.calls, f.resumes, static_cast<double>(f.inclusive),
                                                   static_cast<double>(f.self)});
                }
            }
        }
        for (const auto& entry : totals) {
            stats_.push_back(LocationStats{entry.first, entry.second.count, entry.second.resumes,
                                           info.ticks_to_ns(entry.second.inclusive_ticks),
                                           info.ticks_to_ns(entry.second.self_ticks)});
        }
        std::sort(stats_.begin(), stats_.end(), [](const LocationStats& a, const LocationStats& b) {
            if (a.inclusive_ns != b.inclusive_ns) {
                return a.inclusive_ns > b.inclusive_ns;
            }
            return std::string_view(a.location->display_name()) < std::string_view(b.location->display_name());
        });

        std::string out;
        JsonWriter json(out);
        json.begin_object();
        json.field("format", "pycroscope-session").field("version", 1);
        json.key("process").begin_object().field("name", info.process_name).field("pid", info.pid).end_object();
        json.field("start_unix_ns", info.start_unix_ns).field("duration_ns", summary.duration_ns);
        json.key("clock")
            .begin_object()
            .field("source", clock::to_string(info.calibration.source))
            .field("ns_per_tick", info.calibration.ns_per_tick)
            .end_object();
        json.key("buffer")
            .begin_object()
            .field("capacity_events", info.buffer_capacity)
            .field("overflow", to_string(info.overflow))
            .end_object();
        json.key("collectors").begin_array();
        for (const auto& c : info.collectors) {
            json.value(c);
        }
        json.end_array();
        json.key("metadata").begin_object();
        for (const auto& m : info.metadata) {
            json.field(m.first, m.second);
        }
        json.end_object();
        json.field("events_total", summary.total_events).field("lost_events", summary.total_lost);
        json.field("unmatched_ends", unmatched);
        json.key("threads").begin_array();
        for (const auto& t : summary.threads) {
            json.begin_object()
                .field("index", t.index)
                .field("os_tid", t.os_tid)
                .field("name", t.name)
                .field("events", t.events)
                .field("lost", t.lost)
                .field("exited", t.exited)
                .end_object();
        }
        json.end_array();
        json.key("zones").begin_array();
        for (const auto& s : stats_) {
            write_location(json, *s.location);
            json.field("count", s.count)
                .field("resumes", s.resumes)
                .field("inclusive_ns", static_cast<std::uint64_t>(s.inclusive_ns + 0.5))
                .field("self_ns", static_cast<std::uint64_t>(s.self_ns + 0.5))
                .end_object();
        }
        json.end_array();
        json.key("marks").begin_array();
        for (const auto& m : sorted(marks_)) {
            write_location(json, *m.first);
            json.field("count", m.second).end_object();
        }
        json.end_array();
        json.key("counters").begin_array();
        for (const auto& c : sorted(counters_)) {
            write_location(json, *c.first);
            json.field("samples", c.second.samples)
                .field("min", c.second.min)
                .field("max", c.second.max)
                .field("mean", c.second.sum / static_cast<double>(c.second.samples))
                .field("last", c.second.last)
                .end_object();
        }
        json.end_array();
        write_lines(json, info);
        json.key("frames").begin_array();
        for (const auto& f : sorted(frames)) {
            write_location(json, *f.first);
            json.field("count", f.second.count);
            if (f.second.intervals > 0) {
                json.field("mean_ns", info.ticks_to_ns(f.second.sum_interval) / static_cast<double>(f.second.intervals))
                    .field("min_ns", info.ticks_to_ns(f.second.min_interval))
                    .field("max_ns", info.ticks_to_ns(f.second.max_interval));
            }
            json.end_object();
        }
        json.end_array();
        for (const auto& section : sections_) {
            json.key(section.first);
            section.second(json, summary);
        }
        json.key("errors").begin_array();
        for (const auto& e : summary.errors) {
            json.value(e);
        }
        json.end_array();
        json.end_object();
        out += '\n';
        file().write(out);
        file().commit();
    }

private:
    // Per-line hits and time (line mode), ordered by file and line.
    void write_lines(JsonWriter& json, const SessionInfo& info) const {
        if (builder_) {
            // Profile lines are already ordered by file, line and function.
            const model::Profile& profile = builder_->profile();
            json.key("lines").begin_array();
            for (const model::Line& line : profile.lines) {
                json.begin_object()
                    .field("file", line.file)
                    .field("line", line.line)
                    .field("function", line.function < profile.functions.size() ? profile.functions[line.function].name
                                                                                : std::string())
                    .field("hits", line.hits)
                    .field("time_ns", line.time)
                    .end_object();
            }
            json.end_array();
            return;
        }
        std::vector<std::pair<LineKey, LineTotals>> lines(line_table_.begin(), line_table_.end());
        std::sort(lines.begin(), lines.end(), [](const auto& a, const auto& b) {
            const int order = std::string_view(a.first.function->file).compare(b.first.function->file);
            if (order != 0) {
                return order < 0;
            }
            if (a.first.line != b.first.line) {
                return a.first.line < b.first.line;
            }
            return std::string_view(a.first.function->display_name()) < b.first.function->display_name();
        });
        json.key("lines").begin_array();
        for (const auto& entry : lines) {
            json.begin_object()
                .field("file", entry.first.function->file)
                .field("line", entry.first.line)
                .field("function", entry.first.function->display_name())
                .field("hits", entry.second.hits)
                .field("time_ns", static_cast<std::uint64_t>(info.ticks_to_ns(entry.second.ticks) + 0.5))
                .end_object();
        }
        json.end_array();
    }

    static void write_location(JsonWriter& json, const SourceLocation& location) {
        json.begin_object()
            .field("name", location.display_name())
            .field("function", location.function)
            .field("file", location.file)
            .field("line", location.line)
            .field("kind", kind_name(location.kind));
    }

    // Map entries ordered by name, so the file is stable from run to run.
    template <class Map>
    static std::vector<std::pair<const SourceLocation*, typename Map::mapped_type>> sorted(const Map& map) {
        std::vector<std::pair<const SourceLocation*, typename Map::mapped_type>> entries(map.begin(), map.end());
        std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
            const std::string_view an = a.first->display_name(), bn = b.first->display_name();
            return an != bn ? an < bn : a.first->line < b.first->line;
        });
        return entries;
    }

    std::vector<std::pair<std::string, Section>> sections_;
    std::shared_ptr<const model::ProfileBuilder> builder_;
    PerThreadState<ThreadState> threads_;
    std::unordered_map<const SourceLocation*, CounterStats> counters_;
    std::unordered_map<const SourceLocation*, std::uint64_t> marks_;
    std::vector<LocationStats> stats_;
    LineTable line_table_;
};

} // namespace sinks
} // namespace pycroscope
