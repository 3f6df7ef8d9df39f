#pragma once
// Rebuilds nesting from a thread's begin/end events. Robust to what lossy
// overflow policies leave behind: an end whose begin was lost is counted and
// ignored, and frames whose end was lost are closed when an outer frame ends.

#include "pycroscope/core/source_location.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace pycroscope {

template <class Payload>
class SpanStack {
public:
    struct Frame {
        const SourceLocation* location;
        std::uint64_t begin;
        Payload payload;
    };

    void push(const SourceLocation* location, std::uint64_t begin, Payload payload) {
        frames_.push_back(Frame{location, begin, payload});
    }

    // Closes the innermost open frame of location at end, and any frame open
    // above it. on_close(frame, end) runs after each frame leaves the stack.
    template <class OnClose>
    bool pop(const SourceLocation* location, std::uint64_t end, OnClose&& on_close) {
        std::size_t match = frames_.size();
        while (match > 0 && frames_[match - 1].location != location) {
            --match;
        }
        if (match == 0) {
            ++unmatched_ends_;
            return false;
        }
        while (frames_.size() >= match) {
            const Frame frame = frames_.back();
            frames_.pop_back();
            on_close(frame, end);
        }
        return true;
    }

    // Closes every open frame at end (session stop).
    template <class OnClose>
    void close_all(std::uint64_t end, OnClose&& on_close) {
        while (!frames_.empty()) {
            const Frame frame = frames_.back();
            frames_.pop_back();
            on_close(frame, end);
        }
    }

    bool empty() const noexcept { return frames_.empty(); }
    std::size_t depth() const noexcept { return frames_.size(); }
    Frame& top() noexcept { return frames_.back(); }
    const std::vector<Frame>& frames() const noexcept { return frames_; }
    std::uint64_t unmatched_ends() const noexcept { return unmatched_ends_; }

private:
    std::vector<Frame> frames_;
    std::uint64_t unmatched_ends_ = 0;
};

} // namespace pycroscope
