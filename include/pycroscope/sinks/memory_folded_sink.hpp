#pragma once
// memory.folded: a flame graph of allocated bytes in flamegraph.pl syntax.
// Each line is thread;frames...;allocation line <bytes>, where frames are the
// Python functions and native zones open on that thread when it allocated
// (from the tracer's and the zones' span events; none without a tracer) and
// the last frame is the allocating line ("function:line"). Weighted by bytes
// allocated over the session, freed or not; in sampling mode by the bytes the
// samples stand for.

#include "pycroscope/core/location_tree.hpp"
#include "pycroscope/sinks/file_sink.hpp"
#include "pycroscope/sinks/folded_stack_sink.hpp"
#include "pycroscope/sinks/json_writer.hpp"
#include "pycroscope/sinks/per_thread_state.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
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
        std::map<std::string, std::uint64_t> lines;
        std::string path;
        for (const auto& entry : bytes_) {
            if (entry.second == 0) {
                continue;
            }
            const auto index = static_cast<std::uint32_t>(entry.first >> 32);
            const auto leaf = static_cast<std::uint32_t>(entry.first);
            path.clear();
            bool first = true;
            if (options_.thread_frames) {
                const ThreadInfo* thread = summary.thread(index);
                append_folded_frame(path, thread != nullptr ? thread->name : "thread-" + std::to_string(index));
                first = false;
            }
            for (const SourceLocation* location : tree_.path(leaf)) {
                if (!first) {
                    path += ';';
                }
                first = false;
                append_folded_frame(path, location->display_name());
            }
            lines[path] += entry.second;
        }
        write_folded_lines(file(), lines);
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
