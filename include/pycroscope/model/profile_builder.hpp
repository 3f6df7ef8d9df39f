#pragma once
// Builds the Profile (model/profile.hpp) from the event stream on the drain
// thread. An EventProcessor, so the Profile is complete before any sink
// closes and session.json sections can be written from it:
//
//     auto builder = std::make_shared<model::ProfileBuilder>();
//     session.core().add_processor(builder);
//     ...
//     session.stop();
//     const model::Profile& profile = builder->profile();
//
// Traced spans (py_call/c_call/py_resume/zone_begin and their ends) give
// functions, edges and the tree in nanoseconds; py_line events give lines;
// stack samples (sample + sample_frame) give the same in samples instead
// when the run has any (model::SampleProfile decodes them). Per event the
// work is a few array updates and at most two hash lookups (function and
// tree child); the state grows with distinct functions, pairs and paths,
// never with the run's length.
//
// With set_overhead(), or from an overhead bias event in the stream on,
// every timestamp is first compensated for the tracer's own cost
// (model/overhead_compensation.hpp); call counts are unchanged.

#include "pycroscope/model/sample_profile.hpp"
#include "pycroscope/core/event_processor.hpp"
#include "pycroscope/core/location_tree.hpp"
#include "pycroscope/core/span_stack.hpp"
#include "pycroscope/model/line_profile.hpp"
#include "pycroscope/model/overhead_compensation.hpp"
#include "pycroscope/model/pair_ids.hpp"
#include "pycroscope/model/profile.hpp"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pycroscope {
namespace model {

class ProfileBuilder : public EventProcessor {
public:
    std::string describe() const override { return "profile model"; }

    void open(const SessionInfo& info) override {
        std::lock_guard<std::mutex> lock(mutex_);
        reset(info);
    }

    void process(const ThreadInfo& thread, Event* events, std::size_t count) override {
        std::lock_guard<std::mutex> lock(mutex_);
        add(thread, events, count);
    }

    void close(const SessionSummary& summary) override {
        std::lock_guard<std::mutex> lock(mutex_);
        finish(summary);
    }

    // Valid after close() (the session's stop()).
    const Profile& profile() const noexcept { return profile_; }

    // The Profile's index of a live location, or no_index.
    std::uint32_t function_index(const SourceLocation* location) const {
        const auto found = function_ids_.find(location);
        return found == function_ids_.end() ? no_index : found->second;
    }

    // Also keeps each thread's call paths with their self time, recursion
    // not folded: the data of stacks.folded (sinks/folded_stack_sink.hpp),
    // for one walk of the span events instead of two. Set before the run.
    void keep_thread_paths(bool keep) noexcept { keep_paths_ = keep; }

    struct ThreadPaths {
        std::uint32_t thread = 0;           // session thread index
        const LocationTree* tree = nullptr; // the thread's paths; node 0 is the root
        std::vector<std::uint64_t> self_ns; // by node
    };
    // Valid after close() of a traced run with keep_thread_paths(true).
    const std::vector<ThreadPaths>& thread_paths() const noexcept { return thread_paths_; }

    // The tracer's cost per traced event, subtracted from every later event
    // of every thread (OverheadShift); ns_per_event 0 turns it off. Kept
    // across runs; events already fed keep their times.
    void set_overhead(const OverheadBias& bias) {
        std::lock_guard<std::mutex> lock(mutex_);
        bias_ = bias;
        rebias_threads();
    }
    const OverheadBias& overhead() const noexcept { return bias_; }
    // false: raw times, whatever bias is set or comes in the stream (still
    // read into overhead()). Set before the events.
    void compensate(bool on) noexcept { compensate_ = on; }
    // Traced events whose cost was subtracted (valid after close()).
    std::uint64_t compensated_events() const noexcept { return compensated_; }

    // Forgets everything fed so far; info gives the clock of the next run.
    void reset(const SessionInfo& info) {
        info_ = info;
        profile_ = Profile{};
        functions_.clear();
        function_ids_.clear();
        edges_.clear();
        edge_ids_.clear();
        nodes_.assign(1, TreeNode{});
        node_ids_.clear();
        threads_.clear();
        thread_paths_.clear();
        line_table_.clear();
        samples_.clear();
        max_depth_ = 0;
        last_location_ = nullptr;
        last_function_ = no_index;
        compensated_ = 0;
    }

