#pragma once
// The drain-side model of the imports collector and its session.json section:
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

// The import tree of every thread, rebuilt from the import spans (other
// spans inside them are ignored): like importtime, self time is the
// cumulative time minus the cumulative time of the nested imports.
class ImportModel : public EventProcessor {
public:
    struct Node {
        std::string module;
        std::uint32_t thread = 0;
        std::uint64_t begin = 0;
        std::uint64_t cumulative_ticks = 0;
        std::uint64_t child_ticks = 0;
        bool failed = false;
        bool finished = false;
        std::vector<std::size_t> children; // indices into nodes(), in start order
    };

    std::string describe() const override { return "import model"; }

    // Every import seen, in start order; roots() are those nested in no other.
    const std::vector<Node>& nodes() const noexcept { return nodes_; }
    const std::vector<std::size_t>& roots() const noexcept { return roots_; }

    // Closes imports still open at the session's end (after the final drain;
    // idempotent, so close() and the section writer may both call it).
    void finish(std::uint64_t stop_ticks) {
        open_imports_.for_each([&](std::uint32_t, std::vector<std::size_t>& stack) {
            while (!stack.empty()) {
                close_import(stack, stop_ticks, false);
            }
        });
    }

    void open(const SessionInfo&) override {
        nodes_.clear();
        roots_.clear();
        open_imports_.clear();
    }

    void close(const SessionSummary& summary) override { finish(summary.stop_ticks); }

    void process(const ThreadInfo& thread, Event* events, std::size_t count) override {
        std::vector<std::size_t>& stack = open_imports_[thread.index];
        for (std::size_t i = 0; i < count; ++i) {
            const Event& e = events[i];
            if ((e.kind != EventKind::zone_begin && e.kind != EventKind::zone_end) || e.location() == nullptr ||
                e.location()->kind != LocationKind::python_import) {
                continue;
            }
            if (e.kind == EventKind::zone_begin) {
                Node node;
                node.module = e.location()->function;
                node.thread = thread.index;
                node.begin = e.timestamp;
                nodes_.push_back(std::move(node));
                const std::size_t index = nodes_.size() - 1;
                (stack.empty() ? roots_ : nodes_[stack.back()].children).push_back(index);
                stack.push_back(index);
            } else if (!stack.empty()) {
                close_import(stack, e.timestamp, (e.flags & event_flags::exception) != 0);
            }
        }
    }

private:
    void close_import(std::vector<std::size_t>& stack, std::uint64_t end, bool failed) {
        Node& node = nodes_[stack.back()];
        stack.pop_back();
        node.cumulative_ticks = end > node.begin ? end - node.begin : 0;
        node.failed = failed;
        node.finished = true;
        if (!stack.empty()) {
            nodes_[stack.back()].child_ticks += node.cumulative_ticks;
        }
    }

    std::vector<Node> nodes_;
    std::vector<std::size_t> roots_;
    sinks::PerThreadState<std::vector<std::size_t>> open_imports_; // per thread: open imports, innermost last
};

namespace detail {
inline void write_import_node(sinks::JsonWriter& json, const ImportModel& model, std::size_t index,
                              const SessionInfo& info) {
    const ImportModel::Node& node = model.nodes()[index];
    const std::uint64_t self = node.cumulative_ticks > node.child_ticks ? node.cumulative_ticks - node.child_ticks : 0;
    json.begin_object()
        .field("module", node.module)
        .field("self_ns", static_cast<std::uint64_t>(info.ticks_to_ns(self) + 0.5))
        .field("cumulative_ns", static_cast<std::uint64_t>(info.ticks_to_ns(node.cumulative_ticks) + 0.5))
        .field("thread", node.thread)
        .field("failed", node.failed);
    json.key("children").begin_array();
    for (const std::size_t child : node.children) {
        write_import_node(json, model, child, info);
    }
    json.end_array().end_object();
}
} // namespace detail

// The "imports" section: a tree [{"module", "self_ns", "cumulative_ns",
// "thread", "failed", "children": [...]}], in the order the imports began.
// model must outlive the session's stop().
inline void add_imports_section(sinks::JsonSummarySink& sink, ImportModel& model) {
    ImportModel* source = &model;
    sink.add_section("imports", [source](sinks::JsonWriter& json, const SessionSummary& summary) {
        {
            source->finish(summary.stop_ticks);
            json.begin_array();
            for (const std::size_t root : source->roots()) {
                detail::write_import_node(json, *source, root, summary.info);
            }
            json.end_array();
        }
    });
}

} // namespace model
} // namespace pycroscope
