#pragma once
// The memory model: an EventProcessor that follows every mem_alloc and
// mem_free (core/event.hpp) on the drain thread and
//  - rewrites each mem_free with the freed bytes, the allocation's site and
//    its lifetime, so every sink after it can be stateless;
//  - keeps live bytes and counts per site (site = allocation line + the
//    innermost native zone), the peak of live bytes with the stack at the
//    peak, a log2 lifetime histogram per site, and the live bytes of every
//    site at periodic snapshots, from which growth() measures how steadily a
//    site grows (the leak verdict).
//
// Ordering. Each thread's events arrive in order, but threads are drained
// one after another, so a block freed by one thread and reused by another
// can show up in either order. Timestamps settle it: a free older than the
// live block at its address belongs to the block that block displaced; a
// free of an unknown address is remembered for a while, and an allocation it
// follows in time is "born freed". Frees still unknown are blocks allocated
// before tracking began: flagged and ignored. Live bytes (and so the peak)
// follow drain order: with several threads turning memory over at once the
// peak can exceed the true one by the bytes freed by other threads during
// one drain pass.
//
// Results are read after the session stopped (or from close() callbacks
// such as the session.json sections, which run after the model's close()).

#include "pycroscope/model/address_map.hpp"
#include "pycroscope/model/allocation_stacks.hpp"
#include "pycroscope/core/compiler.hpp"
#include "pycroscope/core/event.hpp"
#include "pycroscope/core/event_processor.hpp"
#include "pycroscope/core/location_tree.hpp"
#include "pycroscope/core/session_info.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace pycroscope {
namespace model {

struct MemoryModelOptions {
    // Live bytes per site are snapshotted at this interval of event time; the
    // interval doubles (keeping every other snapshot) past max_snapshots.
    std::uint64_t snapshot_interval_ns = 50'000'000;
    std::size_t max_snapshots = 512;
    // A site "grows steadily" (a leak) when, over at least min_snapshots
    // snapshots since it first allocated, its live bytes rose by at least
    // min_growth_bytes, rose in at least min_grow_fraction of the intervals,
    // a least-squares line fits them with R^2 >= min_r2, and they were still
    // rising over the last third of the series (a structure built once and
    // then kept is not a leak).
    std::size_t min_snapshots = 6;
    std::uint64_t min_growth_bytes = 16 * 1024;
    double min_grow_fraction = 0.5;
    double min_r2 = 0.8;
};

// Lifetimes in log2 buckets of nanoseconds: bucket b holds [2^b, 2^(b+1)) ns
// (bucket 0 also holds 0 ns).
constexpr std::size_t lifetime_buckets = 48;
// floor(log2(ns)) from the highest set bit: one per matched free, where
// std::ilogb's library call showed in the drain thread's profile.
inline std::size_t lifetime_bucket(double ns) noexcept {
    if (!(ns >= 2.0)) {
        return 0;
    }
    constexpr double last_bucket_start = static_cast<double>(std::uint64_t{1} << (lifetime_buckets - 1));
    if (ns >= last_bucket_start) {
        return lifetime_buckets - 1;
    }
    const auto whole = static_cast<std::uint64_t>(ns); // floor keeps the highest bit
#if defined(__GNUC__) || defined(__clang__)
    return static_cast<std::size_t>(63 - __builtin_clzll(whole));
#else
    std::size_t bucket = 0;
    for (std::uint64_t rest = whole >> 1; rest != 0; rest >>= 1) {
        ++bucket;
    }
    return bucket;
#endif
}

struct MemorySite {
    const SourceLocation* line = nullptr; // python_line location, or null (no Python frame)
    const SourceLocation* zone = nullptr; // innermost native zone, or null
    std::uint64_t alloc_bytes = 0;
    std::uint64_t alloc_count = 0;
    std::uint64_t freed_bytes = 0;
    std::uint64_t freed_count = 0;
    std::array<std::uint64_t, lifetime_buckets> lifetimes{}; // freed blocks only
    // Live bytes at snapshots first_snapshot, first_snapshot + 1, ...
    std::size_t first_snapshot = 0;
    std::vector<std::int64_t> history;

