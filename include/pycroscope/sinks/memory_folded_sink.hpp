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
#include "pycroscope/sinks/file_sink.hpp"
#include "pycroscope/sinks/folded_lines.hpp"
#include "pycroscope/sinks/folded_stack_sink.hpp"
#include "pycroscope/sinks/json_writer.hpp"
#include "pycroscope/sinks/per_thread_state.hpp"

#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <string>
#include <unordered_map>
#include <vector>

namespace pycroscope {
namespace sinks {

// The last frame of allocations made with no Python code running.
inline constexpr SourceLocation unattributed_allocation{"[no Python frame]", "[no Python frame]", "", 0,
                                                        LocationKind::other};

class MemoryFoldedSink : public FileSink {
public:
    explicit MemoryFoldedSink(std::string path, FoldedStackOptions options = {})
        : FileSink("memory flame graph", std::move(path)), options_(options) {}

protected:
    void open_(const SessionInfo& info) override {
        FileSink::open_(info);
        positions_.clear();
        tree_.clear();
        bytes_.clear();
        leaf_cache_.assign(leaf_cache_size, LeafCacheSlot{});
    }

    void sink_it_(const ThreadInfo& thread, const Event* events, std::size_t count) override {
        StackPosition& position = positions_[thread.index];
        for (std::size_t i = 0; i < count; ++i) {
            const Event& e = events[i];
            if (e.kind == EventKind::mem_alloc) {
                const SourceLocation* line = e.location() != nullptr ? e.location() : &unattributed_allocation;
                *leaf_bytes(thread.index, position.node(), line) += memory_bytes(e);
            } else if (e.kind != EventKind::mem_free) {
                position.add(e, tree_);
            }
        }
    }

    void close_(const SessionSummary& summary) override {
        // (leaf, thread, bytes) by leaf, and the tree's child lists, for one
        // depth-first walk that renders each line from the path it is on.
        struct Leaf {
            std::uint32_t node;
            std::uint32_t thread;
            std::uint64_t bytes;
        };
        std::vector<Leaf> leaves;
        for (const auto& entry : bytes_) {
            if (entry.second != 0) {
                leaves.push_back(Leaf{static_cast<std::uint32_t>(entry.first),
                                      static_cast<std::uint32_t>(entry.first >> 32), entry.second});
            }
        }
        std::sort(leaves.begin(), leaves.end(), [](const Leaf& a, const Leaf& b) {
            return a.node != b.node ? a.node < b.node : a.thread < b.thread;
        });
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
        constexpr std::uint32_t none = 0xffffffffu;
        const std::size_t size = tree_.size();
        std::vector<std::uint32_t> first_child(size, none);
        std::vector<std::uint32_t> next_sibling(size, none);
        for (std::size_t n = size; n-- > 1;) {
            const std::uint32_t parent = tree_.parent(static_cast<std::uint32_t>(n));
            next_sibling[n] = first_child[parent];
            first_child[parent] = static_cast<std::uint32_t>(n);
        }
        FoldedPath path(options_.folding);
        std::string line;
        write_folded_stream(file(), [&](auto&& emit) {
            path.clear();
            std::vector<std::uint32_t> stack{first_child[LocationTree::root]}; // next child to visit, per level
            while (!stack.empty()) {
                const std::uint32_t node = stack.back();
                if (node == none) {
                    stack.pop_back();
                    if (!stack.empty()) {
                        path.pop();
                        stack.back() = next_sibling[stack.back()];
                    }
                    continue;
                }
                path.push(tree_.location(node)->display_name());
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
                stack.push_back(first_child[node]);
            }
        });
    }

private:
    // Allocations come from a few (stack, line) pairs at a time: a small
    // direct-mapped cache of their counters saves the two hash lookups per
    // event. The counters live in bytes_'s nodes, whose addresses are stable.
    struct LeafCacheSlot {
        std::uint32_t thread = 0;
        std::uint32_t parent = 0;
        const SourceLocation* line = nullptr;
        std::uint64_t* bytes = nullptr;
    };
    static constexpr unsigned leaf_cache_bits = 10;
    static constexpr std::size_t leaf_cache_size = std::size_t{1} << leaf_cache_bits;

    std::uint64_t* leaf_bytes(std::uint32_t thread, std::uint32_t parent, const SourceLocation* line) {
        const std::uint64_t hash =
            ((static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(line)) >> 3) ^
             (static_cast<std::uint64_t>(parent) << 20) ^ thread) * 0x9E3779B97F4A7C15ull;
        LeafCacheSlot& slot = leaf_cache_[static_cast<std::size_t>(hash >> (64 - leaf_cache_bits))];
        if (slot.bytes == nullptr || slot.line != line || slot.parent != parent || slot.thread != thread) {
            const std::uint32_t leaf = tree_.child(parent, line);
            slot = LeafCacheSlot{thread, parent, line, &bytes_[(static_cast<std::uint64_t>(thread) << 32) | leaf]};
        }
        return slot.bytes;
    }

    FoldedStackOptions options_;
    PerThreadState<StackPosition> positions_;
    LocationTree tree_;
    std::unordered_map<std::uint64_t, std::uint64_t> bytes_; // (thread index << 32 | leaf) -> bytes
    std::vector<LeafCacheSlot> leaf_cache_ = std::vector<LeafCacheSlot>(leaf_cache_size);
};

} // namespace sinks
} // namespace pycroscope