    // Feeds a run of one thread's events (for replay and tests; process() locks and calls this).
    void add(const ThreadInfo& thread, const Event* events, std::size_t count) {
        ThreadState& state = thread_state(thread);
        for (std::size_t i = 0; i < count; ++i) {
            Event e = events[i];
            e.timestamp = state.shift.apply(e);
            switch (e.kind) {
            case EventKind::py_call:
            case EventKind::c_call:
            case EventKind::py_resume:
            case EventKind::zone_begin:
                state.last = std::max(state.last, e.timestamp);
                enter(state, e);
                state.lines.add(e, line_table_);
                break;
            case EventKind::py_return:
            case EventKind::c_return:
            case EventKind::zone_end:
                state.last = std::max(state.last, e.timestamp);
                leave(state, e.location(), e.timestamp);
                state.lines.add(e, line_table_);
                break;
            case EventKind::py_line:
                state.last = std::max(state.last, e.timestamp);
                state.lines.add(e, line_table_);
                break;
            case EventKind::sample:
            case EventKind::sample_frame: samples_.consume(thread.index, &e, 1); break;
            case EventKind::counter:
                take_overhead_counter(e);
                break;
            default: break;
            }
        }
    }

    // Closes what is still open and converts to the Profile. wall: the session's duration.
    void finish(const SessionSummary& summary) {
        profile_ = Profile{};
        thread_paths_.clear();
        profile_.wall_ns = summary.duration_ns > 0 ? static_cast<std::uint64_t>(summary.duration_ns) : 0;
        // In sampling mode the GC and import collectors still record spans:
        // the samples, not those few spans, are the run's profile.
        if (samples_.samples().all() == 0) {
            finish_traced(summary);
        } else {
            finish_sampled();
        }
    }

private:
    struct Open {
        std::uint32_t function;
        std::uint32_t node;
        std::uint32_t edge;
        std::uint32_t outer_node; // the function's innermost node before this frame (no_index: outermost)
        bool outer_edge;
        std::uint32_t path; // node in the thread's paths (keep_thread_paths)
        std::uint64_t child_ticks;
    };
    using Frame = SpanStack<Open>::Frame;

    struct Totals {
        std::uint64_t calls = 0;
        std::uint64_t resumes = 0;
        std::uint64_t self = 0;
        std::uint64_t inclusive = 0;
        std::uint64_t unclosed = 0;
    };
    struct FunctionState {
        const SourceLocation* location;
        Totals totals;
    };
    struct EdgeState {
        std::uint32_t caller;
        std::uint32_t callee;
        std::uint64_t calls = 0;
        std::uint64_t inclusive = 0;
        std::uint64_t self = 0;
    };
    struct ThreadState {
        std::uint32_t index = 0;
        std::uint64_t os_tid = 0;
        std::string name;
        std::uint64_t last = 0;  // latest timestamp seen
        std::uint64_t total = 0; // ticks of outermost spans
        SpanStack<Open> stack;
        std::vector<Totals> functions;      // by function id
        std::vector<std::uint32_t> node_of; // by function id: innermost active node, or no_index
        std::vector<std::uint32_t> edge_depth; // by edge id: activations on the stack
        LineProfile lines;
        LocationTree paths;                     // keep_thread_paths
        std::vector<std::uint64_t> path_self;   // by node of paths, in ticks
        OverheadShift shift;
    };
    // Every thread's events from here on get the current bias.
    void rebias_threads() {
        for (auto& slot : threads_) {
            if (slot) {
                slot->shift.rebias(bias_ticks());
            }
        }
    }
    double bias_ticks() const noexcept {
        const double ns_per_tick = info_.calibration.ns_per_tick;
        return compensate_ && bias_.ns_per_event > 0.0 && ns_per_tick > 0.0 ? bias_.ns_per_event / ns_per_tick : 0.0;
    }
    OverheadShift make_shift() const { return OverheadShift(bias_ticks()); }
    // The calibration's counters (model/overhead_compensation.hpp).
    void take_overhead_counter(const Event& e) {
        switch (overhead_counter_of(e)) {
        case OverheadCounter::bias:
            bias_.ns_per_event = overhead_counter_value(e);
            bias_.backend = e.location()->function != nullptr ? e.location()->function : "";
            rebias_threads();
            break;
        case OverheadCounter::untraced: bias_.untraced_ns_per_call = overhead_counter_value(e); break;
        case OverheadCounter::traced: bias_.traced_ns_per_call = overhead_counter_value(e); break;
        case OverheadCounter::none: break;
        }
    }
    ThreadState& thread_state(const ThreadInfo& thread) {
        if (thread.index >= threads_.size()) {
            threads_.resize(thread.index + 1);
        }
        auto& slot = threads_[thread.index];
        if (!slot) {
            slot = std::make_unique<ThreadState>();
            slot->index = thread.index;
            slot->shift = make_shift();
        }
        slot->os_tid = thread.os_tid;
        slot->name = thread.name;
        return *slot;
    }