    std::int64_t live_bytes() const noexcept {
        return static_cast<std::int64_t>(alloc_bytes) - static_cast<std::int64_t>(freed_bytes);
    }
    std::int64_t live_count() const noexcept {
        return static_cast<std::int64_t>(alloc_count) - static_cast<std::int64_t>(freed_count);
    }
};

struct SiteGrowth {
    std::size_t snapshots = 0;      // since the site first allocated
    double grew_fraction = 0;       // intervals in which live bytes rose
    double slope_bytes_per_s = 0;   // least-squares slope of live bytes
    double r2 = 0;                  // fit of that line (0 when flat)
    std::int64_t growth_bytes = 0;  // last snapshot minus first
    bool still_growing = false;     // last snapshot above the one two thirds in
    bool steady = false;            // meets MemoryModelOptions' leak criteria
};

struct MemoryPeak {
    std::uint64_t bytes = 0;
    std::uint64_t ticks = 0;                      // when it was reached
    std::uint32_t thread = 0;                     // session index of the thread that reached it
    std::vector<const SourceLocation*> stack;     // outermost first, ending with the allocation line
};

class MemoryModel : public EventProcessor {
public:
    explicit MemoryModel(MemoryModelOptions options = {}) : options_(options) {}

    std::string describe() const override { return "memory model"; }

    void open(const SessionInfo& info) override {
        info_ = info;
        blocks_.clear();
        displaced_[0].clear();
        displaced_[1].clear();
        early_frees_[0].clear();
        early_frees_[1].clear();
        sites_.clear();
        site_index_.clear();
        for (auto& slot : site_cache_) {
            slot = SiteCacheSlot{};
        }
        threads_.clear();
        tree_.clear();
        stacks_.clear();
        live_bytes_ = 0;
        live_count_ = 0;
        peak_bytes_ = 0;
        peak_ticks_ = 0;
        peak_thread_ = 0;
        peak_node_ = LocationTree::root;
        peak_site_ = no_site;
        allocations_ = frees_ = unknown_frees_ = born_freed_ = displaced_count_ = 0;
        const double ns_per_tick = info.calibration.ns_per_tick > 0 ? info.calibration.ns_per_tick : 1.0;
        interval_ticks_ = std::max<std::uint64_t>(
            1, static_cast<std::uint64_t>(static_cast<double>(options_.snapshot_interval_ns) / ns_per_tick));
        next_snapshot_ = info.start_ticks + interval_ticks_;
        snapshots_ = 0;
        rotation_ticks_ = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(1e9 / ns_per_tick));
        next_rotation_ = info.start_ticks + rotation_ticks_;
        stop_ticks_ = info.start_ticks;
    }

    void process(const ThreadInfo& thread, Event* events, std::size_t count) override {
        StackPosition& position = thread_position(thread.index);
        // The block map outgrows the cache, and block addresses are random:
        // each lookup would be a cache miss in series with the next. Asking
        // for the slots of the events a little ahead overlaps those misses.
        constexpr std::size_t lookahead = 32;
        for (std::size_t i = 0; i < count && i < lookahead; ++i) {
            prefetch_block(events[i]);
        }
        for (std::size_t i = 0; i < count; ++i) {
            if (i + lookahead < count) {
                prefetch_block(events[i + lookahead]);
            }
            Event& e = events[i];
            if (e.kind == EventKind::mem_alloc) {
                advance_time(e.timestamp);
                on_alloc(e, position, thread.index);
            } else if (e.kind == EventKind::mem_free) {
                advance_time(e.timestamp);
                on_free(e);
            } else {
                position.add(e, tree_);
            }
        }
    }

    void close(const SessionSummary& summary) override {
        stop_ticks_ = summary.stop_ticks;
        take_snapshot(); // the state at stop is the last point of every series
        // Blocks displaced and never freed: their free was lost; count them as freed.
        for (auto& generation : displaced_) {
            generation.for_each([&](std::uint64_t, Block& block) { release(block, 0, false); });
            generation.clear();
        }
    }

    // --- results ---------------------------------------------------------

