#pragma once
// The drain-side model of `--complexity FUNC`: the duration of every call of
// the watched function (py_call flagged event_flags::watched, payload = the
// size of its first sized argument) to its py_return, grouped by size.
// Recursive calls each count, with their own size. Needs no Python: it reads
// only events, live or replayed from a capture.
//
// Per size it keeps the fastest call (noise only ever adds time) and the
// count. Sizes above 256 share one of 32 bins per octave, so the memory
// stays bounded whatever the run: the bin's size is the mean of its calls'.

#include "pycroscope/core/event.hpp"
#include "pycroscope/core/event_processor.hpp"
#include "pycroscope/core/session_info.hpp"
#include "pycroscope/core/thread_info.hpp"
#include "pycroscope/sinks/per_thread_state.hpp"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace pycroscope {
namespace model {

class CallSizeModel : public EventProcessor {
public:
    // A py_call payload without a size (python::no_argument_size).
    static constexpr std::uint64_t unsized = ~std::uint64_t{0};

    struct SizeBin {
        std::uint64_t calls = 0;
        double size_sum = 0;
        std::uint64_t min_ticks = std::numeric_limits<std::uint64_t>::max();
        double size() const noexcept { return calls > 0 ? size_sum / static_cast<double>(calls) : 0; }
    };

    std::string describe() const override { return "call size model"; }

    void open(const SessionInfo&) override {
        std::lock_guard<std::mutex> lock(mutex_);
        bins_.clear();
        threads_.clear();
        calls_ = 0;
        unsized_calls_ = 0;
    }
    void close(const SessionSummary&) override {}

    void process(const ThreadInfo& thread, Event* events, std::size_t count) override {
        std::lock_guard<std::mutex> lock(mutex_);
        add(thread.index, events, count);
    }

    // Feeds one thread's events (replay and tests).
    void add(std::uint32_t thread, const Event* events, std::size_t count) {
        ThreadState& state = threads_[thread];
        for (std::size_t i = 0; i < count; ++i) {
            const Event& e = events[i];
            if (e.kind == EventKind::py_call || e.kind == EventKind::py_resume) {
                ++state.depth;
                if (e.kind == EventKind::py_call && (e.flags & event_flags::watched) != 0) {
                    ++calls_;
                    if (e.payload == unsized) {
                        ++unsized_calls_;
                    } else {
                        state.open.push_back(Open{state.depth, e.timestamp, e.payload});
                    }
                }
            } else if (e.kind == EventKind::py_return) {
                if (!state.open.empty() && state.open.back().depth == state.depth) {
                    const Open& call = state.open.back();
                    record(call.size, e.timestamp > call.start ? e.timestamp - call.start : 0);
                    state.open.pop_back();
                }
                if (state.depth > 0) {
                    --state.depth;
                }
            }
        }
    }

    // After the session's final drain (or replay). By size.
    std::vector<SizeBin> bins() const {
        std::lock_guard<std::mutex> lock(mutex_);
        std::vector<SizeBin> out;
        for (const auto& bin : bins_) {
            out.push_back(bin.second);
        }
        return out;
    }
    // Calls of the watched function, and those without a sized argument.
    std::uint64_t calls() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return calls_;
    }
    std::uint64_t unsized_calls() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return unsized_calls_;
    }

    // Sizes up to 256 are their own bin; above, 32 bins per octave.
    static std::uint64_t bin_of(std::uint64_t size) noexcept {
        if (size < 256) {
            return size;
        }
        int octave = 63;
        while ((size >> octave) == 0) {
            --octave;
        }
        const std::uint64_t fraction = (size >> (octave - 5)) & 31;
        return (std::uint64_t{1} << 32) | (static_cast<std::uint64_t>(octave) << 5) | fraction;
    }

private:
    struct Open {
        std::uint64_t depth;
        std::uint64_t start;
        std::uint64_t size;
    };
    struct ThreadState {
        std::uint64_t depth = 0; // open Python spans
        std::vector<Open> open;  // open watched calls, innermost last
    };

    void record(std::uint64_t size, std::uint64_t ticks) {
        SizeBin& bin = bins_[bin_of(size)];
        ++bin.calls;
        bin.size_sum += static_cast<double>(size);
        bin.min_ticks = ticks < bin.min_ticks ? ticks : bin.min_ticks;
    }

    mutable std::mutex mutex_; // process() on the drain thread, readers after stop()
    std::map<std::uint64_t, SizeBin> bins_;
    sinks::PerThreadState<ThreadState> threads_;
    std::uint64_t calls_ = 0;
    std::uint64_t unsized_calls_ = 0;
};

} // namespace model
} // namespace pycroscope
