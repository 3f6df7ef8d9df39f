#pragma once
// Per-line hits and time from py_line events, as line_profiler reports them:
// a line's time runs from its line event to the next line event of the same
// frame, or to the frame's return, and so includes the calls it makes.

#include "pycroscope/core/event.hpp"
#include "pycroscope/core/source_location.hpp"

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace pycroscope {
namespace model {

struct LineKey {
    const SourceLocation* function;
    std::uint32_t line;
    bool operator==(const LineKey& other) const noexcept {
        return function == other.function && line == other.line;
    }
};

struct LineKeyHash {
    std::size_t operator()(const LineKey& key) const noexcept {
        return std::hash<const void*>()(key.function) ^ (static_cast<std::size_t>(key.line) * 0x9e3779b97f4a7c15ull);
    }
};

struct LineTotals {
    std::uint64_t hits = 0;
    std::uint64_t ticks = 0;
};

using LineTable = std::unordered_map<LineKey, LineTotals, LineKeyHash>;

// One thread's line timing. Feed every event of the thread in order.
class LineProfile {
public:
    void add(const Event& event, LineTable& table) {
        if (!lines_seen_) {
            // No line event yet on this thread (a run without lines): only
            // the depth matters, so the calls and returns cost a counter.
            if (opens_span(event.kind)) {
                ++blank_depth_;
            } else if (closes_span(event.kind)) {
                blank_depth_ -= blank_depth_ > 0 ? 1 : 0;
            } else if (event.kind == EventKind::py_line) {
                lines_seen_ = true;
                open_.assign(blank_depth_, Pending{nullptr, 0, 0});
                add(event, table);
            }
            return;
        }
        if (opens_span(event.kind)) {
            open_.push_back(Pending{nullptr, 0, 0});
        } else if (closes_span(event.kind)) {
            if (!open_.empty()) {
                settle(open_.back(), event.timestamp, table);
                open_.pop_back();
            }
        } else if (event.kind == EventKind::py_line) {
            if (open_.empty()) {
                open_.push_back(Pending{nullptr, 0, 0}); // line of a frame entered before recording
            }
            Pending& current = open_.back();
            settle(current, event.timestamp, table);
            current = Pending{event.location(), static_cast<std::uint32_t>(event.payload), event.timestamp};
            table[LineKey{current.function, current.line}].hits += 1;
        }
    }

    // Lines still running at stop are timed up to then.
    void finish(std::uint64_t timestamp, LineTable& table) {
        for (auto& pending : open_) {
            settle(pending, timestamp, table);
        }
        open_.clear();
        blank_depth_ = 0;
    }

private:
    struct Pending {
        const SourceLocation* function;
        std::uint32_t line;
        std::uint64_t since;
    };

    static void settle(Pending& pending, std::uint64_t now, LineTable& table) {
        if (pending.function != nullptr && now >= pending.since) {
            table[LineKey{pending.function, pending.line}].ticks += now - pending.since;
        }
        pending.function = nullptr;
    }

    std::vector<Pending> open_;
    std::size_t blank_depth_ = 0; // open spans before the first line event
    bool lines_seen_ = false;
};

} // namespace model
} // namespace pycroscope