    const MemoryModelOptions& options() const noexcept { return options_; }
    const std::vector<MemorySite>& sites() const noexcept { return sites_; }
    std::uint64_t live_bytes() const noexcept { return static_cast<std::uint64_t>(std::max<std::int64_t>(live_bytes_, 0)); }
    std::uint64_t live_count() const noexcept { return static_cast<std::uint64_t>(std::max<std::int64_t>(live_count_, 0)); }
    std::uint64_t allocations() const noexcept { return allocations_; }
    std::uint64_t frees() const noexcept { return frees_; }            // matched to their allocation
    std::uint64_t unknown_frees() const noexcept { return unknown_frees_; }
    std::uint64_t born_freed() const noexcept { return born_freed_; }
    std::uint64_t displaced() const noexcept { return displaced_count_; }
    std::size_t snapshots() const noexcept { return snapshots_; }
    std::uint64_t snapshot_interval_ticks() const noexcept { return interval_ticks_; }
    const SessionInfo& info() const noexcept { return info_; }

    // Bytes allocated per (thread, stack, line), freed or not: memory.folded.
    // Leaves are nodes of tree().
    const AllocationStacks& allocation_stacks() const noexcept { return stacks_; }
    const LocationTree& tree() const noexcept { return tree_; }

    MemoryPeak peak() const {
        MemoryPeak peak;
        peak.bytes = peak_bytes_;
        peak.ticks = peak_ticks_;
        peak.thread = peak_thread_;
        peak.stack = tree_.path(peak_node_);
        if (peak_site_ != no_site && sites_[peak_site_].line != nullptr) {
            peak.stack.push_back(sites_[peak_site_].line);
        }
        return peak;
    }

    SiteGrowth growth(const MemorySite& site) const {
        SiteGrowth g;
        const std::vector<std::int64_t>& h = site.history;
        g.snapshots = h.size();
        if (h.size() < 2) {
            return g;
        }
        const double dt_s = info_.ticks_to_ns(interval_ticks_) / 1e9;
        std::size_t grew = 0;
        double sx = 0, sy = 0, sxx = 0, sxy = 0, syy = 0;
        const double n = static_cast<double>(h.size());
        for (std::size_t i = 0; i < h.size(); ++i) {
            if (i > 0 && h[i] > h[i - 1]) {
                ++grew;
            }
            const double x = static_cast<double>(i) * dt_s;
            const double y = static_cast<double>(h[i]);
            sx += x;
            sy += y;
            sxx += x * x;
            sxy += x * y;
            syy += y * y;
        }
        g.grew_fraction = static_cast<double>(grew) / static_cast<double>(h.size() - 1);
        const double vx = sxx - sx * sx / n;
        const double vy = syy - sy * sy / n;
        const double cxy = sxy - sx * sy / n;
        g.slope_bytes_per_s = vx > 0 ? cxy / vx : 0;
        g.r2 = (vx > 0 && vy > 0) ? (cxy * cxy) / (vx * vy) : 0;
        g.growth_bytes = h.back() - h.front();
        g.still_growing = h.back() > h[(h.size() - 1) * 2 / 3];
        g.steady = h.size() >= options_.min_snapshots && g.slope_bytes_per_s > 0 && g.still_growing &&
                   g.growth_bytes >= static_cast<std::int64_t>(options_.min_growth_bytes) &&
                   g.grew_fraction >= options_.min_grow_fraction && g.r2 >= options_.min_r2;
        return g;
    }

private:
    static constexpr std::uint32_t no_site = 0xffffffffu;

    struct Block {
        std::uint64_t bytes;
        std::uint64_t ticks; // allocation time
        std::uint32_t site;
    };
    struct SiteKey {
        const SourceLocation* line;
        const SourceLocation* zone;
        bool operator==(const SiteKey& other) const noexcept { return line == other.line && zone == other.zone; }
    };
    struct SiteKeyHash {
        std::size_t operator()(const SiteKey& key) const noexcept {
            return std::hash<const void*>()(key.line) * 0x9E3779B97F4A7C15ull ^ std::hash<const void*>()(key.zone);
        }
    };
    struct SiteCacheSlot {
        const SourceLocation* line = nullptr;
        const SourceLocation* zone = nullptr;
        std::uint32_t site = no_site;
    };
    static constexpr std::size_t site_cache_size = 1024;

