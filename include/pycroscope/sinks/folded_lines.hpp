#pragma once
// Folded-stack lines ("a;b;c 1234") written as a stream, whatever the depth.
//
// FoldedPath is the stack of one line, pushed and popped frame by frame while
// a tree is walked, and rendered bounded: a run of at least fold_runs_from
// identical frames is written once as "f [xN]" (deep recursion), and a line
// keeps at most max_frames frames: the outermost half, "[truncated N frames]",
// the innermost half. So a line costs O(max_frames), not O(depth), and a
// recursion of depth D writes D short lines instead of D lines of length D.
//
// write_folded_stream() never holds the file: a generator is run twice, once
// to sum the weights of equal lines by a 128-bit hash of their text (equal
// lines come from frames with the same name), once to write each distinct
// line, with its total, where it first appears.

#include "pycroscope/sinks/atomic_file.hpp"
#include "pycroscope/sinks/json_writer.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pycroscope {
namespace sinks {

struct FoldingOptions {
    std::size_t fold_runs_from = 16; // runs of this many identical frames or more become "f [xN]"; 0: never
    std::size_t max_frames = 512;    // frames per line after folding (at least 2); deeper lines are cut in the middle
};

// Frame names must not contain the separators of the format.
inline void append_folded_frame(std::string& out, std::string_view name) {
    for (const char c : name) {
        out += (c == ';' ? ':' : (c == '\n' || c == '\r') ? ' ' : c);
    }
}

class FoldedPath {
public:
    explicit FoldedPath(FoldingOptions options = {}) : options_(options) {
        if (options_.max_frames < 2) {
            options_.max_frames = 2;
        }
    }

    void clear() noexcept {
        runs_.clear();
        depth_ = 0;
        rendered_ = 0;
    }

    // name must stay valid while it is on the path (interned names are).
    void push(std::string_view name) {
        if (!runs_.empty() && runs_.back().name == name) {
            rendered_ -= rendered(runs_.back().count);
            ++runs_.back().count;
        } else {
            runs_.push_back(Run{name, 1});
        }
        rendered_ += rendered(runs_.back().count);
        ++depth_;
    }

    void pop() noexcept {
        if (runs_.empty()) {
            return;
        }
        rendered_ -= rendered(runs_.back().count);
        if (--runs_.back().count == 0) {
            runs_.pop_back();
        } else {
            rendered_ += rendered(runs_.back().count);
        }
        --depth_;
    }

    std::size_t depth() const noexcept { return depth_; }

    // Appends the frames to out, each preceded by ';' unless out is empty
    // and no separator is wanted (leading_separator false and nothing yet).
    void render(std::string& out, bool leading_separator) const {
        bool first = !leading_separator;
        auto frame = [&](std::string_view name, std::uint64_t count) {
            if (!first) {
                out += ';';
            }
            first = false;
            append_folded_frame(out, name);
            if (count > 1) {
                out += " [x";
                append_unsigned(out, count);
                out += ']';
            }
        };
        if (rendered_ <= options_.max_frames) {
            for (const Run& run : runs_) {
                emit_run(run, 0, rendered(run.count), frame);
            }
            return;
        }
        const std::size_t head = options_.max_frames / 2;
        const std::size_t tail = options_.max_frames - head;
        std::size_t shown_depth = 0; // original frames written
        // Outermost `head` rendered frames.
        std::size_t taken = 0;
        std::size_t r = 0;
        for (; r < runs_.size() && taken < head; ++r) {
            const std::size_t n = rendered(runs_[r].count);
            const std::size_t use = std::min(n, head - taken);
            emit_run(runs_[r], 0, use, frame);
            shown_depth += frames_of(runs_[r], use);
            taken += use;
        }
        // Innermost `tail` rendered frames: find where they start.
        std::size_t back = runs_.size();
        std::size_t skip_in_first = 0; // rendered frames of runs_[back] left out
        std::size_t need = tail;
        while (back > 0 && need > 0) {
            const std::size_t n = rendered(runs_[back - 1].count);
            --back;
            if (n >= need) {
                skip_in_first = n - need;
                need = 0;
            } else {
                need -= n;
            }
        }
        std::size_t tail_depth = 0;
        for (std::size_t i = back; i < runs_.size(); ++i) {
            const std::size_t n = rendered(runs_[i].count);
            const std::size_t from = i == back ? skip_in_first : 0;
            tail_depth += frames_of(runs_[i], n - from);
        }
        const std::uint64_t hidden = depth_ - shown_depth - tail_depth;
        if (!first) {
            out += ';';
        }
        first = false;
        out += "[truncated ";
        append_unsigned(out, hidden);
        out += " frames]";
        for (std::size_t i = back; i < runs_.size(); ++i) {
            emit_run(runs_[i], i == back ? skip_in_first : 0, rendered(runs_[i].count), frame);
        }
    }

private:
    struct Run {
        std::string_view name;
        std::uint64_t count;
    };

