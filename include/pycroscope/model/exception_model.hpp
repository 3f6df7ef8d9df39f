#pragma once
// The drain-side model of the exceptions collector and its session.json section:
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

class ExceptionModel : public EventProcessor {
public:
    struct Site {
        const SourceLocation* function = nullptr; // the Python function that raised
        std::uint32_t line = 0;
        const SourceLocation* type = nullptr;     // null when the type was not recorded
        std::uint64_t raised = 0;
        std::uint64_t caught = 0;
        std::uint64_t handler_ticks = 0; // raise to handler, summed over the catches
        std::uint64_t max_handler_ticks = 0;
    };

    std::string describe() const override { return "exception model"; }

    // Sites in order of first raise; valid after the final drain.
    const std::vector<Site>& sites() const noexcept { return sites_; }

    void open(const SessionInfo&) override {
        sites_.clear();
        index_.clear();
        threads_.clear();
    }

    void close(const SessionSummary&) override {}

    void process(const ThreadInfo& thread, Event* events, std::size_t count) override {
        ThreadState& t = threads_[thread.index];
        for (std::size_t i = 0; i < count; ++i) {
            const Event& e = events[i];
            if (is_memory_event(e.kind)) {
                continue; // allocations (of the type-name lookup, say) may sit between an exception and its info
            }
            if (e.kind == EventKind::exception_info) {
                if (t.pending) {
                    raise_or_propagate(t, e.location(), e.payload, true);
                }
                continue;
            }
            if (t.pending) {
                raise_or_propagate(t, nullptr, 0, false); // the tracer sent no info (collector stopping)
            }
            if (e.kind == EventKind::py_exception) {
                if ((e.flags & event_flags::exception) == 0) {
                    t.pending = true;
                    t.pending_function = e.location();
                    t.pending_line = static_cast<std::uint32_t>(e.payload);
                    t.pending_time = e.timestamp;
                } else if (t.state == State::active) {
                    Site& site = sites_[t.site];
                    const std::uint64_t ticks = e.timestamp > t.raised_at ? e.timestamp - t.raised_at : 0;
                    ++site.caught;
                    site.handler_ticks += ticks;
                    site.max_handler_ticks = std::max(site.max_handler_ticks, ticks);
                    t.state = State::handled;
                    t.handled_ticks = ticks;
                }
            } else if (opens_span(e.kind)) {
                ++t.depth;
                // Python or C code runs again: something swallowed it. (A GC or
                // import zone may open while an exception propagates.)
                if ((t.state == State::propagating || t.state == State::propagating_after_catch) &&
                    e.kind != EventKind::zone_begin) {
                    t.state = State::none;
                }
            } else if (closes_span(e.kind)) {
                const bool by_exception = (e.flags & event_flags::exception) != 0;
                if (t.state != State::none && t.depth == t.holder_depth) {
                    if (by_exception) {
                        // Leaves the frame (or C function) holding it: on to the caller.
                        if (t.state == State::handled) {
                            t.state = State::propagating_after_catch;
                        } else if (t.state == State::active) {
                            t.state = State::propagating;
                        }
                        t.holder_depth = t.depth - 1;
                    } else {
                        // Returned normally: a catch stands, anything else was swallowed.
                        t.state = State::none;
                    }
                }
                if (t.depth > 0) {
                    --t.depth;
                }
            }
        }
    }

private:
    enum class State : std::uint8_t { none, active, handled, propagating, propagating_after_catch };

    struct ThreadState {
        std::uint32_t depth = 0;
        State state = State::none;
        std::size_t site = 0;
        std::uint64_t object = 0;
        bool object_known = false;
        std::uint64_t raised_at = 0;
        std::uint32_t holder_depth = 0;
        std::uint64_t handled_ticks = 0;
        bool pending = false;
        const SourceLocation* pending_function = nullptr;
        std::uint32_t pending_line = 0;
        std::uint64_t pending_time = 0;
    };

    void raise_or_propagate(ThreadState& t, const SourceLocation* type, std::uint64_t object, bool known) {
        t.pending = false;
        const bool propagating = t.state == State::propagating || t.state == State::propagating_after_catch;
        if (propagating && known && t.object_known && object == t.object && t.depth == t.holder_depth) {
            if (t.state == State::propagating_after_catch) {
                Site& site = sites_[t.site]; // that handler did not keep it
                --site.caught;
                site.handler_ticks -= std::min(site.handler_ticks, t.handled_ticks);
            }
            t.state = State::active;
            return;
        }
        const auto key = std::make_tuple(t.pending_function, t.pending_line, type);
        auto found = index_.find(key);
        if (found == index_.end()) {
            found = index_.emplace(key, sites_.size()).first;
            Site site;
            site.function = t.pending_function;
            site.line = t.pending_line;
            site.type = type;
            sites_.push_back(site);
        }
        ++sites_[found->second].raised;
        t.site = found->second;
        t.state = State::active;
        t.object = object;
        t.object_known = known;
        t.raised_at = t.pending_time;
        t.holder_depth = t.depth;
    }

    std::vector<Site> sites_;
    std::map<std::tuple<const SourceLocation*, std::uint32_t, const SourceLocation*>, std::size_t> index_;
    sinks::PerThreadState<ThreadState> threads_;
};

// The "exceptions" section: [{"type", "file", "line", "function", "raised",
// "caught", "uncaught", "mean_raise_to_handler_ns", "max_raise_to_handler_ns"}],
// most raised first; type and the times are null when unknown. model must
// outlive the session's stop().
inline void add_exceptions_section(sinks::JsonSummarySink& sink, ExceptionModel& model) {
    ExceptionModel* source = &model;
    sink.add_section("exceptions", [source](sinks::JsonWriter& json, const SessionSummary& summary) {
        {
            std::vector<const ExceptionModel::Site*> order;
            for (const auto& site : source->sites()) {
                order.push_back(&site);
            }
            std::stable_sort(order.begin(), order.end(), [](const auto* a, const auto* b) { return a->raised > b->raised; });
            json.begin_array();
            for (const auto* site : order) {
                json.begin_object();
                json.key("type");
                if (site->type != nullptr) {
                    json.value(site->type->display_name());
                } else {
                    json.null();
                }
                json.field("file", site->function != nullptr ? site->function->file : "<unknown>")
                    .field("line", site->line)
                    .field("function", site->function != nullptr ? site->function->display_name() : "<unknown>")
                    .field("raised", site->raised)
                    .field("caught", site->caught)
                    .field("uncaught", site->raised - site->caught);
                if (site->caught > 0) {
                    json.field("mean_raise_to_handler_ns",
                               summary.info.ticks_to_ns(site->handler_ticks) / static_cast<double>(site->caught))
                        .field("max_raise_to_handler_ns",
                               static_cast<std::uint64_t>(summary.info.ticks_to_ns(site->max_handler_ticks) + 0.5));
                } else {
                    json.key("mean_raise_to_handler_ns").null().key("max_raise_to_handler_ns").null();
                }
                json.end_object();
            }
            json.end_array();
        }
    });
}

} // namespace model
} // namespace pycroscope
