#pragma once
// The statistical profile of a sampling session: samples decoded from the
// event stream and counted per stack, per function, per Python line and per
// sampled thread, each split into running and idle samples.
//
//   self samples   the function (or line) is the leaf of the sample
//   total samples  it appears anywhere on the stack; a recursive function
//                  still counts once per sample
//
// Hotspots turn the counts into shares of all samples (wall-clock view, as
// py-spy and Austin report by default) or of running samples only (CPU view).
// Runs on the drain thread, never on a recording thread.

#include "pycroscope/model/sample_decoder.hpp"
#include "pycroscope/core/event.hpp"
#include "pycroscope/core/source_location.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pycroscope {
namespace model {

// Samples split by what the thread was doing.
struct SampleCounts {
    std::uint64_t idle = 0;
    std::uint64_t running = 0;

    std::uint64_t all() const noexcept { return idle + running; }
    std::uint64_t selected(bool include_idle) const noexcept { return include_idle ? all() : running; }
    void add(bool is_running) noexcept { ++(is_running ? running : idle); }
};

struct SampledThread {
    std::uint64_t os_tid = 0;
    std::string name; // from the samples, or "thread <os_tid>"
    SampleCounts samples;
    std::uint64_t first_timestamp = 0;
    std::uint64_t last_timestamp = 0;
};

struct FunctionSamples {
    const SourceLocation* location = nullptr; // Python function, native zone or manual frame
    SampleCounts self;
    SampleCounts total;
};

struct LineSamples {
    const SourceLocation* function = nullptr; // the Python function the line belongs to
    std::uint32_t line = 0;
    SampleCounts self;  // the innermost frame was on this line
    SampleCounts total; // a frame on the stack was on this line
};

struct HotspotQuery {
    bool include_idle = true; // false: shares of running samples only (CPU view)
    std::size_t top = 0;      // keep the first N functions and lines; 0 keeps all
};

struct FunctionHotspot {
    const SourceLocation* location = nullptr;
    std::uint64_t self_samples = 0;
    std::uint64_t total_samples = 0;
    double self_pct = 0;
    double total_pct = 0;
};

struct LineHotspot {
    const SourceLocation* function = nullptr;
    std::uint32_t line = 0;
    std::uint64_t self_samples = 0;
    std::uint64_t total_samples = 0;
    double self_pct = 0;
    double total_pct = 0;
};

struct Hotspots {
    std::uint64_t samples = 0; // the denominator of every share
    std::vector<FunctionHotspot> functions; // by self share, then total share
    std::vector<LineHotspot> lines;         // by self share, then total share
};

class SampleProfile {
public:
    // One node of the per-thread stack trees. Node i's frames are its
    // parent chain; roots (location null) are the sampled threads.
    struct StackNode {
        std::uint32_t parent = 0;
        std::uint32_t thread = 0; // index into threads()
        const SourceLocation* location = nullptr;
        SampleCounts self; // samples whose stack ends here
    };

    // Decodes a run of events of one producer thread (ThreadInfo::index)
    // and adds every sample it completes.
    void consume(std::uint32_t producer, const Event* events, std::size_t count) {
        streams_.feed(producer, events, count, [this](const SampleView& sample) { add(sample); });
    }

    void add(const SampleView& sample) {
        const bool running = sample.running();
        totals_.add(running);
        ++sequence_;
        const std::uint32_t t = thread_of(sample);
        Thread& thread = threads_[t];
        SampledThread& info = thread_info_[t];
        info.samples.add(running);
        if (info.samples.all() == 1) {
            info.first_timestamp = sample.timestamp;
        }
        info.last_timestamp = std::max(info.last_timestamp, sample.timestamp);

        // Consecutive samples of a thread mostly share their outer frames:
        // those reuse the previous sample's lookups.
        std::vector<PathEntry>& path = thread.path;
        std::size_t same = 0;
        while (same < path.size() && same < sample.depth && path[same].location == sample.frames[same].location &&
               path[same].line == sample.frames[same].line) {
            ++same;
        }
        path.resize(same);
        std::uint32_t node = same == 0 ? thread.root : path[same - 1].node;
        for (std::size_t i = same; i < sample.depth; ++i) {
            const SampleFrame& frame = sample.frames[i];
            PathEntry entry;
            entry.location = frame.location;
            entry.line = frame.line;
            node = child(node, frame.location, t);
            entry.node = node;
            entry.function = function_index(frame.location);
            entry.line_index = is_python(frame.location) ? line_index(frame.location, frame.line) : no_line;
            path.push_back(entry);
        }
        nodes_[node].self.add(running);

        for (const PathEntry& entry : path) {
            FunctionEntry& f = functions_[entry.function];
            if (f.seen != sequence_) {
                f.seen = sequence_;
                f.stats.total.add(running);
            }
            if (entry.line_index != no_line) {
                LineEntry& l = lines_[entry.line_index];
                if (l.seen != sequence_) {
                    l.seen = sequence_;
                    l.stats.total.add(running);
                }
            }
        }
        if (!path.empty()) {
            const PathEntry& leaf = path.back();
            functions_[leaf.function].stats.self.add(running);
            if (leaf.line_index != no_line) {
                lines_[leaf.line_index].stats.self.add(running);
            }
        }
    }

