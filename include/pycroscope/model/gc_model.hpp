#pragma once
// The drain-side model of the gc collector and its session.json section:
// an EventProcessor fed by the live drain or by a capture's replay. Needs no
// Python: it reads only events and their SourceLocations.

#include "pycroscope/core/event.hpp"
#include "pycroscope/core/event_processor.hpp"
#include "pycroscope/core/session_info.hpp"
#include "pycroscope/core/source_location.hpp"
#include "pycroscope/core/thread_info.hpp"
#include "pycroscope/sinks/json_summary_sink.hpp"
#include "pycroscope/sinks/json_writer.hpp"
#include "pycroscope/sinks/per_thread_state.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace pycroscope {
namespace model {

// Collections per generation, from the GC spans of every thread. Add it to
// the session as a processor; read it after stop() or from a section writer.
class GcModel : public EventProcessor {
public:
    struct Generation {
        std::uint64_t collections = 0;
        std::uint64_t ticks = 0;
        std::uint64_t max_ticks = 0;
        std::uint64_t collected = 0;
        std::uint64_t uncollectable = 0;
    };

    std::string describe() const override { return "gc model"; }

    // Per generation 0-2; valid after the session's final drain.
    Generation generation(int g) const { return generations_[g < 0 ? 0 : g > 2 ? 2 : g]; }
    std::uint64_t collections() const {
        return generations_[0].collections + generations_[1].collections + generations_[2].collections;
    }

    void open(const SessionInfo&) override {
        for (auto& g : generations_) {
            g = Generation{};
        }
        open_begin_.clear();
    }

    void close(const SessionSummary&) override {}

    void process(const ThreadInfo& thread, Event* events, std::size_t count) override {
        std::uint64_t& begin = open_begin_[thread.index];
        for (std::size_t i = 0; i < count; ++i) {
            const Event& e = events[i];
            if ((e.kind != EventKind::zone_begin && e.kind != EventKind::zone_end) || e.location() == nullptr ||
                e.location()->kind != LocationKind::gc_collection) {
                continue;
            }
            if (e.kind == EventKind::zone_begin) {
                begin = e.timestamp;
                continue;
            }
            Generation& g = generations_[e.location()->line > 2 ? 2 : e.location()->line];
            const std::uint64_t ticks = e.timestamp > begin ? e.timestamp - begin : 0;
            ++g.collections;
            g.ticks += ticks;
            g.max_ticks = ticks > g.max_ticks ? ticks : g.max_ticks;
            g.collected += e.payload;
            g.uncollectable += e.aux;
        }
    }

private:
    Generation generations_[3];
    sinks::PerThreadState<std::uint64_t> open_begin_; // per thread: start of its open collection
};

// The "gc" section: {"collections", "time_ns", "share", "collected",
// "uncollectable", "generations": [{"generation", "collections", "time_ns",
// "max_ns", "collected", "uncollectable"}]}. share is GC time over the
// session's duration. model must outlive the session's stop().
inline void add_gc_section(sinks::JsonSummarySink& sink, GcModel& model) {
    GcModel* source = &model;
    sink.add_section("gc", [source](sinks::JsonWriter& json, const SessionSummary& summary) {
        {
            const SessionInfo& info = summary.info;
            std::uint64_t ticks = 0, collected = 0, uncollectable = 0;
            for (int g = 0; g < 3; ++g) {
                ticks += source->generation(g).ticks;
                collected += source->generation(g).collected;
                uncollectable += source->generation(g).uncollectable;
            }
            const double time_ns = info.ticks_to_ns(ticks);
            json.begin_object()
                .field("collections", source->collections())
                .field("time_ns", static_cast<std::uint64_t>(time_ns + 0.5))
                .field("share", summary.duration_ns > 0 ? time_ns / static_cast<double>(summary.duration_ns) : 0.0)
                .field("collected", collected)
                .field("uncollectable", uncollectable);
            json.key("generations").begin_array();
            for (int g = 0; g < 3; ++g) {
                const GcModel::Generation gen = source->generation(g);
                json.begin_object()
                    .field("generation", g)
                    .field("collections", gen.collections)
                    .field("time_ns", static_cast<std::uint64_t>(info.ticks_to_ns(gen.ticks) + 0.5))
                    .field("max_ns", static_cast<std::uint64_t>(info.ticks_to_ns(gen.max_ticks) + 0.5))
                    .field("collected", gen.collected)
                    .field("uncollectable", gen.uncollectable)
                    .end_object();
            }
            json.end_array().end_object();
        }
    });
}

} // namespace model
} // namespace pycroscope