    PYCROSCOPE_FORCE_INLINE void prefetch_block(const Event& e) const noexcept {
        if (is_memory_event(e.kind)) {
            blocks_.prefetch(e.payload);
        }
    }

    StackPosition& thread_position(std::uint32_t index) {
        if (index >= threads_.size()) {
            threads_.resize(index + 1);
        }
        if (!threads_[index]) {
            threads_[index] = std::make_unique<StackPosition>();
        }
        return *threads_[index];
    }

    std::uint32_t site_of(const SourceLocation* line, const SourceLocation* zone) {
        const auto hash = (reinterpret_cast<std::uintptr_t>(line) >> 3) ^ (reinterpret_cast<std::uintptr_t>(zone) >> 5);
        SiteCacheSlot& slot = site_cache_[hash % site_cache_size];
        if (slot.site != no_site && slot.line == line && slot.zone == zone) {
            return slot.site;
        }
        const SiteKey key{line, zone};
        auto found = site_index_.find(key);
        std::uint32_t site;
        if (found != site_index_.end()) {
            site = found->second;
        } else {
            site = static_cast<std::uint32_t>(sites_.size());
            sites_.emplace_back();
            sites_.back().line = line;
            sites_.back().zone = zone;
            sites_.back().first_snapshot = snapshots_;
            site_index_.emplace(key, site);
        }
        slot = SiteCacheSlot{line, zone, site};
        return site;
    }

    void on_alloc(Event& e, const StackPosition& position, std::uint32_t thread) {
        const std::uint64_t address = e.payload;
        const std::uint64_t bytes = memory_bytes(e);
        stacks_.add(tree_, thread, position.node(), e.location(), bytes);
        const std::uint32_t site = site_of(e.location(), position.zone());
        MemorySite& s = sites_[site];
        ++allocations_;
        s.alloc_bytes += bytes;
        ++s.alloc_count;
        // Freed (by another thread) before we saw it allocated?
        for (auto& generation : early_frees_) {
            if (generation.empty()) {
                continue;
            }
            if (std::uint64_t* freed_at = generation.find(address)) {
                if (*freed_at >= e.timestamp) {
                    const std::uint64_t lifetime = *freed_at - e.timestamp;
                    generation.erase(address);
                    s.freed_bytes += bytes;
                    ++s.freed_count;
                    ++s.lifetimes[lifetime_bucket(info_.ticks_to_ns(lifetime))];
                    ++born_freed_;
                    e.flags |= memory_flags::born_freed;
                    return;
                }
                generation.erase(address);
            }
        }
        if (Block* old = blocks_.find(address)) {
            // Its free is still in another thread's buffer.
            displaced_[0].put(address, *old);
            ++displaced_count_;
        }
        blocks_.put(address, Block{bytes, e.timestamp, site});
        live_bytes_ += static_cast<std::int64_t>(bytes);
        ++live_count_;
        if (live_bytes_ > static_cast<std::int64_t>(peak_bytes_)) {
            peak_bytes_ = static_cast<std::uint64_t>(live_bytes_);
            peak_ticks_ = e.timestamp;
            peak_thread_ = thread;
            peak_node_ = position.node();
            peak_site_ = site;
        }
    }

    void on_free(Event& e) {
        const std::uint64_t address = e.payload;
        const std::uint64_t freed_at = e.timestamp;
        Block* block = blocks_.find(address);
        if (block != nullptr && block->ticks <= freed_at) {
            const Block found = *block;
            blocks_.erase(address);
            rewrite_free(e, found);
            return;
        }
        for (auto& generation : displaced_) {
            if (generation.empty()) {
                continue;
            }
            if (Block* old = generation.find(address)) {
                if (old->ticks <= freed_at) {
                    const Block found = *old;
                    generation.erase(address);
                    rewrite_free(e, found);
                    return;
                }
            }
        }
        ++unknown_frees_;
        early_frees_[0].put(address, freed_at);
        e.id = 0;
        e.payload = 0;
        set_memory_bytes(e, 0);
        e.flags |= memory_flags::unknown;
    }

