#pragma once
// Folded stacks ("a;b;c 1234" per line), the input of flamegraph.pl, inferno
// and speedscope. Each line is a distinct stack with its self time in ns.
// By default every stack starts with its thread's name, as py-spy --threads
// does. Lost events are named by a line "<thread>;[N events lost] 1" so the
// gap shows up in the graph without skewing its weights.

#include "pycroscope/core/call_tree.hpp"
#include "pycroscope/sinks/file_sink.hpp"
#include "pycroscope/sinks/json_writer.hpp"
#include "pycroscope/sinks/per_thread_state.hpp"

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace pycroscope {
namespace sinks {

struct FoldedStackOptions {
    bool thread_frames = true; // first frame of every stack is the thread name
};

// Frame names must not contain the separators of the format.
inline void append_folded_frame(std::string& out, std::string_view name) {
    for (const char c : name) {
        out += (c == ';' ? ':' : (c == '\n' || c == '\r') ? ' ' : c);
    }
}

// Writes `stack weight` lines in order, in 1 MiB pieces, and commits the file.
template <class Lines>
void write_folded_lines(AtomicFile& file, const Lines& lines) {
    std::string out;
    for (const auto& line : lines) {
        out += line.first;
        out += ' ';
        append_unsigned(out, line.second);
        out += '\n';
        if (out.size() > (1u << 20)) {
            file.write(out);
            out.clear();
        }
    }
    file.write(out);
    file.commit();
}

class FoldedStackSink : public FileSink {
public:
    explicit FoldedStackSink(std::string path, FoldedStackOptions options = {})
        : FileSink("folded stacks", std::move(path)), options_(options) {}

protected:
    void open_(const SessionInfo& info) override {
        FileSink::open_(info);
        trees_.clear();
    }

    void sink_it_(const ThreadInfo& thread, const Event* events, std::size_t count) override {
        CallTree& tree = trees_[thread.index];
        for (std::size_t i = 0; i < count; ++i) {
            tree.add(events[i]);
        }
    }

    void close_(const SessionSummary& summary) override {
        // Ordered map: merges equal stacks (across threads when thread
        // frames are off) and gives a stable file.
        std::map<std::string, std::uint64_t> lines;
        std::string path;
        trees_.for_each([&](std::uint32_t index, CallTree& tree) {
            tree.finish(summary.stop_ticks);
            const ThreadInfo* thread = summary.thread(index);
            std::string prefix;
            if (options_.thread_frames) {
                append_folded_frame(prefix, thread != nullptr ? thread->name : "thread-" + std::to_string(index));
            }
            tree.for_each_node([&](const std::vector<const SourceLocation*>& stack, const CallTree::Node& node) {
                const auto ns = static_cast<std::uint64_t>(summary.info.ticks_to_ns(node.self_ticks) + 0.5);
                if (ns == 0) {
                    return;
                }
                path = prefix;
                // A separator before every frame but the first (an empty name is still a frame).
                bool first = !options_.thread_frames;
                for (const SourceLocation* location : stack) {
                    if (!first) {
                        path += ';';
                    }
                    first = false;
                    append_folded_frame(path, location->display_name());
                }
                lines[path] += ns;
            });
        });
        for (const auto& thread : summary.threads) {
            if (thread.lost > 0) {
                std::string line;
                append_folded_frame(line, thread.name);
                line += ";[" + std::to_string(thread.lost) + " events lost]";
                lines[line] += 1;
            }
        }
        write_folded_lines(file(), lines);
    }

private:
    FoldedStackOptions options_;
    PerThreadState<CallTree> trees_;
};

} // namespace sinks
} // namespace pycroscope
