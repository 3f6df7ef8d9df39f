#pragma once
// Bytes allocated per (thread, call stack, allocating line): the data of
// memory.folded. The stack is a node of a LocationTree followed by a
// StackPosition; the allocating line becomes a leaf under it. The memory
// model keeps one for its own tree, so the memory flame graph needs no
// second walk of the span events.

#include "pycroscope/core/event.hpp"
#include "pycroscope/core/location_tree.hpp"
#include "pycroscope/core/source_location.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace pycroscope {
namespace model {

// The leaf of allocations made with no Python code running.
inline constexpr SourceLocation unattributed_allocation{"[no Python frame]", "[no Python frame]", "", 0,
                                                        LocationKind::other};

class AllocationStacks {
public:
    struct Leaf {
        std::uint32_t node; // the allocating line's node in the tree
        std::uint32_t thread;
        std::uint64_t bytes;
    };

    void clear() {
        bytes_.clear();
        cache_.assign(cache_size, CacheSlot{});
    }

    // Adds bytes allocated by thread at line (null: no Python frame) with the
    // stack at node stack of tree.
    void add(LocationTree& tree, std::uint32_t thread, std::uint32_t stack, const SourceLocation* line,
             std::uint64_t bytes) {
        if (line == nullptr) {
            line = &unattributed_allocation;
        }
        // Allocations come from a few (stack, line) pairs at a time: a small
        // direct-mapped cache of their counters saves two hash lookups. The
        // counters live in bytes_'s nodes, whose addresses are stable.
        const std::uint64_t hash = ((static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(line)) >> 3) ^
                                    (static_cast<std::uint64_t>(stack) << 20) ^ thread) *
                                   0x9E3779B97F4A7C15ull;
        CacheSlot& slot = cache_[static_cast<std::size_t>(hash >> (64 - cache_bits))];
        if (slot.bytes == nullptr || slot.line != line || slot.stack != stack || slot.thread != thread) {
            const std::uint32_t leaf = tree.child(stack, line);
            slot = CacheSlot{thread, stack, line, &bytes_[(static_cast<std::uint64_t>(thread) << 32) | leaf]};
        }
        *slot.bytes += bytes;
    }

    // Every leaf with bytes, ordered by node, then thread.
    std::vector<Leaf> leaves() const {
        std::vector<Leaf> out;
        for (const auto& entry : bytes_) {
            if (entry.second != 0) {
                out.push_back(Leaf{static_cast<std::uint32_t>(entry.first),
                                   static_cast<std::uint32_t>(entry.first >> 32), entry.second});
            }
        }
        std::sort(out.begin(), out.end(), [](const Leaf& a, const Leaf& b) {
            return a.node != b.node ? a.node < b.node : a.thread < b.thread;
        });
        return out;
    }

private:
    struct CacheSlot {
        std::uint32_t thread = 0;
        std::uint32_t stack = 0;
        const SourceLocation* line = nullptr;
        std::uint64_t* bytes = nullptr;
    };
    static constexpr unsigned cache_bits = 10;
    static constexpr std::size_t cache_size = std::size_t{1} << cache_bits;

    std::unordered_map<std::uint64_t, std::uint64_t> bytes_; // (thread << 32 | leaf node) -> bytes
    std::vector<CacheSlot> cache_ = std::vector<CacheSlot>(cache_size);
};

} // namespace model
} // namespace pycroscope
