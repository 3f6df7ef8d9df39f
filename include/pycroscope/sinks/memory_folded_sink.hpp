#pragma once
// memory.folded: a flame graph of allocated bytes in flamegraph.pl syntax.
// Each line is thread;frames...;allocation line <bytes>, where frames are the
// Python functions and native zones open on that thread when it allocated
// (from the tracer's and the zones' span events; none without a tracer) and
// the last frame is the allocating line ("function:line"). Weighted by bytes
// allocated over the session, freed or not; in sampling mode by the bytes the
// samples stand for. Lines are streamed and bounded as in FoldedStackSink,
// depth first through the call paths.

#include "pycroscope/core/location_tree.hpp"
#include "pycroscope/model/allocation_stacks.hpp"
#include "pycroscope/model/memory_model.hpp"
#include "pycroscope/sinks/file_sink.hpp"
#include "pycroscope/sinks/folded_lines.hpp"
#include "pycroscope/sinks/folded_stack_sink.hpp"
#include "pycroscope/sinks/json_writer.hpp"
#include "pycroscope/sinks/per_thread_state.hpp"

#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace pycroscope {
namespace sinks {

using model::unattributed_allocation;

class MemoryFoldedSink : public FileSink {
public:
    // Follows the span and allocation events itself.
    explicit MemoryFoldedSink(std::string path, FoldedStackOptions options = {})
        : FileSink("memory flame graph", std::move(path)), options_(options) {}
    // Writes what the session's memory model (a processor of the same
    // session, closed before this sink) gathered: one walk of the events.
    MemoryFoldedSink(std::string path, std::shared_ptr<const model::MemoryModel> memory, FoldedStackOptions options = {})
        : FileSink("memory flame graph", std::move(path)), options_(options), memory_(std::move(memory)) {}

protected:
    void open_(const SessionInfo& info) override {
        FileSink::open_(info);
        positions_.clear();
        tree_.clear();
        stacks_.clear();
    }

    void sink_it_(const ThreadInfo& thread, const Event* events, std::size_t count) override {
        if (memory_) {
            return;
        }
        StackPosition& position = positions_[thread.index];
        for (std::size_t i = 0; i < count; ++i) {
            const Event& e = events[i];
            if (e.kind == EventKind::mem_alloc) {
                stacks_.add(tree_, thread.index, position.node(), e.location(), memory_bytes(e));
            } else if (e.kind != EventKind::mem_free) {
                position.add(e, tree_);
            }
        }
    }

    void close_(const SessionSummary& summary) override {
        const LocationTree& tree = memory_ ? memory_->tree() : tree_;
        // (leaf, thread, bytes) by leaf, for one depth-first walk that
        // renders each line from the path it is on.
        using Leaf = model::AllocationStacks::Leaf;
        const std::vector<Leaf> leaves = memory_ ? memory_->allocation_stacks().leaves() : stacks_.leaves();
        std::vector<std::string> thread_frames;
        auto thread_frame = [&](std::uint32_t index) -> const std::string& {
            if (index >= thread_frames.size()) {
                thread_frames.resize(index + 1);
            }
            std::string& frame = thread_frames[index];
            if (frame.empty()) {
                const ThreadInfo* thread = summary.thread(index);
                append_folded_frame(frame, thread != nullptr ? thread->name : "thread-" + std::to_string(index));
            }
            return frame;
        };
        FoldedPath path(options_.folding);
        std::string line;
        write_folded_stream(file(), [&](auto&& emit) {
            path.clear();
            tree.walk(
                [&](std::uint32_t node) {
                    path.push(tree.location(node)->display_name());
                    auto range = std::equal_range(leaves.begin(), leaves.end(), Leaf{node, 0, 0},
                                                  [](const Leaf& a, const Leaf& b) { return a.node < b.node; });
                    for (auto it = range.first; it != range.second; ++it) {
                        line.clear();
                        if (options_.thread_frames) {
                            line = thread_frame(it->thread);
                        }
                        path.render(line, options_.thread_frames);
                        emit(std::string_view(line), it->bytes);
                    }
                },
                [&](std::uint32_t) { path.pop(); });
        });
    }

private:
    FoldedStackOptions options_;
    std::shared_ptr<const model::MemoryModel> memory_;
    PerThreadState<StackPosition> positions_;
    LocationTree tree_;
    model::AllocationStacks stacks_;
};

} // namespace sinks
} // namespace pycroscope