    std::uint32_t function_id(const SourceLocation* location) {
        if (location == last_location_ && last_function_ != no_index) {
            return last_function_;
        }
        auto found = function_ids_.find(location);
        std::uint32_t id;
        if (found != function_ids_.end()) {
            id = found->second;
        } else {
            id = static_cast<std::uint32_t>(functions_.size());
            functions_.push_back(FunctionState{location, Totals{}});
            function_ids_.emplace(location, id);
        }
        last_location_ = location;
        last_function_ = id;
        return id;
    }

    std::uint32_t edge_id(std::uint32_t caller, std::uint32_t callee) {
        const std::uint32_t found = edge_ids_.find(caller, callee);
        if (found != PairIds::none) {
            return found;
        }
        const auto id = static_cast<std::uint32_t>(edges_.size());
        edges_.push_back(EdgeState{caller, callee});
        edge_ids_.add(caller, callee, id);
        return id;
    }

    std::uint32_t tree_child(std::uint32_t parent, std::uint32_t function) {
        const std::uint32_t found = node_ids_.find(parent, function);
        if (found != PairIds::none) {
            return found;
        }
        const auto id = static_cast<std::uint32_t>(nodes_.size());
        TreeNode node;
        node.function = function;
        node.parent = parent;
        nodes_.push_back(node);
        node_ids_.add(parent, function, id);
        return id;
    }

    void enter(ThreadState& state, const Event& e) {
        const std::uint32_t f = function_id(e.location());
        if (f >= state.functions.size()) {
            const std::size_t size = std::max<std::size_t>(functions_.size(), 2 * state.functions.size());
            state.functions.resize(size);
            state.node_of.resize(size, no_index);
        }
        const bool counted = (e.flags & event_flags::synthetic) == 0;
        const bool resume = e.kind == EventKind::py_resume;
        const std::uint64_t call = counted && !resume ? 1 : 0;
        const Open* parent = state.stack.empty() ? nullptr : &state.stack.top().payload;

        const std::uint32_t outer = state.node_of[f];
        const std::uint32_t node = outer != no_index ? outer : tree_child(parent != nullptr ? parent->node : 0, f);
        std::uint32_t edge = no_index;
        bool outer_edge = false;
        if (parent != nullptr) {
            edge = edge_id(parent->function, f);
            if (edge >= state.edge_depth.size()) {
                state.edge_depth.resize(std::max<std::size_t>(edges_.size(), 2 * state.edge_depth.size()), 0);
            }
            outer_edge = state.edge_depth[edge]++ == 0;
            edges_[edge].calls += call;
        }
        Totals& totals = state.functions[f];
        totals.calls += call;
        totals.resumes += counted && resume ? 1 : 0;
        nodes_[node].calls += call;
        state.node_of[f] = node;
        const std::uint32_t path =
            keep_paths_ ? state.paths.child(parent != nullptr ? parent->path : LocationTree::root, e.location())
                        : LocationTree::root;
        state.stack.push(e.location(), e.timestamp, Open{f, node, edge, outer, outer_edge, path, 0});
        max_depth_ = std::max<std::uint64_t>(max_depth_, state.stack.depth());
    }

