#pragma once
// FlameTree: folded stacks ("a;b;c <weight>" per line, as stacks.folded and
// memory.folded hold them) merged into one prefix tree, then cut to at most
// max_nodes nodes for embedding in a report. The heaviest nodes are kept;
// the children a node loses are merged into one "[other]" child carrying
// their weight, so every kept node still sums to its true total.
//
//     report::FlameTree tree = report::FlameTree::from_file("stacks.folded");
//     tree.prune(20000);
//     report::JsonValue json = tree.to_json();  // {"total", "names", "name", "value", "parent", ...}
//
// The JSON form is flat and in preorder (a parent comes before its children):
// node i is named names[name[i]], weighs value[i] (inclusive) and hangs under
// parent[i] (-1 for the root, whose name is "all").

#include "pycroscope/report/json_document.hpp"
#include "pycroscope/report/report_error.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <numeric>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pycroscope {
namespace report {

class FlameTree {
public:
    static constexpr const char* other_name = "[other]";

    FlameTree() { nodes_.push_back(Node{intern("all"), 0, -1, 0}); }
    // Names are views into storage_, whose elements a move keeps in place.
    FlameTree(FlameTree&&) = default;
    FlameTree& operator=(FlameTree&&) = default;
    FlameTree(const FlameTree&) = delete;
    FlameTree& operator=(const FlameTree&) = delete;

    // Reads a folded file; throws ReportError when it cannot be opened.
    // Lines that do not end in a weight are counted in malformed_lines().
    static FlameTree from_file(const std::string& path) {
        std::FILE* file = std::fopen(path.c_str(), "rb");
        if (file == nullptr) {
            const int error = errno;
            throw ReportError("cannot read '" + path + "': " + std::strerror(error));
        }
        FlameTree tree;
        // A folded line is tens of bytes: reserving for one new node per 64
        // bytes spares most rehashing of a large file.
        if (std::fseek(file, 0, SEEK_END) == 0) {
            const long size = std::ftell(file);
            if (size > 0) {
                tree.reserve(static_cast<std::size_t>(size) / 64);
            }
            std::rewind(file);
        }
        std::string pending;
        std::vector<char> buffer(1 << 20);
        std::size_t got = 0;
        while ((got = std::fread(buffer.data(), 1, buffer.size(), file)) > 0) {
            std::string_view chunk(buffer.data(), got);
            std::size_t start = 0;
            while (true) {
                const std::size_t end = chunk.find('\n', start);
                if (end == std::string_view::npos) {
                    pending.append(chunk.substr(start));
                    break;
                }
                if (pending.empty()) {
                    tree.add_line(chunk.substr(start, end - start));
                } else {
                    pending.append(chunk.substr(start, end - start));
                    tree.add_line(pending);
                    pending.clear();
                }
                start = end + 1;
            }
        }
        std::fclose(file);
        if (!pending.empty()) {
            tree.add_line(pending);
        }
        return tree;
    }

    static FlameTree from_text(std::string_view text) {
        FlameTree tree;
        std::size_t start = 0;
        while (start < text.size()) {
            std::size_t end = text.find('\n', start);
            if (end == std::string_view::npos) {
                end = text.size();
            }
            tree.add_line(text.substr(start, end - start));
            start = end + 1;
        }
        return tree;
    }

    void reserve(std::size_t nodes) {
        nodes_.reserve(nodes);
        children_.reserve(nodes);
        name_ids_.reserve(nodes / 2);
    }

