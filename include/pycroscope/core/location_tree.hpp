#pragma once
// Call paths interned as nodes of one prefix tree, and a per-thread cursor
// that follows a thread's span events through it. A thread's position is
// then a single node index: drain-side analyses (memory, for example) can
// remember "the stack at this moment" without copying it.

#include "pycroscope/core/event.hpp"
#include "pycroscope/core/source_location.hpp"
#include "pycroscope/core/tree_walk.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <unordered_map>
#include <vector>

namespace pycroscope {

class LocationTree {
public:
    static constexpr std::uint32_t root = 0;

    LocationTree() { nodes_.push_back(Node{nullptr, root, {}, 0}); }

    // The node for location called from parent, made on first sight.
    // A parent calls the same few children again and again: its last two
    // sit in front of the hash map.
    std::uint32_t child(std::uint32_t parent, const SourceLocation* location) {
        Node& from = nodes_[parent];
        for (const Recent& recent : from.recent) {
            if (recent.location == location && recent.node != root) {
                return recent.node;
            }
        }
        const Key key{parent, location};
        auto found = index_.find(key);
        std::uint32_t node;
        if (found != index_.end()) {
            node = found->second;
        } else {
            node = static_cast<std::uint32_t>(nodes_.size());
            nodes_.push_back(Node{location, parent, {}, 0});
            index_.emplace(key, node);
        }
        Node& cached = nodes_[parent]; // push_back may have moved it
        cached.recent[cached.next_recent] = Recent{location, node};
        cached.next_recent ^= 1;
        return node;
    }

    const SourceLocation* location(std::uint32_t node) const noexcept { return nodes_[node].location; }
    std::uint32_t parent(std::uint32_t node) const noexcept { return nodes_[node].parent; }
    std::size_t size() const noexcept { return nodes_.size(); }

    // Depth-first over the non-root nodes, as CallTree::walk: enter(node)
    // before its children, leave(node) after; children in the order of
    // order(a, b), or in the order they were made without one.
    template <class Enter, class Leave>
    void walk(Enter&& enter, Leave&& leave) const {
        walk(enter, leave, [](std::uint32_t, std::uint32_t) { return false; }, false);
    }
    template <class Enter, class Leave, class Order>
    void walk(Enter&& enter, Leave&& leave, Order&& order, bool sorted = true) const {
        constexpr std::uint32_t none = 0xffffffffu;
        std::vector<std::uint32_t> first_child(nodes_.size(), none);
        std::vector<std::uint32_t> next_sibling(nodes_.size(), none);
        for (std::size_t n = nodes_.size(); n-- > 1;) {
            const std::uint32_t parent = nodes_[n].parent;
            next_sibling[n] = first_child[parent];
            first_child[parent] = static_cast<std::uint32_t>(n);
        }
        detail::walk_tree(
            [&](std::uint32_t parent, std::vector<std::uint32_t>& out) {
                for (std::uint32_t c = first_child[parent]; c != none; c = next_sibling[c]) {
                    out.push_back(c);
                }
            },
            enter, leave, order, sorted);
    }

    // The locations from the outermost frame down to node.
    std::vector<const SourceLocation*> path(std::uint32_t node) const {
        std::vector<const SourceLocation*> out;
        for (; node != root; node = nodes_[node].parent) {
            out.push_back(nodes_[node].location);
        }
        return std::vector<const SourceLocation*>(out.rbegin(), out.rend());
    }

    void clear() {
        nodes_.assign(1, Node{nullptr, root, {}, 0});
        index_.clear();
    }

private:
    struct Recent {
        const SourceLocation* location = nullptr;
        std::uint32_t node = root; // root: empty
    };
    struct Node {
        const SourceLocation* location;
        std::uint32_t parent;
        Recent recent[2];
        std::uint32_t next_recent;
    };
    struct Key {
        std::uint32_t parent;
        const SourceLocation* location;
        bool operator==(const Key& other) const noexcept {
            return parent == other.parent && location == other.location;
        }
    };
    struct KeyHash {
        std::size_t operator()(const Key& key) const noexcept {
            return std::hash<const void*>()(key.location) * 0x9E3779B97F4A7C15ull ^ key.parent;
        }
    };
    std::vector<Node> nodes_;
    std::unordered_map<Key, std::uint32_t, KeyHash> index_;
};

// One thread's position in a LocationTree, and the innermost native zone it
// is in. An end without its begin is ignored; an end closes any span opened
// after its begin (the same rule as SpanStack).
class StackPosition {
public:
    // Feeds one event; returns false for events that open or close no span.
    bool add(const Event& event, LocationTree& tree) {
        if (opens_span(event.kind)) {
            const SourceLocation* location = event.location();
            const bool zone = location != nullptr && (location->kind == LocationKind::native_zone ||
                                                      location->kind == LocationKind::dynamic_zone);
            frames_.push_back(Frame{location, tree.child(node(), location), zone ? location : this->zone()});
            return true;
        }
        if (closes_span(event.kind)) {
            std::size_t match = frames_.size();
            while (match > 0 && frames_[match - 1].location != event.location()) {
                --match;
            }
            if (match > 0) {
                frames_.resize(match - 1);
            }
            return true;
        }
        return false;
    }

    std::uint32_t node() const noexcept { return frames_.empty() ? LocationTree::root : frames_.back().node; }
    // The innermost native zone (PYCRO_SCOPE or pycroscope.zone), or null.
    const SourceLocation* zone() const noexcept { return frames_.empty() ? nullptr : frames_.back().zone; }
    std::size_t depth() const noexcept { return frames_.size(); }

private:
    struct Frame {
        const SourceLocation* location;
        std::uint32_t node;
        const SourceLocation* zone;
    };
    std::vector<Frame> frames_;
};

} // namespace pycroscope