    void leave(ThreadState& state, const SourceLocation* location, std::uint64_t timestamp) {
        state.stack.pop(location, timestamp, [&](const Frame& frame, std::uint64_t end) { close(state, frame, end); });
    }

    void close(ThreadState& state, const Frame& frame, std::uint64_t end) {
        const Open& open = frame.payload;
        const std::uint64_t duration = end > frame.begin ? end - frame.begin : 0;
        const std::uint64_t self = duration > open.child_ticks ? duration - open.child_ticks : 0;
        const bool outermost = open.outer_node == no_index;
        Totals& totals = state.functions[open.function];
        totals.self += self;
        totals.inclusive += outermost ? duration : 0;
        state.node_of[open.function] = open.outer_node;
        if (keep_paths_) {
            if (open.path >= state.path_self.size()) {
                state.path_self.resize(std::max<std::size_t>(state.paths.size(), 2 * state.path_self.size()), 0);
            }
            state.path_self[open.path] += self;
        }
        TreeNode& node = nodes_[open.node];
        node.self += self;
        node.inclusive += outermost ? duration : 0;
        if (open.edge != no_index) {
            EdgeState& edge = edges_[open.edge];
            edge.self += self;
            edge.inclusive += open.outer_edge ? duration : 0;
            --state.edge_depth[open.edge];
        }
        if (!state.stack.empty()) {
            state.stack.top().payload.child_ticks += duration;
        } else {
            state.total += duration;
        }
    }

    std::uint64_t ns(std::uint64_t ticks) const {
        return static_cast<std::uint64_t>(info_.ticks_to_ns(ticks) + 0.5);
    }

    Function make_function(const SourceLocation* location) const {
        Function f;
        f.location = location;
        if (location != nullptr) {
            const char* name = location->display_name();
            f.name = name != nullptr ? name : "";
            f.file = location->file != nullptr ? location->file : "";
            f.line = location->line;
            f.kind = location->kind;
        }
        return f;
    }

    void finish_traced(const SessionSummary& summary) {
        profile_.unit = Unit::nanoseconds;
        for (auto& slot : threads_) {
            if (!slot) {
                continue;
            }
            ThreadState& state = *slot;
            // A thread still in a call at stop: its spans end at its last event.
            while (!state.stack.empty()) {
                ++state.functions[state.stack.top().payload.function].unclosed;
                ++profile_.unclosed_spans;
                const Frame top = state.stack.top();
                leave(state, top.location, state.last);
            }
            state.lines.finish(state.last, line_table_);
            compensated_ += state.shift.subtracted_events();
            profile_.unmatched_ends += state.stack.unmatched_ends();
        }
        (void)summary;
        profile_.max_depth = max_depth_;
        for (const auto& fs : functions_) {
            profile_.functions.push_back(make_function(fs.location));
        }
        for (const auto& slot : threads_) {
            if (!slot) {
                continue;
            }
            const ThreadState& state = *slot;
            const auto t = static_cast<std::uint32_t>(profile_.threads.size());
            profile_.threads.push_back(Thread{state.index, state.os_tid, state.name, ns(state.total)});
            profile_.total += ns(state.total);
            for (std::uint32_t f = 0; f < state.functions.size() && f < functions_.size(); ++f) {
                const Totals& totals = state.functions[f];
                if (totals.calls == 0 && totals.resumes == 0 && totals.self == 0 && totals.inclusive == 0 &&
                    totals.unclosed == 0) {
                    continue;
                }
                Function& out = profile_.functions[f];
                out.calls += totals.calls;
                out.resumes += totals.resumes;
                out.self += ns(totals.self);
                out.inclusive += ns(totals.inclusive);
                out.unclosed += totals.unclosed;
                out.threads.push_back(ThreadShare{t, totals.calls, ns(totals.self), ns(totals.inclusive)});
            }
        }
        for (const auto& e : edges_) {
            profile_.edges.push_back(Edge{e.caller, e.callee, e.calls, ns(e.inclusive), ns(e.self)});
        }
        std::sort(profile_.edges.begin(), profile_.edges.end(), [](const Edge& a, const Edge& b) {
            return a.caller != b.caller ? a.caller < b.caller : a.callee < b.callee;
        });
        profile_.tree = nodes_;
        for (auto& node : profile_.tree) {
            node.self = ns(node.self);
            node.inclusive = ns(node.inclusive);
        }
        if (!profile_.tree.empty()) {
            profile_.tree[0].inclusive = profile_.total;
        }
        thread_paths_.clear();
        if (keep_paths_) {
            for (const auto& slot : threads_) {
                if (slot) {
                    ThreadPaths paths;
                    paths.thread = slot->index;
                    paths.tree = &slot->paths;
                    paths.self_ns.reserve(slot->path_self.size());
                    for (const std::uint64_t ticks : slot->path_self) {
                        paths.self_ns.push_back(ns(ticks));
                    }
                    thread_paths_.push_back(std::move(paths));
                }
            }
        }
        for (const auto& entry : line_table_) {
            Line line;
            line.file = entry.first.function != nullptr && entry.first.function->file != nullptr
                            ? entry.first.function->file
                            : "";
            line.line = entry.first.line;
            line.function = function_id_for_line(entry.first.function);
            line.hits = entry.second.hits;
            line.time = ns(entry.second.ticks);
            line.total = line.time;
            profile_.lines.push_back(std::move(line));
        }
        sort_lines();
    }