    bool folds(std::uint64_t count) const noexcept {
        return options_.fold_runs_from > 0 && count >= options_.fold_runs_from;
    }
    // Frames a run takes on the line.
    std::size_t rendered(std::uint64_t count) const noexcept {
        return folds(count) ? 1 : static_cast<std::size_t>(count);
    }
    // Original frames behind `n` rendered frames of a run.
    std::uint64_t frames_of(const Run& run, std::size_t n) const noexcept {
        return folds(run.count) ? (n > 0 ? run.count : 0) : n;
    }
    // Rendered frames [from, to) of a run.
    template <class Frame>
    void emit_run(const Run& run, std::size_t from, std::size_t to, Frame& frame) const {
        if (folds(run.count)) {
            if (from == 0 && to > 0) {
                frame(run.name, run.count);
            }
            return;
        }
        for (std::size_t i = from; i < to; ++i) {
            frame(run.name, 1);
        }
    }

    FoldingOptions options_;
    std::vector<Run> runs_;
    std::uint64_t depth_ = 0;
    std::size_t rendered_ = 0;
};

namespace detail {

struct LineHash {
    std::uint64_t a;
    std::uint64_t b;
    bool operator==(const LineHash& other) const noexcept { return a == other.a && b == other.b; }
};
struct LineHashHash {
    std::size_t operator()(const LineHash& h) const noexcept { return static_cast<std::size_t>(h.a ^ (h.b >> 1)); }
};

inline LineHash hash_line(std::string_view text) noexcept {
    std::uint64_t a = 1469598103934665603ull;
    std::uint64_t b = 0x9E3779B97F4A7C15ull ^ text.size();
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        a = (a ^ byte) * 1099511628211ull;
        b = (b + byte + 1) * 0xC2B2AE3D27D4EB4Full;
        b ^= b >> 29;
    }
    return LineHash{a, b};
}

} // namespace detail

// generate(emit) calls emit(line, weight) for every stack, in the order the
// file should have; it runs twice and must emit the same lines both times.
// Lines of zero total weight are left out. Commits the file.
template <class Generate>
void write_folded_stream(AtomicFile& file, Generate&& generate) {
    std::unordered_map<detail::LineHash, std::uint64_t, detail::LineHashHash> totals;
    generate([&](std::string_view line, std::uint64_t weight) {
        if (weight > 0) {
            totals[detail::hash_line(line)] += weight;
        }
    });
    std::string out;
    generate([&](std::string_view line, std::uint64_t weight) {
        if (weight == 0) {
            return;
        }
        const auto found = totals.find(detail::hash_line(line));
        if (found == totals.end() || found->second == 0) {
            return; // written where it first appeared
        }
        out.append(line.data(), line.size());
        out += ' ';
        append_unsigned(out, found->second);
        out += '\n';
        found->second = 0;
        if (out.size() > (1u << 16)) {
            file.write(out);
            out.clear();
        }
    });
    file.write(out);
    file.commit();
}

} // namespace sinks
} // namespace pycroscope