    const SampleCounts& samples() const noexcept { return totals_; }
    // Samples dropped because some of their frames were lost.
    std::uint64_t incomplete_samples() const noexcept { return streams_.incomplete(); }

    const std::vector<SampledThread>& threads() const noexcept { return thread_info_; }
    const std::vector<StackNode>& stack_nodes() const noexcept { return nodes_; }

    // Calls f(thread, frames, self) for every stack with samples; frames are
    // outermost first (empty for a sample without frames).
    template <class F>
    void for_each_stack(F&& f) const {
        std::vector<const SourceLocation*> frames;
        for (std::uint32_t i = 0; i < nodes_.size(); ++i) {
            const StackNode& node = nodes_[i];
            if (node.self.all() == 0) {
                continue;
            }
            frames.clear();
            for (std::uint32_t at = i; nodes_[at].location != nullptr; at = nodes_[at].parent) {
                frames.push_back(nodes_[at].location);
            }
            std::reverse(frames.begin(), frames.end());
            f(thread_info_[node.thread], static_cast<const std::vector<const SourceLocation*>&>(frames), node.self);
        }
    }

    std::vector<FunctionSamples> functions() const {
        std::vector<FunctionSamples> out;
        out.reserve(functions_.size());
        for (const auto& f : functions_) {
            out.push_back(f.stats);
        }
        return out;
    }
    std::vector<LineSamples> lines() const {
        std::vector<LineSamples> out;
        out.reserve(lines_.size());
        for (const auto& l : lines_) {
            out.push_back(l.stats);
        }
        return out;
    }

    Hotspots hotspots(const HotspotQuery& query = {}) const {
        Hotspots h;
        h.samples = totals_.selected(query.include_idle);
        const auto pct = [&](std::uint64_t n) {
            return h.samples == 0 ? 0.0 : 100.0 * static_cast<double>(n) / static_cast<double>(h.samples);
        };
        for (const auto& f : functions_) {
            const std::uint64_t self = f.stats.self.selected(query.include_idle);
            const std::uint64_t total = f.stats.total.selected(query.include_idle);
            if (total > 0) {
                h.functions.push_back(FunctionHotspot{f.stats.location, self, total, pct(self), pct(total)});
            }
        }
        for (const auto& l : lines_) {
            const std::uint64_t self = l.stats.self.selected(query.include_idle);
            const std::uint64_t total = l.stats.total.selected(query.include_idle);
            if (total > 0) {
                h.lines.push_back(LineHotspot{l.stats.function, l.stats.line, self, total, pct(self), pct(total)});
            }
        }
        std::sort(h.functions.begin(), h.functions.end(), [](const FunctionHotspot& a, const FunctionHotspot& b) {
            if (a.self_samples != b.self_samples) {
                return a.self_samples > b.self_samples;
            }
            if (a.total_samples != b.total_samples) {
                return a.total_samples > b.total_samples;
            }
            return location_less(a.location, 0, b.location, 0);
        });
        std::sort(h.lines.begin(), h.lines.end(), [](const LineHotspot& a, const LineHotspot& b) {
            if (a.self_samples != b.self_samples) {
                return a.self_samples > b.self_samples;
            }
            if (a.total_samples != b.total_samples) {
                return a.total_samples > b.total_samples;
            }
            return location_less(a.function, a.line, b.function, b.line);
        });
        if (query.top > 0) {
            h.functions.resize(std::min(h.functions.size(), query.top));
            h.lines.resize(std::min(h.lines.size(), query.top));
        }
        return h;
    }

    void clear() {
        streams_.clear();
        totals_ = SampleCounts{};
        sequence_ = 0;
        threads_.clear();
        thread_info_.clear();
        thread_index_.clear();
        nodes_.clear();
        children_.clear();
        functions_.clear();
        function_index_.clear();
        lines_.clear();
        line_index_.clear();
    }

private:
    static constexpr std::uint32_t no_line = 0xffffffffu;

