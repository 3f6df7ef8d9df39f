#pragma once
// Ids of (a, b) pairs of small integers (a caller and its callee, a call-tree
// node and a function), looked up on every call the drain thread processes.
// A caller calls the same few functions again and again: the last few pairs
// of each a sit in front of the hash map.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace pycroscope {
namespace model {

class PairIds {
public:
    static constexpr std::uint32_t none = 0xffffffffu;

    // The id of (a, b), or none.
    std::uint32_t find(std::uint32_t a, std::uint32_t b) {
        if (a < recent_.size()) {
            for (const Entry& entry : recent_[a].entries) {
                if (entry.b == b && entry.id != none) {
                    return entry.id;
                }
            }
        }
        const auto found = ids_.find(key(a, b));
        if (found == ids_.end()) {
            return none;
        }
        remember(a, b, found->second);
        return found->second;
    }

    void add(std::uint32_t a, std::uint32_t b, std::uint32_t id) {
        ids_.emplace(key(a, b), id);
        remember(a, b, id);
    }

    void clear() {
        ids_.clear();
        recent_.clear();
    }

private:
    struct Entry {
        std::uint32_t b = none;
        std::uint32_t id = none;
    };
    struct Recent {
        std::array<Entry, 4> entries{};
        std::uint32_t next = 0;
    };

    struct KeyHash {
        std::size_t operator()(std::uint64_t key) const noexcept {
            key ^= key >> 33;
            key *= 0xff51afd7ed558ccdull;
            key ^= key >> 33;
            return static_cast<std::size_t>(key);
        }
    };

    static std::uint64_t key(std::uint32_t a, std::uint32_t b) noexcept {
        return (static_cast<std::uint64_t>(a) << 32) | b;
    }

    void remember(std::uint32_t a, std::uint32_t b, std::uint32_t id) {
        if (a >= recent_.size()) {
            recent_.resize(std::max<std::size_t>(std::size_t{a} + 1, 2 * recent_.size()));
        }
        Recent& recent = recent_[a];
        recent.entries[recent.next++ % recent.entries.size()] = Entry{b, id};
    }

    std::unordered_map<std::uint64_t, std::uint32_t, KeyHash> ids_;
    std::vector<Recent> recent_;
};

} // namespace model
} // namespace pycroscope
