#pragma once
// Folded stacks ("a;b;c 1234" per line), the input of flamegraph.pl, inferno
// and speedscope. Each line is a distinct stack with its self time in ns.
// By default every stack starts with its thread's name, as py-spy --threads
// does. Lost events are named by a line "<thread>;[N events lost] 1" so the
// gap shows up in the graph without skewing its weights. Lines are written
// as a stream, each bounded (see folded_lines.hpp): deep recursion costs a
// line per depth, not a path per line. Threads come in name order, and
// within one the stacks depth first, callees in name order.
//
// Given the session's model::ProfileBuilder (a processor, closed before the
// sinks), the sink writes the builder's per-thread paths instead of walking
// the span events again; in a traced run the two give the same stacks.

#include "pycroscope/core/call_tree.hpp"
#include "pycroscope/model/profile_builder.hpp"
#include "pycroscope/sinks/file_sink.hpp"
#include "pycroscope/sinks/folded_lines.hpp"
#include "pycroscope/sinks/json_writer.hpp"
#include "pycroscope/sinks/per_thread_state.hpp"

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pycroscope {
namespace sinks {

struct FoldedStackOptions {
    bool thread_frames = true; // first frame of every stack is the thread name
    FoldingOptions folding;    // deep recursion and deep stacks stay short lines
};

class FoldedStackSink : public FileSink {
public:
    explicit FoldedStackSink(std::string path, FoldedStackOptions options = {})
        : FileSink("folded stacks", std::move(path)), options_(options) {}
    // A traced run's stacks from the builder's thread paths (it keeps them from now on).
    FoldedStackSink(std::string path, std::shared_ptr<model::ProfileBuilder> builder, FoldedStackOptions options = {})
        : FileSink("folded stacks", std::move(path)), options_(options), builder_(std::move(builder)) {
        builder_->keep_thread_paths(true);
    }

protected:
    void open_(const SessionInfo& info) override {
        FileSink::open_(info);
        trees_.clear();
    }

    void sink_it_(const ThreadInfo& thread, const Event* events, std::size_t count) override {
        if (builder_) {
            return;
        }
        CallTree& tree = trees_[thread.index];
        for (std::size_t i = 0; i < count; ++i) {
            tree.add(events[i]);
        }
    }

    void close_(const SessionSummary& summary) override {
        struct Thread {
            std::string frame; // escaped thread name
            const CallTree* tree;
            const model::ProfileBuilder::ThreadPaths* paths;
            std::uint64_t lost;
        };
        std::vector<Thread> threads;
        std::vector<bool> has_tree;
        auto add_thread = [&](std::uint32_t index, const CallTree* tree, const model::ProfileBuilder::ThreadPaths* paths) {
            has_tree.resize(std::max<std::size_t>(has_tree.size(), index + 1), false);
            has_tree[index] = true;
            const ThreadInfo* thread = summary.thread(index);
            Thread entry{{}, tree, paths, thread != nullptr ? thread->lost : 0};
            append_folded_frame(entry.frame, thread != nullptr ? thread->name : "thread-" + std::to_string(index));
            threads.push_back(std::move(entry));
        };
        if (builder_) {
            for (const auto& paths : builder_->thread_paths()) {
                add_thread(paths.thread, nullptr, &paths);
            }
        }
        trees_.for_each([&](std::uint32_t index, CallTree& tree) {
            tree.finish(summary.stop_ticks);
            add_thread(index, &tree, nullptr);
        });
        for (const auto& thread : summary.threads) {
            if (thread.lost > 0 && (thread.index >= has_tree.size() || !has_tree[thread.index])) {
                Thread entry{{}, nullptr, nullptr, thread.lost};
                append_folded_frame(entry.frame, thread.name);
                threads.push_back(std::move(entry));
            }
        }
        std::stable_sort(threads.begin(), threads.end(),
                         [](const Thread& a, const Thread& b) { return a.frame < b.frame; });
        const bool thread_frames = options_.thread_frames;
        const SessionInfo& info = summary.info;
        FoldedPath path(options_.folding);
        std::string line;
        write_folded_stream(file(), [&](auto&& emit) {
            for (const Thread& thread : threads) {
                if (thread.tree != nullptr) {
                    const auto& nodes = thread.tree->nodes();
                    path.clear();
                    thread.tree->walk(
                        [&](std::uint32_t index) {
                            const CallTree::Node& node = nodes[index];
                            path.push(node.location->display_name());
                            const auto ns = static_cast<std::uint64_t>(info.ticks_to_ns(node.self_ticks) + 0.5);
                            if (ns == 0) {
                                return;
                            }
                            line.clear();
                            if (thread_frames) {
                                line = thread.frame;
                            }
                            path.render(line, thread_frames);
                            emit(std::string_view(line), ns);
                        },
                        [&](std::uint32_t) { path.pop(); },
                        [&](std::uint32_t a, std::uint32_t b) {
                            return std::string_view(nodes[a].location->display_name()) <
                                   std::string_view(nodes[b].location->display_name());
                        });
                }
                if (thread.paths != nullptr) {
                    const LocationTree& tree = *thread.paths->tree;
                    const std::vector<std::uint64_t>& self_ns = thread.paths->self_ns;
                    path.clear();
                    tree.walk(
                        [&](std::uint32_t node) {
                            path.push(tree.location(node)->display_name());
                            const std::uint64_t ns = node < self_ns.size() ? self_ns[node] : 0;
                            if (ns == 0) {
                                return;
                            }
                            line.clear();
                            if (thread_frames) {
                                line = thread.frame;
                            }
                            path.render(line, thread_frames);
                            emit(std::string_view(line), ns);
                        },
                        [&](std::uint32_t) { path.pop(); },
                        [&](std::uint32_t a, std::uint32_t b) {
                            return std::string_view(tree.location(a)->display_name()) <
                                   std::string_view(tree.location(b)->display_name());
                        });
                }
                if (thread.lost > 0) {
                    line = thread.frame;
                    line += ";[";
                    append_unsigned(line, thread.lost);
                    line += " events lost]";
                    emit(std::string_view(line), 1);
                }
            }
        });
    }

private:
    FoldedStackOptions options_;
    std::shared_ptr<model::ProfileBuilder> builder_;
    PerThreadState<CallTree> trees_;
};

} // namespace sinks
} // namespace pycroscope
