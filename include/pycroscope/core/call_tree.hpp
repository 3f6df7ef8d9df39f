#pragma once
// Aggregates one thread's spans into a calling-context tree: per node the
// number of entries, inclusive and self ticks. Folded stacks and the JSON
// summary are both read off this tree.

#include "pycroscope/core/event.hpp"
#include "pycroscope/core/span_stack.hpp"
#include "pycroscope/core/tree_walk.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace pycroscope {

class CallTree {
public:
    static constexpr std::uint32_t no_node = 0xffffffffu;

    struct Node {
        const SourceLocation* location; // null for the root
        std::uint32_t parent;
        std::uint32_t first_child;
        std::uint32_t next_sibling;
        std::uint64_t count;   // fresh entries (calls)
        std::uint64_t resumes; // generator and coroutine re-entries
        std::uint64_t inclusive_ticks;
        std::uint64_t self_ticks;
    };

    CallTree() { nodes_.push_back(Node{nullptr, no_node, no_node, no_node, 0, 0, 0, 0}); }

    // Feeds one event; events that open or close no span are ignored.
    void add(const Event& event) {
        if (opens_span(event.kind)) {
            const bool counted = (event.flags & event_flags::synthetic) == 0;
            enter(event.location(), event.timestamp, counted && event.kind != EventKind::py_resume,
                  counted && event.kind == EventKind::py_resume);
        } else if (closes_span(event.kind)) {
            leave(event.location(), event.timestamp);
        }
    }

    void enter(const SourceLocation* location, std::uint64_t timestamp, bool call = true, bool resume = false) {
        const std::uint32_t parent = stack_.empty() ? 0 : stack_.top().payload.node;
        const std::uint32_t node = child(parent, location);
        nodes_[node].count += call ? 1 : 0;
        nodes_[node].resumes += resume ? 1 : 0;
        stack_.push(location, timestamp, Open{node, 0});
    }

    void leave(const SourceLocation* location, std::uint64_t timestamp) {
        stack_.pop(location, timestamp, [this](const Frame& frame, std::uint64_t end) { close(frame, end); });
    }

    // Closes the spans still open (at session stop).
    void finish(std::uint64_t timestamp) {
        stack_.close_all(timestamp, [this](const Frame& frame, std::uint64_t end) { close(frame, end); });
    }

    const std::vector<Node>& nodes() const noexcept { return nodes_; }
    std::uint64_t unmatched_ends() const noexcept { return stack_.unmatched_ends(); }
    std::size_t open_depth() const noexcept { return stack_.depth(); }

    // Calls visit(path, node) for every non-root node in depth-first order;
    // path holds the locations from the outermost frame to this node.
    template <class Visit>
    void for_each_node(Visit&& visit) const {
        std::vector<const SourceLocation*> path;
        walk([&](std::uint32_t index) {
            path.push_back(nodes_[index].location);
            visit(static_cast<const std::vector<const SourceLocation*>&>(path), nodes_[index]);
        }, [&](std::uint32_t) { path.pop_back(); });
    }

    // Depth-first over the non-root nodes, without recursion (the profiled
    // program's depth is not ours to spend): enter(index) before the node's
    // children, leave(index) after. Children come in the order of order(a, b)
    // (node indices), or in the tree's own order without one.
    template <class Enter, class Leave>
    void walk(Enter&& enter, Leave&& leave) const {
        walk(enter, leave, [](std::uint32_t, std::uint32_t) { return false; }, false);
    }
    template <class Enter, class Leave, class Order>
    void walk(Enter&& enter, Leave&& leave, Order&& order, bool sorted = true) const {
        detail::walk_tree(
            [this](std::uint32_t parent, std::vector<std::uint32_t>& out) {
                for (std::uint32_t c = nodes_[parent].first_child; c != no_node; c = nodes_[c].next_sibling) {
                    out.push_back(c);
                }
            },
            enter, leave, order, sorted);
    }

private:
    struct Open {
        std::uint32_t node;
        std::uint64_t child_ticks;
    };
    using Frame = SpanStack<Open>::Frame;

    void close(const Frame& frame, std::uint64_t end) {
        const std::uint64_t duration = end > frame.begin ? end - frame.begin : 0;
        Node& node = nodes_[frame.payload.node];
        node.inclusive_ticks += duration;
        node.self_ticks += duration > frame.payload.child_ticks ? duration - frame.payload.child_ticks : 0;
        if (!stack_.empty()) {
            stack_.top().payload.child_ticks += duration;
        }
    }

    // Finds or makes the child of parent for location. The found child moves
    // to the front of its sibling list: the next lookup is usually the same.
    std::uint32_t child(std::uint32_t parent, const SourceLocation* location) {
        std::uint32_t previous = no_node;
        for (std::uint32_t c = nodes_[parent].first_child; c != no_node; c = nodes_[c].next_sibling) {
            if (nodes_[c].location == location) {
                if (previous != no_node) {
                    nodes_[previous].next_sibling = nodes_[c].next_sibling;
                    nodes_[c].next_sibling = nodes_[parent].first_child;
                    nodes_[parent].first_child = c;
                }
                return c;
            }
            previous = c;
        }
        const auto index = static_cast<std::uint32_t>(nodes_.size());
        nodes_.push_back(Node{location, parent, no_node, nodes_[parent].first_child, 0, 0, 0, 0});
        nodes_[parent].first_child = index;
        return index;
    }

    std::vector<Node> nodes_;
    SpanStack<Open> stack_;
};

// Per-location totals over a tree. inclusive_ticks counts only the outermost
// activation of a recursive location, as cProfile's cumulative time does.
struct LocationTotals {
    std::uint64_t count = 0;
    std::uint64_t resumes = 0;
    std::uint64_t inclusive_ticks = 0;
    std::uint64_t self_ticks = 0;
};

inline void accumulate_totals(const CallTree& tree, std::unordered_map<const SourceLocation*, LocationTotals>& out) {
    std::unordered_map<const SourceLocation*, std::uint32_t> on_path;
    const auto& nodes = tree.nodes();
    // Iterative DFS so deep recursion in the profiled program cannot overflow ours.
    struct Step {
        std::uint32_t node;
        bool leaving;
    };
    std::vector<Step> todo;
    for (std::uint32_t c = nodes[0].first_child; c != CallTree::no_node; c = nodes[c].next_sibling) {
        todo.push_back(Step{c, false});
    }
    while (!todo.empty()) {
        const Step step = todo.back();
        todo.pop_back();
        const CallTree::Node& node = nodes[step.node];
        if (step.leaving) {
            if (--on_path[node.location] == 0) {
                on_path.erase(node.location);
            }
            continue;
        }
        LocationTotals& totals = out[node.location];
        totals.count += node.count;
        totals.resumes += node.resumes;
        totals.self_ticks += node.self_ticks;
        if (on_path.find(node.location) == on_path.end()) {
            totals.inclusive_ticks += node.inclusive_ticks;
        }
        ++on_path[node.location];
        todo.push_back(Step{step.node, true});
        for (std::uint32_t c = node.first_child; c != CallTree::no_node; c = nodes[c].next_sibling) {
            todo.push_back(Step{c, false});
        }
    }
}

} // namespace pycroscope
