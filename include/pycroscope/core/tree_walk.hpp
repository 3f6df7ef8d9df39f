#pragma once
// Depth-first over a tree of node indices rooted at 0, without recursion (the
// profiled program's depth is not ours to spend). Shared by CallTree and
// LocationTree, which link their children differently.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace pycroscope {
namespace detail {

// children(parent, out) appends parent's children to out. enter(node) runs
// before the node's children, leave(node) after; the root is neither
// entered nor left. With sorted, each node's children come in the order of
// order(a, b), else as children() gave them.
template <class Children, class Enter, class Leave, class Order>
void walk_tree(Children&& children, Enter&& enter, Leave&& leave, Order&& order, bool sorted) {
    struct Level {
        std::size_t begin; // into pending
        std::size_t next;
    };
    std::vector<std::uint32_t> pending; // children of every level on the path
    std::vector<Level> levels;
    auto open = [&](std::uint32_t parent) {
        const std::size_t begin = pending.size();
        children(parent, pending);
        if (sorted) {
            std::stable_sort(pending.begin() + static_cast<std::ptrdiff_t>(begin), pending.end(), order);
        }
        levels.push_back(Level{begin, begin});
    };
    open(0);
    while (!levels.empty()) {
        Level& level = levels.back();
        if (level.next == pending.size()) {
            pending.resize(level.begin);
            levels.pop_back();
            if (!levels.empty()) {
                leave(pending[levels.back().next - 1]);
            }
            continue;
        }
        const std::uint32_t node = pending[level.next++];
        enter(node);
        open(node);
    }
}

} // namespace detail
} // namespace pycroscope
