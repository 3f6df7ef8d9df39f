#pragma once
// The allocation timeline of the Chrome trace: live bytes traced through the
// PyMem domains, as one counter track. Stateless about blocks: it adds each
// mem_alloc and subtracts each mem_free the memory model matched (events as
// rewritten by analysis/memory_model.hpp), so it follows the model's live
// bytes in drain order. Throttled: a point when the value moved by more than
// 1% since the last point, or when at least min_interval passed on that
// thread and the value changed.

#include "pycroscope/core/event.hpp"
#include "pycroscope/core/source_location.hpp"

#include <cstdint>
#include <vector>

namespace pycroscope {
namespace sinks {

inline constexpr SourceLocation memory_counter_location{"python memory (live bytes)", "python memory (live bytes)",
                                                        "", 0, LocationKind::counter};

class MemoryCounterTrack {
public:
    void reset(std::uint64_t min_interval_ticks) {
        min_interval_ticks_ = min_interval_ticks;
        live_ = 0;
        last_value_ = 0;
        last_ticks_.clear();
        seen_ = false;
    }

    // Feeds a memory event of thread; true when a point is due now (value()).
    bool add(const Event& e, std::uint32_t thread) {
        if (e.kind == EventKind::mem_alloc) {
            if ((e.flags & memory_flags::born_freed) != 0) {
                return false;
            }
            live_ += static_cast<std::int64_t>(memory_bytes(e));
        } else if (e.kind == EventKind::mem_free && (e.flags & memory_flags::known) != 0) {
            live_ -= static_cast<std::int64_t>(memory_bytes(e));
        } else {
            return false;
        }
        seen_ = true;
        if (thread >= last_ticks_.size()) {
            last_ticks_.resize(thread + 1, 0);
        }
        const std::int64_t moved = live_ > last_value_ ? live_ - last_value_ : last_value_ - live_;
        const bool big_move = moved * 100 > (last_value_ < 0 ? -last_value_ : last_value_);
        const bool interval = e.timestamp >= last_ticks_[thread] + min_interval_ticks_ && moved != 0;
        if (!big_move && !interval) {
            return false;
        }
        last_ticks_[thread] = e.timestamp;
        last_value_ = live_;
        return true;
    }

    // The value for a final point at stop, when anything was seen.
    bool pending_final() const noexcept { return seen_; }
    std::uint64_t value() const noexcept { return live_ > 0 ? static_cast<std::uint64_t>(live_) : 0; }

private:
    std::uint64_t min_interval_ticks_ = 0;
    std::int64_t live_ = 0;
    std::int64_t last_value_ = 0;
    std::vector<std::uint64_t> last_ticks_;
    bool seen_ = false;
};

} // namespace sinks
} // namespace pycroscope