    // Lines name their function's location; one never entered gets a function entry of its own.
    std::uint32_t function_id_for_line(const SourceLocation* location) {
        const auto found = function_ids_.find(location);
        if (found != function_ids_.end()) {
            return found->second;
        }
        const auto id = static_cast<std::uint32_t>(profile_.functions.size());
        profile_.functions.push_back(make_function(location));
        function_ids_.emplace(location, id);
        functions_.push_back(FunctionState{location, Totals{}});
        return id;
    }

    void sort_lines() {
        std::sort(profile_.lines.begin(), profile_.lines.end(), [this](const Line& a, const Line& b) {
            if (a.file != b.file) {
                return a.file < b.file;
            }
            if (a.line != b.line) {
                return a.line < b.line;
            }
            return profile_.functions[a.function].name < profile_.functions[b.function].name;
        });
    }

    // Sampling: every stack adds its samples to each function on it once
    // (inclusive), to its leaf (self), to each caller -> callee pair once,
    // and to the folded tree path.
    void finish_sampled() {
        profile_.unit = Unit::samples;
        profile_.total = samples_.samples().all();
        // Spans recorded beside the samples are not part of a sampled profile.
        functions_.clear();
        function_ids_.clear();
        edges_.clear();
        edge_ids_.clear();
        last_location_ = nullptr;
        last_function_ = no_index;
        nodes_.assign(1, TreeNode{});
        node_ids_.clear();
        for (const auto& t : samples_.threads()) {
            profile_.threads.push_back(Thread{static_cast<std::uint32_t>(profile_.threads.size()), t.os_tid, t.name,
                                              t.samples.all()});
        }
        std::vector<std::uint64_t> seen_function, seen_edge;
        std::vector<std::uint32_t> path_nodes;
        std::uint64_t sequence = 0;
        std::vector<std::vector<Totals>> per_thread(profile_.threads.size());
        samples_.for_each_stack([&](const model::SampledThread& thread,
                                    const std::vector<const SourceLocation*>& frames,
                                    const model::SampleCounts& counts) {
            const std::uint64_t weight = counts.all();
            ++sequence;
            std::uint32_t t = 0;
            while (t < profile_.threads.size() && profile_.threads[t].os_tid != thread.os_tid) {
                ++t;
            }
            std::vector<Totals>& thread_totals = per_thread[t];
            std::uint32_t node = 0;
            std::uint32_t previous = no_index;
            path_nodes.clear();
            max_depth_ = std::max<std::uint64_t>(max_depth_, frames.size());
            for (std::size_t i = 0; i < frames.size(); ++i) {
                const std::uint32_t f = function_id(frames[i]);
                if (f >= seen_function.size()) {
                    seen_function.resize(functions_.size(), 0);
                }
                if (f >= thread_totals.size()) {
                    thread_totals.resize(functions_.size());
                }
                const bool leaf = i + 1 == frames.size();
                const bool first = seen_function[f] != sequence;
                seen_function[f] = sequence;
                Totals& totals = functions_[f].totals;
                totals.inclusive += first ? weight : 0;
                totals.self += leaf ? weight : 0;
                thread_totals[f].inclusive += first ? weight : 0;
                thread_totals[f].self += leaf ? weight : 0;
                if (previous != no_index) {
                    const std::uint32_t e = edge_id(previous, f);
                    if (e >= seen_edge.size()) {
                        seen_edge.resize(edges_.size(), 0);
                    }
                    edges_[e].inclusive += seen_edge[e] != sequence ? weight : 0;
                    edges_[e].self += leaf ? weight : 0;
                    seen_edge[e] = sequence;
                }
                // Fold: a function already on the path re-enters its node.
                std::uint32_t folded = no_index;
                for (const std::uint32_t n : path_nodes) {
                    if (nodes_[n].function == f) {
                        folded = n;
                        break;
                    }
                }
                node = folded != no_index ? folded : tree_child(node, f);
                if (folded == no_index) {
                    nodes_[node].inclusive += weight;
                    path_nodes.push_back(node);
                }
                nodes_[node].self += leaf ? weight : 0;
                previous = f;
            }
        });
        profile_.max_depth = max_depth_;
        for (const auto& fs : functions_) {
            Function f = make_function(fs.location);
            f.self = fs.totals.self;
            f.inclusive = fs.totals.inclusive;
            profile_.functions.push_back(std::move(f));
        }
        for (std::uint32_t t = 0; t < per_thread.size(); ++t) {
            for (std::uint32_t f = 0; f < per_thread[t].size(); ++f) {
                if (per_thread[t][f].inclusive > 0) {
                    profile_.functions[f].threads.push_back(
                        ThreadShare{t, 0, per_thread[t][f].self, per_thread[t][f].inclusive});
                }
            }
        }
        for (const auto& e : edges_) {
            profile_.edges.push_back(Edge{e.caller, e.callee, 0, e.inclusive, e.self});
        }
        std::sort(profile_.edges.begin(), profile_.edges.end(), [](const Edge& a, const Edge& b) {
            return a.caller != b.caller ? a.caller < b.caller : a.callee < b.callee;
        });
        nodes_[0].inclusive = profile_.total;
        profile_.tree = nodes_;
        for (const auto& l : samples_.lines()) {
            Line line;
            line.file = l.function != nullptr && l.function->file != nullptr ? l.function->file : "";
            line.line = l.line;
            line.function = function_id_for_line(l.function);
            line.time = l.self.all();
            line.total = l.total.all();
            profile_.lines.push_back(std::move(line));
        }
        sort_lines();
    }

    std::mutex mutex_;
    SessionInfo info_;
    Profile profile_;
    std::vector<FunctionState> functions_;
    std::unordered_map<const SourceLocation*, std::uint32_t> function_ids_;
    std::vector<EdgeState> edges_;
    PairIds edge_ids_; // (caller, callee) -> edges_
    // Sized, not brace-initialised: g++ 12 -O3 warns (maybe-uninitialized) on
    // copying from the initializer_list temporary.
    std::vector<TreeNode> nodes_ = std::vector<TreeNode>(1); // node 0: the root
    PairIds node_ids_; // (parent node, function) -> nodes_
    std::vector<std::unique_ptr<ThreadState>> threads_;
    LineTable line_table_;
    model::SampleProfile samples_;
    std::uint64_t max_depth_ = 0;
    bool keep_paths_ = false;
    std::vector<ThreadPaths> thread_paths_;
    const SourceLocation* last_location_ = nullptr;
    std::uint32_t last_function_ = no_index;
    OverheadBias bias_;
    std::uint64_t compensated_ = 0;
    bool compensate_ = true;
};

} // namespace model
} // namespace pycroscope