    // One folded line; empty lines are ignored.
    void add_line(std::string_view line) {
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        if (line.empty()) {
            return;
        }
        const std::size_t space = line.rfind(' ');
        std::uint64_t weight = 0;
        bool ok = space != std::string_view::npos && space + 1 < line.size();
        if (ok) {
            for (char c : line.substr(space + 1)) {
                if (c < '0' || c > '9' || weight > (UINT64_MAX - 9) / 10) {
                    ok = false;
                    break;
                }
                weight = weight * 10 + static_cast<std::uint64_t>(c - '0');
            }
        }
        if (!ok) {
            ++malformed_lines_;
            return;
        }
        ++lines_;
        std::string_view stack = line.substr(0, space);
        std::int32_t node = 0;
        nodes_[0].value += weight;
        std::size_t start = 0;
        while (start <= stack.size()) {
            std::size_t end = stack.find(';', start);
            if (end == std::string_view::npos) {
                end = stack.size();
            }
            node = child(node, intern(stack.substr(start, end - start)));
            nodes_[static_cast<std::size_t>(node)].value += weight;
            start = end + 1;
        }
    }

    std::uint64_t total() const noexcept { return nodes_[0].value; }
    std::size_t node_count() const noexcept { return nodes_.size(); }
    std::size_t lines() const noexcept { return lines_; }
    std::size_t malformed_lines() const noexcept { return malformed_lines_; }
    std::size_t pruned_nodes() const noexcept { return pruned_nodes_; }

    // Keeps the max_nodes heaviest nodes (max_nodes >= 2; "[other]" nodes
    // may add up to one per kept node that lost children). A node is never
    // kept without its parent: parents weigh at least as much as their
    // children and come first in creation order, which breaks ties.
    void prune(std::size_t max_nodes) {
        if (nodes_.size() <= max_nodes) {
            return;
        }
        max_nodes = std::max<std::size_t>(max_nodes, 2);
        std::vector<std::int32_t> order(nodes_.size());
        std::iota(order.begin(), order.end(), 0);
        const auto heavier = [this](std::int32_t a, std::int32_t b) {
            const std::uint64_t va = nodes_[static_cast<std::size_t>(a)].value;
            const std::uint64_t vb = nodes_[static_cast<std::size_t>(b)].value;
            return va != vb ? va > vb : a < b;
        };
        std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(max_nodes - 1), order.end(),
                         heavier);
        std::vector<char> keep(nodes_.size(), 0);
        for (std::size_t i = 0; i < max_nodes; ++i) {
            keep[static_cast<std::size_t>(order[i])] = 1;
        }
        keep[0] = 1;
        std::vector<std::uint64_t> lost(nodes_.size(), 0);
        std::size_t dropped = 0;
        for (std::size_t i = 1; i < nodes_.size(); ++i) {
            const std::size_t parent = static_cast<std::size_t>(nodes_[i].parent);
            if (keep[i] && !keep[parent]) {
                keep[i] = 0; // cannot happen by construction; stays safe if it did
            }
            if (!keep[i]) {
                ++dropped;
                if (keep[parent]) {
                    lost[parent] += nodes_[i].value;
                }
            }
        }
        std::vector<Node> kept;
        kept.reserve(max_nodes + max_nodes / 4);
        std::vector<std::int32_t> remap(nodes_.size(), -1);
        const std::uint32_t other = intern(other_name);
        for (std::size_t i = 0; i < nodes_.size(); ++i) {
            if (!keep[i]) {
                continue;
            }
            Node node = nodes_[i];
            node.parent = node.parent < 0 ? -1 : remap[static_cast<std::size_t>(node.parent)];
            remap[i] = static_cast<std::int32_t>(kept.size());
            kept.push_back(node);
        }
        for (std::size_t i = 0; i < nodes_.size(); ++i) {
            if (keep[i] && lost[i] > 0) {
                kept.push_back(Node{other, lost[i], remap[i], 0});
            }
        }
        nodes_ = std::move(kept);
        children_.clear(); // the tree is final after pruning
        pruned_nodes_ += dropped;
    }