    struct PathEntry {
        const SourceLocation* location;
        std::uint32_t line;
        std::uint32_t node;
        std::uint32_t function;
        std::uint32_t line_index;
    };
    struct Thread {
        std::uint32_t root = 0;
        const SourceLocation* name = nullptr;
        std::vector<PathEntry> path; // the previous sample's frames and their lookups
    };
    struct FunctionEntry {
        FunctionSamples stats;
        std::uint64_t seen = 0; // sequence of the last sample that counted it in total
    };
    struct LineEntry {
        LineSamples stats;
        std::uint64_t seen = 0;
    };
    struct PairHash {
        std::size_t operator()(const std::pair<std::uint64_t, std::uint64_t>& key) const noexcept {
            std::uint64_t h = key.first * 0x9e3779b97f4a7c15ull;
            h ^= key.second + 0x7f4a7c159e3779b9ull + (h << 6) + (h >> 2);
            return static_cast<std::size_t>(h ^ (h >> 29));
        }
    };
    using PairMap = std::unordered_map<std::pair<std::uint64_t, std::uint64_t>, std::uint32_t, PairHash>;

    static bool is_python(const SourceLocation* location) noexcept {
        return location != nullptr && location->kind == LocationKind::python_function;
    }

    // A total order for ties: name, file, line, then address.
    static bool location_less(const SourceLocation* a, std::uint32_t a_line, const SourceLocation* b,
                              std::uint32_t b_line) {
        const auto text = [](const char* s) { return std::string_view(s != nullptr ? s : ""); };
        const std::string_view an = a != nullptr ? text(a->display_name()) : std::string_view();
        const std::string_view bn = b != nullptr ? text(b->display_name()) : std::string_view();
        if (an != bn) {
            return an < bn;
        }
        const std::string_view af = a != nullptr ? text(a->file) : std::string_view();
        const std::string_view bf = b != nullptr ? text(b->file) : std::string_view();
        if (af != bf) {
            return af < bf;
        }
        if (a_line != b_line) {
            return a_line < b_line;
        }
        return std::less<const SourceLocation*>()(a, b);
    }

    std::uint32_t thread_of(const SampleView& sample) {
        auto found = thread_index_.find(sample.os_tid);
        if (found != thread_index_.end()) {
            SampledThread& info = thread_info_[found->second];
            // A name interned after the thread's first samples replaces "thread <tid>".
            if (sample.thread_name != nullptr && threads_[found->second].name != sample.thread_name) {
                threads_[found->second].name = sample.thread_name;
                info.name = sampled_thread_name(sample.os_tid, sample.thread_name);
            }
            return found->second;
        }
        const auto index = static_cast<std::uint32_t>(thread_info_.size());
        thread_index_.emplace(sample.os_tid, index);
        SampledThread info;
        info.os_tid = sample.os_tid;
        info.name = sampled_thread_name(sample.os_tid, sample.thread_name);
        thread_info_.push_back(std::move(info));
        Thread thread;
        thread.root = static_cast<std::uint32_t>(nodes_.size());
        thread.name = sample.thread_name;
        threads_.push_back(std::move(thread));
        StackNode root;
        root.parent = threads_.back().root;
        root.thread = index;
        nodes_.push_back(root);
        return index;
    }

    std::uint32_t child(std::uint32_t parent, const SourceLocation* location, std::uint32_t thread) {
        const auto key = std::make_pair(static_cast<std::uint64_t>(parent), location_id(location));
        auto found = children_.find(key);
        if (found != children_.end()) {
            return found->second;
        }
        const auto index = static_cast<std::uint32_t>(nodes_.size());
        StackNode node;
        node.parent = parent;
        node.thread = thread;
        node.location = location;
        nodes_.push_back(node);
        children_.emplace(key, index);
        return index;
    }

    std::uint32_t function_index(const SourceLocation* location) {
        auto found = function_index_.find(location);
        if (found != function_index_.end()) {
            return found->second;
        }
        const auto index = static_cast<std::uint32_t>(functions_.size());
        FunctionEntry entry;
        entry.stats.location = location;
        functions_.push_back(entry);
        function_index_.emplace(location, index);
        return index;
    }

    std::uint32_t line_index(const SourceLocation* function, std::uint32_t line) {
        const auto key = std::make_pair(location_id(function), static_cast<std::uint64_t>(line));
        auto found = line_index_.find(key);
        if (found != line_index_.end()) {
            return found->second;
        }
        const auto index = static_cast<std::uint32_t>(lines_.size());
        LineEntry entry;
        entry.stats.function = function;
        entry.stats.line = line;
        lines_.push_back(entry);
        line_index_.emplace(key, index);
        return index;
    }

    SampleStreams streams_;
    SampleCounts totals_;
    std::uint64_t sequence_ = 0;
    std::vector<Thread> threads_;
    std::vector<SampledThread> thread_info_;
    std::unordered_map<std::uint64_t, std::uint32_t> thread_index_;
    std::vector<StackNode> nodes_;
    PairMap children_;
    std::vector<FunctionEntry> functions_;
    std::unordered_map<const SourceLocation*, std::uint32_t> function_index_;
    std::vector<LineEntry> lines_;
    PairMap line_index_;
};

} // namespace model
} // namespace pycroscope
