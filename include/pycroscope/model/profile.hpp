#pragma once
// The Profile: one aggregate of a run that every later pass reads (hotspots,
// reports, compare, exporters) instead of raw events. Built on the drain
// thread by model::ProfileBuilder, or read back from session.json by
// model::load_profile(). Plain data: names are copied, so a Profile outlives
// the interpreter and the session.
//
//   functions  every span kind (Python and C functions, native and dynamic
//              zones, GC collections, imports): calls, resumes, self and
//              inclusive weight, and the per-thread split
//   edges      caller -> callee pairs with calls, inclusive and self weight
//   tree       the calling-context tree, recursion folded (see below)
//   lines      per-line hits and time (line mode) or samples (sampling mode)
//
// Weights are nanoseconds for a traced run and samples for a sampled one
// (unit). Inclusive weight is never double-counted under recursion: only the
// outermost activation of a function (or of a caller -> callee pair) adds it.
//
// The tree folds recursion: a call to a function already on the thread's
// path re-enters that ancestor's node instead of growing the tree, so its
// size is bounded by the distinct recursion-free paths of the program, not
// by the run's length or depth (a 50,000-deep recursion is one node).

#include "pycroscope/core/source_location.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace pycroscope {
namespace model {

constexpr std::uint32_t no_index = 0xffffffffu;

enum class Unit : std::uint8_t {
    nanoseconds = 0, // traced: span durations
    samples = 1,     // sampled: stack samples (wall-clock view, idle included)
};

inline const char* to_string(Unit unit) noexcept { return unit == Unit::samples ? "samples" : "ns"; }


// A thread's share of one function.
struct ThreadShare {
    std::uint32_t thread = 0; // index into Profile::threads
    std::uint64_t calls = 0;
    std::uint64_t self = 0;
    std::uint64_t inclusive = 0;
    bool operator==(const ThreadShare& o) const noexcept {
        return thread == o.thread && calls == o.calls && self == o.self && inclusive == o.inclusive;
    }
};

struct Function {
    std::string name;
    std::string file;
    std::uint32_t line = 0;
    LocationKind kind = LocationKind::other;
    std::uint64_t calls = 0;   // fresh entries (0 in a sampled profile)
    std::uint64_t resumes = 0; // generator and coroutine re-entries
    std::uint64_t self = 0;
    std::uint64_t inclusive = 0;
    std::uint64_t unclosed = 0; // spans still open at stop, closed at their thread's last event
    std::vector<ThreadShare> threads; // by thread index
    // The live location when built from events; null when loaded from a file.
    const SourceLocation* location = nullptr;

    bool operator==(const Function& o) const {
        return name == o.name && file == o.file && line == o.line && kind == o.kind && calls == o.calls &&
               resumes == o.resumes && self == o.self && inclusive == o.inclusive && unclosed == o.unclosed &&
               threads == o.threads;
    }
};

// Calls from caller to callee. inclusive: the callee's time under this
// caller (outermost activation of the pair only); self: the callee's self
// time under this caller.
struct Edge {
    std::uint32_t caller = no_index; // index into Profile::functions
    std::uint32_t callee = no_index;
    std::uint64_t calls = 0;
    std::uint64_t inclusive = 0;
    std::uint64_t self = 0;
    bool operator==(const Edge& o) const noexcept {
        return caller == o.caller && callee == o.callee && calls == o.calls && inclusive == o.inclusive &&
               self == o.self;
    }
};

// A node of the calling-context tree. Node 0 is the root (function
// no_index); a parent's index is always lower than its children's.
struct TreeNode {
    std::uint32_t function = no_index;
    std::uint32_t parent = no_index;
    std::uint64_t calls = 0; // includes folded recursive calls
    std::uint64_t self = 0;
    std::uint64_t inclusive = 0; // outermost activations only
    bool operator==(const TreeNode& o) const noexcept {
        return function == o.function && parent == o.parent && calls == o.calls && self == o.self &&
               inclusive == o.inclusive;
    }
};

// One source line. Traced (line mode): hits and time from the line's event
// to the frame's next line event or return (calls included, as
// line_profiler counts). Sampled: time = samples whose innermost frame was
// on the line, total = samples with the line anywhere on the stack.
struct Line {
    std::string file;
    std::uint32_t line = 0;
    std::uint32_t function = no_index; // index into Profile::functions
    std::uint64_t hits = 0;
    std::uint64_t time = 0;
    std::uint64_t total = 0;
    bool operator==(const Line& o) const {
        return file == o.file && line == o.line && function == o.function && hits == o.hits && time == o.time &&
               total == o.total;
    }
};

struct Thread {
    std::uint32_t index = 0; // session index (traced) or order of first sample (sampled)
    std::uint64_t os_tid = 0;
    std::string name;
    std::uint64_t total = 0; // weight of its outermost spans (or its samples)
    bool operator==(const Thread& o) const {
        return index == o.index && os_tid == o.os_tid && name == o.name && total == o.total;
    }
};

struct Profile {
    static constexpr int schema_version = 1;

    Unit unit = Unit::nanoseconds;
    std::uint64_t wall_ns = 0; // the session's duration
    // The denominator of every share: the weight of all outermost spans of
    // all threads (the sum of every function's self), or all samples.
    std::uint64_t total = 0;
    std::uint64_t unclosed_spans = 0; // spans closed at their thread's last event
    std::uint64_t unmatched_ends = 0; // ends whose begin was lost
    std::uint64_t max_depth = 0;      // deepest span stack seen
    std::uint64_t tree_pruned = 0;    // tree nodes left out when written (see profile_json.hpp)
    std::vector<Thread> threads;
    std::vector<Function> functions;
    std::vector<Edge> edges; // ordered by caller, then callee
    std::vector<TreeNode> tree;
    std::vector<Line> lines; // ordered by file, line, function

    // Indexes into edges of the calls into / out of function f.
    std::vector<std::uint32_t> callers_of(std::uint32_t f) const {
        std::vector<std::uint32_t> out;
        for (std::uint32_t i = 0; i < edges.size(); ++i) {
            if (edges[i].callee == f) {
                out.push_back(i);
            }
        }
        return out;
    }
    std::vector<std::uint32_t> callees_of(std::uint32_t f) const {
        std::vector<std::uint32_t> out;
        for (std::uint32_t i = 0; i < edges.size(); ++i) {
            if (edges[i].caller == f) {
                out.push_back(i);
            }
        }
        return out;
    }
    // The first function with this name (and file, when not empty), or no_index.
    std::uint32_t find(const std::string& name, const std::string& file = {}) const {
        for (std::uint32_t i = 0; i < functions.size(); ++i) {
            if (functions[i].name == name && (file.empty() || functions[i].file == file)) {
                return i;
            }
        }
        return no_index;
    }
    const Edge* edge(std::uint32_t caller, std::uint32_t callee) const {
        for (const Edge& e : edges) {
            if (e.caller == caller && e.callee == callee) {
                return &e;
            }
        }
        return nullptr;
    }
};

} // namespace model
} // namespace pycroscope