    // Flat preorder arrays; see the file comment.
    JsonValue to_json() const {
        // Preorder by walking children lists (nodes_ is in creation order,
        // which is not preorder once stacks interleave).
        std::vector<std::vector<std::int32_t>> kids(nodes_.size());
        for (std::size_t i = 1; i < nodes_.size(); ++i) {
            kids[static_cast<std::size_t>(nodes_[i].parent)].push_back(static_cast<std::int32_t>(i));
        }
        for (auto& list : kids) {
            std::sort(list.begin(), list.end(), [this](std::int32_t a, std::int32_t b) {
                return names_[nodes_[static_cast<std::size_t>(a)].name] <
                       names_[nodes_[static_cast<std::size_t>(b)].name];
            });
        }
        std::vector<std::int32_t> order;
        order.reserve(nodes_.size());
        std::vector<std::int32_t> stack{0};
        while (!stack.empty()) {
            const std::int32_t node = stack.back();
            stack.pop_back();
            order.push_back(node);
            const auto& list = kids[static_cast<std::size_t>(node)];
            for (auto it = list.rbegin(); it != list.rend(); ++it) {
                stack.push_back(*it);
            }
        }
        std::vector<std::int32_t> position(nodes_.size(), -1);
        std::vector<std::int32_t> name_index(names_.size(), -1);
        JsonValue names = JsonValue::make_array();
        JsonValue name = JsonValue::make_array();
        JsonValue value = JsonValue::make_array();
        JsonValue parent = JsonValue::make_array();
        for (std::size_t i = 0; i < order.size(); ++i) {
            const Node& node = nodes_[static_cast<std::size_t>(order[i])];
            position[static_cast<std::size_t>(order[i])] = static_cast<std::int32_t>(i);
            if (name_index[node.name] < 0) {
                name_index[node.name] = static_cast<std::int32_t>(names.items().size());
                names.push_back(JsonValue::make_string(std::string(names_[node.name])));
            }
            name.push_back(JsonValue::make_number_text(std::to_string(name_index[node.name])));
            value.push_back(JsonValue::make_number_text(std::to_string(node.value)));
            parent.push_back(JsonValue::make_number_text(
                std::to_string(node.parent < 0 ? -1 : position[static_cast<std::size_t>(node.parent)])));
        }
        JsonValue out = JsonValue::make_object();
        out.set("total", JsonValue::make_number_text(std::to_string(total())));
        out.set("lines", JsonValue::make_number_text(std::to_string(lines_)));
        out.set("malformed_lines", JsonValue::make_number_text(std::to_string(malformed_lines_)));
        out.set("pruned_nodes", JsonValue::make_number_text(std::to_string(pruned_nodes_)));
        out.set("names", std::move(names));
        out.set("name", std::move(name));
        out.set("value", std::move(value));
        out.set("parent", std::move(parent));
        return out;
    }

private:
    struct Node {
        std::uint32_t name;
        std::uint64_t value;
        std::int32_t parent;
        std::uint32_t unused;
    };

    std::uint32_t intern(std::string_view text) {
        const auto found = name_ids_.find(text);
        if (found != name_ids_.end()) {
            return found->second;
        }
        storage_.emplace_back(text);
        const std::string_view stored = storage_.back();
        const std::uint32_t id = static_cast<std::uint32_t>(names_.size());
        names_.push_back(stored);
        name_ids_.emplace(stored, id);
        return id;
    }

    std::int32_t child(std::int32_t parent, std::uint32_t name) {
        const std::uint64_t key = (static_cast<std::uint64_t>(static_cast<std::uint32_t>(parent)) << 32) | name;
        const auto found = children_.find(key);
        if (found != children_.end()) {
            return found->second;
        }
        const std::int32_t id = static_cast<std::int32_t>(nodes_.size());
        nodes_.push_back(Node{name, 0, parent, 0});
        children_.emplace(key, id);
        return id;
    }

    std::deque<std::string> storage_;
    std::vector<std::string_view> names_;
    std::unordered_map<std::string_view, std::uint32_t> name_ids_;
    std::vector<Node> nodes_;
    std::unordered_map<std::uint64_t, std::int32_t> children_;
    std::size_t lines_ = 0;
    std::size_t malformed_lines_ = 0;
    std::size_t pruned_nodes_ = 0;
};

} // namespace report
} // namespace pycroscope