    void rewrite_free(Event& e, const Block& block) {
        const std::uint64_t lifetime = e.timestamp - block.ticks;
        release(block, lifetime, true);
        e.id = location_id(sites_[block.site].line);
        e.payload = lifetime;
        set_memory_bytes(e, block.bytes);
        e.flags |= memory_flags::known;
    }

    void release(const Block& block, std::uint64_t lifetime_ticks, bool timed) {
        MemorySite& s = sites_[block.site];
        s.freed_bytes += block.bytes;
        ++s.freed_count;
        if (timed) {
            ++s.lifetimes[lifetime_bucket(info_.ticks_to_ns(lifetime_ticks))];
        }
        ++frees_;
        live_bytes_ -= static_cast<std::int64_t>(block.bytes);
        --live_count_;
    }

    void advance_time(std::uint64_t ticks) {
        if (PYCROSCOPE_UNLIKELY(ticks >= next_snapshot_)) {
            take_snapshot();
            next_snapshot_ = std::max(next_snapshot_ + interval_ticks_, ticks + 1);
        }
        if (PYCROSCOPE_UNLIKELY(ticks >= next_rotation_)) {
            // Unmatched early frees and displaced blocks older than one to two
            // rotations will never match: their counterpart was drained long ago.
            early_frees_[1].clear();
            std::swap(early_frees_[0], early_frees_[1]);
            displaced_[1].for_each([&](std::uint64_t, Block& block) { release(block, 0, false); });
            displaced_[1].clear();
            std::swap(displaced_[0], displaced_[1]);
            next_rotation_ = ticks + rotation_ticks_;
        }
    }

    void take_snapshot() {
        if (snapshots_ == options_.max_snapshots && snapshots_ >= 2) {
            downsample();
        }
        for (MemorySite& s : sites_) {
            s.history.push_back(s.live_bytes());
        }
        ++snapshots_;
    }

    // Keeps every other snapshot (the later of each pair) and doubles the interval.
    void downsample() {
        for (MemorySite& s : sites_) {
            std::vector<std::int64_t> kept;
            std::size_t first_kept = 0;
            bool any = false;
            for (std::size_t k = 0; k < s.history.size(); ++k) {
                const std::size_t global = s.first_snapshot + k;
                if (global % 2 == 1) {
                    if (!any) {
                        first_kept = global;
                        any = true;
                    }
                    kept.push_back(s.history[k]);
                }
            }
            s.history = std::move(kept);
            s.first_snapshot = any ? first_kept / 2 : (s.first_snapshot + 1) / 2;
        }
        snapshots_ /= 2;
        interval_ticks_ *= 2;
    }

    MemoryModelOptions options_;
    SessionInfo info_;
    AddressMap<Block> blocks_; // grows as blocks live: a sampled session keeps few
    AddressMap<Block> displaced_[2];
    AddressMap<std::uint64_t> early_frees_[2];
    std::vector<MemorySite> sites_;
    std::unordered_map<SiteKey, std::uint32_t, SiteKeyHash> site_index_;
    SiteCacheSlot site_cache_[site_cache_size];
    std::vector<std::unique_ptr<StackPosition>> threads_;
    LocationTree tree_;
    AllocationStacks stacks_;
    std::int64_t live_bytes_ = 0;
    std::int64_t live_count_ = 0;
    std::uint64_t peak_bytes_ = 0;
    std::uint64_t peak_ticks_ = 0;
    std::uint32_t peak_thread_ = 0;
    std::uint32_t peak_node_ = LocationTree::root;
    std::uint32_t peak_site_ = no_site;
    std::uint64_t allocations_ = 0, frees_ = 0, unknown_frees_ = 0, born_freed_ = 0, displaced_count_ = 0;
    std::uint64_t interval_ticks_ = 1;
    std::uint64_t next_snapshot_ = 0;
    std::size_t snapshots_ = 0;
    std::uint64_t rotation_ticks_ = 1;
    std::uint64_t next_rotation_ = 0;
    std::uint64_t stop_ticks_ = 0;
};

} // namespace model
} // namespace pycroscope
