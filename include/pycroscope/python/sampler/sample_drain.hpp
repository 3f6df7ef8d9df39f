#pragma once
// The drain side of the GIL-free sampler (sample_slots.hpp): keeps one
// ThreadSlot per sampled thread and turns their raw samples into `sample` +
// `sample_frame` events (core/event.hpp), Python frames and native zones
// interleaved in true call order as SamplingRound does.
//
// Runs on the sampler thread in three steps:
//  - scan() (GIL held): finds threads that appeared (a slot, and with the CPU
//    clock a timer on the thread's CPU clock) and threads that are gone (their
//    last samples drained, timer deleted, slot released). Threads that live
//    less than one drain period may be missed.
//  - resolve() (GIL held): validates every raw frame and names it. A code
//    pointer is trusted only if it passes, in order: the graveyard
//    (code_graveyard.hpp: a code object that died after the sample keeps the
//    name it had), a safe read of its header (it may be unmapped), its type
//    (PyCode_Type), a sane reference count, and an instruction offset inside
//    its bytecode past the frame's set-up. A frame that fails is dropped
//    (counted in invalid_frames()), never named at random.
//  - publish() (no GIL): writes the staged events into the calling thread's
//    ring.

#include "pycroscope/core/clock.hpp"
#include "pycroscope/core/event.hpp"
#include "pycroscope/core/name_table.hpp"
#include "pycroscope/core/recorder.hpp"
#include "pycroscope/core/session_core.hpp"
#include "pycroscope/core/zone_stack.hpp"
#include "pycroscope/python/runtime/code_registry.hpp"
#include "pycroscope/python/runtime/cpython.hpp"
#include "pycroscope/python/runtime/frame_walk.hpp"
#include "pycroscope/python/runtime/safe_read.hpp"
#include "pycroscope/python/sampler/code_graveyard.hpp"
#include "pycroscope/python/sampler/sample_slots.hpp"
#include "pycroscope/python/sampler/sampling_round.hpp"

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace pycroscope {
namespace python {
namespace detail {

class RawSampleDrain {
public:
    RawSampleDrain(std::size_t max_frames, bool cpu_clock)
        : max_frames_(max_frames < ThreadSlot::max_frames_limit ? max_frames : ThreadSlot::max_frames_limit),
          cpu_clock_(cpu_clock),
          truncated_(names().intern(LocationKind::other,
                                    "[outer frames truncated at " + std::to_string(max_frames_) + "]",
                                    "[truncated]", "<sampler>", 0)) {
        slot_pool().max_frames.store(static_cast<std::uint32_t>(max_frames_), std::memory_order_relaxed);
        graveyard_seen_ = code_graveyard().written();
    }
    RawSampleDrain(const RawSampleDrain&) = delete;
    RawSampleDrain& operator=(const RawSampleDrain&) = delete;
    ~RawSampleDrain() { retire_all(); }

    // GIL held. period_ns: CPU time between two samples of a thread; paused:
    // CPU time burnt meanwhile is not counted (cpu_ns_sampled).
    void scan(const SessionCore& core, PyThreadState* skip, const ThreadBuffer* own_buffer, std::int64_t period_ns,
              bool paused) {
        const bool rearm = period_ns != armed_period_ns_;
        armed_period_ns_ = period_ns;
        ++round_;
        code_extra_index();
        core.thread_buffers(buffers_);
        matched_.assign(buffers_.size(), false);
        PyInterpreterState* interp = PyInterpreterState_Main();
        for (PyThreadState* t = PyInterpreterState_ThreadHead(interp); t != nullptr; t = PyThreadState_Next(t)) {
            if (t != skip) {
                see_python_thread(core, t, own_buffer, rearm);
            }
        }
        for (std::size_t i = 0; i < buffers_.size(); ++i) {
            ThreadBuffer& buffer = *buffers_[i];
            if (matched_[i] || &buffer == own_buffer || buffer.exited.load(std::memory_order_acquire)) {
                continue;
            }
            const std::uint64_t key = buffer.os_tid | native_key_bit;
            auto found = known_.find(key);
            if (found == known_.end()) {
                if (buffer.zones.depth() == 0 || buffer.os_tid == 0) {
                    continue; // zones only: a native thread is sampled once it opens one
                }
                Known known;
                known.os_tid = buffer.os_tid;
                known.buffer = buffers_[i];
                const std::string name = core.thread_name(buffer);
                known.name = thread_label(name, 0, buffer.os_tid);
                found = known_.emplace(key, std::move(known)).first;
                start_slot(found->second, nullptr);
            } else if (rearm) {
                arm(found->second);
            }
            found->second.seen_round = round_;
        }
        for (auto it = known_.begin(); it != known_.end();) {
            Known& known = it->second;
            const bool gone = known.seen_round != round_ ||
                              (known.buffer != nullptr && known.buffer->exited.load(std::memory_order_acquire) &&
                               known.native);
            if (gone) {
                retire(known);
                it = known_.erase(it);
                continue;
            }
            if (cpu_clock_) {
                const std::int64_t cpu = thread_cpu_ns(known.os_tid);
                if (cpu >= 0 && known.cpu_ns >= 0 && !paused) {
                    cpu_ns_sampled_ += static_cast<std::uint64_t>(cpu - known.cpu_ns);
                }
                known.cpu_ns = cpu;
            }
            ++it;
        }
    }

    // GIL held. Turns every slot's raw samples into staged events.
    void resolve() {
        take_graveyard();
        staged_.clear();
        events_.clear();
        for (auto& entry : known_) {
            drain_slot(entry.second);
        }
    }

    // No GIL needed. Writes what resolve() staged; returns samples written.
    std::size_t publish(std::uint64_t epoch) noexcept {
        std::size_t written = 0;
        for (const auto& sample : staged_) {
            if (pycroscope::detail::push_events(epoch, events_.data() + sample.first, sample.count)) {
                ++written;
            }
        }
        staged_.clear();
        events_.clear();
        return written;
    }

    // Stops and forgets every thread (timers deleted). GIL held or not:
    // samples not yet resolved are lost.
    void retire_all() noexcept {
        for (auto& entry : known_) {
            stop_slot(entry.second);
        }
        known_.clear();
    }

    // CPU nanoseconds the sampled threads burnt while not paused (cpu clock).
    std::uint64_t cpu_ns_sampled() const noexcept { return cpu_ns_sampled_; }
    // Periods the resolved samples stand for (their weights summed).
    std::uint64_t weighted_samples() const noexcept { return weighted_; }
    // Raw samples resolved (distinct stacks).
    std::uint64_t raw_samples() const noexcept { return raw_samples_; }
    std::uint64_t invalid_frames() const noexcept { return invalid_frames_; }
    std::uint64_t dropped() const noexcept {
        std::uint64_t total = dropped_;
        for (const auto& entry : known_) {
            if (entry.second.slot != nullptr) {
                total += entry.second.slot->dropped.load(std::memory_order_relaxed);
            }
        }
        return total;
    }

private:
    static constexpr std::uint64_t native_key_bit = std::uint64_t{1} << 63;

    struct Known {
        ThreadSlot* slot = nullptr;
        std::uint64_t os_tid = 0;
        const SourceLocation* name = nullptr;
        std::shared_ptr<ThreadBuffer> buffer;
        std::uint64_t seen_round = 0;
        std::int64_t cpu_ns = -1;
        const void* tstate = nullptr;
        unsigned long ident = 0;
        bool native = true;
    };
    struct Staged {
        std::size_t first;
        std::size_t count;
    };
    struct Resolved {
        const SourceLocation* location;
        std::uint32_t line;
    };
    struct LineEntry {
        const SourceLocation* location;
        int offset;
        int line;
    };

    // A distinct label per thread: "MainThread (tid 1234)".
    static const SourceLocation* thread_label(const std::string& name, unsigned long ident, std::uint64_t os_tid) {
        std::string label = name.empty() ? std::string("thread") : name;
        if (os_tid != 0) {
            label.append(" (tid ").append(std::to_string(os_tid)).append(")");
        } else if (ident != 0) {
            label.append(" (ident ").append(std::to_string(ident)).append(")");
        }
        return names().intern(LocationKind::other, label, label, "<thread>", 0);
    }

    ThreadBuffer* match_buffer(PyThreadState* t, std::size_t& index) {
        const std::uint64_t tid = frame_walk::native_thread_id(t);
        const std::uint64_t handle = frame_walk::thread_id(t);
        for (std::size_t i = 0; i < buffers_.size(); ++i) {
            ThreadBuffer& buffer = *buffers_[i];
            if (matched_[i] || buffer.exited.load(std::memory_order_acquire)) {
                continue;
            }
            if (tid != 0 ? buffer.os_tid == tid : buffer.thread_handle == handle) {
                matched_[i] = true;
                index = i;
                return &buffer;
            }
        }
        return nullptr;
    }

    void see_python_thread(const SessionCore& core, PyThreadState* t, const ThreadBuffer* own_buffer, bool rearm) {
        const unsigned long ident = frame_walk::thread_id(t);
        const std::uint64_t key =
            (reinterpret_cast<std::uintptr_t>(t) ^ (std::uint64_t{ident} * 0x9E3779B97F4A7C15ull)) & ~native_key_bit;
        std::size_t buffer_index = 0;
        ThreadBuffer* buffer = match_buffer(t, buffer_index);
        if (buffer == own_buffer) {
            buffer = nullptr;
        }
        auto found = known_.find(key);
        if (found != known_.end() && (found->second.tstate != t || found->second.ident != ident)) {
            retire(found->second);
            known_.erase(found);
            found = known_.end();
        }
        if (found == known_.end()) {
            Known known;
            known.native = false;
            known.tstate = t;
            known.ident = ident;
            known.os_tid = frame_walk::native_thread_id(t);
            if (known.os_tid == 0 && buffer != nullptr) {
                known.os_tid = buffer->os_tid;
            }
            if (known.os_tid == 0) {
                known.os_tid = os_tid_of_pthread(ident); // in the list under the GIL: alive
            }
            if (buffer != nullptr) {
                known.buffer = buffers_[buffer_index];
            }
            python::detail::PendingExceptionGuard guard;
            std::string name;
            describe_from_threading(ident, name, known.os_tid);
            if (name.empty() && buffer != nullptr) {
                name = core.thread_name(*buffer);
            }
            known.name = thread_label(name, ident, known.os_tid);
            found = known_.emplace(key, std::move(known)).first;
            start_slot(found->second, t);
        } else {
            Known& known = found->second;
            if (rearm) {
                arm(known);
            }
            if (known.buffer == nullptr && buffer != nullptr) {
                // Its ring (and zone stack) appeared after the slot: zones are read from now on.
                known.buffer = buffers_[buffer_index];
                if (known.slot != nullptr) {
                    known.slot->zones.store(&buffer->zones, std::memory_order_relaxed);
                }
            }
        }
        found->second.seen_round = round_;
    }

    void start_slot(Known& known, PyThreadState* t) {
        known.slot = acquire_slot(t, known.buffer != nullptr ? &known.buffer->zones : nullptr, known.os_tid);
        arm(known);
    }

    void arm(Known& known) noexcept {
#if PYCROSCOPE_SIGNAL_SAMPLER
        if (cpu_clock_ && known.slot != nullptr) {
            arm_cpu_timer(*known.slot, armed_period_ns_);
        }
#else
        (void)known;
#endif
    }

    void stop_slot(Known& known) noexcept {
        if (known.slot == nullptr) {
            return;
        }
        deactivate_slot(*known.slot);
#if PYCROSCOPE_SIGNAL_SAMPLER
        delete_cpu_timer(*known.slot);
#endif
        dropped_ += known.slot->dropped.load(std::memory_order_relaxed);
        release_slot(*known.slot);
        known.slot = nullptr;
    }

    // GIL held: the thread is gone; its last samples are staged first.
    void retire(Known& known) {
        if (known.slot != nullptr) {
            deactivate_slot(*known.slot);
            drain_slot(known);
        }
        stop_slot(known);
    }

    void take_graveyard() {
        code_graveyard().each_since(graveyard_seen_, [&](const CodeGraveyard::Entry& entry) {
            dead_[entry.code].push_back(entry);
            dead_order_.push_back(entry.code);
        });
        while (dead_order_.size() > CodeGraveyard::capacity * 2) {
            auto found = dead_.find(dead_order_.front());
            if (found != dead_.end()) {
                found->second.erase(found->second.begin());
                if (found->second.empty()) {
                    dead_.erase(found);
                }
            }
            dead_order_.pop_front();
        }
    }

    int line_of(const SourceLocation* location, PyCodeObject* code, int offset) noexcept {
        const auto bits = (reinterpret_cast<std::uintptr_t>(location) >> 4) ^ static_cast<std::uintptr_t>(offset) * 31u;
        LineEntry& entry = lines_[bits & (line_cache_size - 1)];
        if (entry.location != location || entry.offset != offset) {
            entry = LineEntry{location, offset, frame_walk::line_of(code, offset)};
        }
        return entry.line;
    }

    // The name of a raw frame taken at `taken`; false to drop it.
    bool resolve_frame(const frame_walk::RawFrame& frame, std::uint64_t taken, Resolved& out) {
        if (frame.code == nullptr) {
            return false;
        }
        auto dead = dead_.find(frame.code);
        if (dead != dead_.end()) {
            for (const CodeGraveyard::Entry& entry : dead->second) {
                if (entry.died >= taken) { // alive when sampled: the name it had then
                    out = Resolved{entry.location, entry.location->line};
                    return true;
                }
            }
        }
        PyObject header;
        if (!safe_read::read(frame.code, header) || header.ob_type != &PyCode_Type) {
            return false;
        }
        const auto refcount = static_cast<std::uint64_t>(header.ob_refcnt);
        if (refcount == 0 || refcount > (std::uint64_t{1} << 40)) {
            return false; // freed (a free list's link) or not an object
        }
        auto* code = frame.code;
        const int offset = frame_walk::checked_offset(code, frame);
        if (offset == -2) {
            return false;
        }
        const SourceLocation* location = code_location(code);
        out = Resolved{location, static_cast<std::uint32_t>(line_of(location, code, offset))};
        return true;
    }

    void drain_slot(Known& known) {
        if (known.slot == nullptr) {
            return;
        }
        known.slot->drain([&](const RawSampleHeader& header, const frame_walk::RawFrame* raw,
                              const ZoneStack::Entry* zones) { stage(known, header, raw, zones); });
    }

    void add_frame(std::size_t first, std::uint64_t now, const SourceLocation* location, std::uint64_t line) {
        const auto index = static_cast<std::uint32_t>(events_.size() - first - 1);
        events_.push_back(Event{now, location_id(location), line, index, EventKind::sample_frame, 0, 0});
    }

    void stage(Known& known, const RawSampleHeader& header, const frame_walk::RawFrame* raw,
               const ZoneStack::Entry* zones) {
        ++raw_samples_;
        std::size_t count = header.frames;
        const bool truncated = count > max_frames_;
        count = truncated ? max_frames_ : count;
        valid_.clear();
        resolved_.clear();
        for (std::size_t i = 0; i < count; ++i) {
            Resolved name{};
            if (resolve_frame(raw[i], header.timestamp, name)) {
                valid_.push_back(raw[i]);
                resolved_.push_back(name);
            } else {
                ++invalid_frames_;
            }
        }
        std::size_t zone_count = 0;
        for (std::size_t z = 0; z < header.zones; ++z) {
            zone_count += zones[z].location != nullptr;
        }
        if (valid_.empty() && zone_count == 0) {
            return; // nothing nameable (a thread between Python calls, or every frame invalid)
        }
        // Wall clock: one. CPU clock: 1 + the timer's overrun (sample_slots.hpp),
        // written as that many samples a tick apart.
        const std::uint32_t weight = header.weight == 0 ? 1 : (header.weight > 1000 ? 1000 : header.weight);
        weighted_ += weight;
        for (std::uint32_t copy = weight; copy > 0; --copy) {
            const std::uint64_t now = header.timestamp - (copy - 1);
            const std::size_t first = events_.size();
            events_.push_back(Event{now, known.os_tid, location_id(known.name), 0, EventKind::sample,
                                    static_cast<std::uint8_t>(header.flags), 0});
            if (truncated) {
                add_frame(first, now, truncated_, 0);
            }
            interleave(
                valid_.data(), valid_.size(), zones, header.zones,
                [&](const frame_walk::RawFrame& frame) {
                    const Resolved& name = resolved_[static_cast<std::size_t>(&frame - valid_.data())];
                    add_frame(first, now, name.location, name.line);
                },
                [&](const SourceLocation* zone) { add_frame(first, now, zone, 0); });
            const std::size_t frames = events_.size() - first - 1;
            events_[first].aux = static_cast<std::uint32_t>(frames);
            staged_.push_back(Staged{first, frames + 1});
        }
    }

    static constexpr std::size_t line_cache_size = 4096;

    std::size_t max_frames_;
    bool cpu_clock_;
    const SourceLocation* truncated_;
    std::int64_t armed_period_ns_ = 0;
    std::uint64_t round_ = 0;
    std::vector<std::shared_ptr<ThreadBuffer>> buffers_;
    std::vector<bool> matched_;
    std::unordered_map<std::uint64_t, Known> known_;
    std::vector<Staged> staged_;
    std::vector<Event> events_;
    std::vector<frame_walk::RawFrame> valid_;
    std::vector<Resolved> resolved_;
    std::unordered_map<const void*, std::vector<CodeGraveyard::Entry>> dead_;
    std::deque<const void*> dead_order_;
    std::uint64_t graveyard_seen_ = 0;
    std::uint64_t cpu_ns_sampled_ = 0;
    std::uint64_t weighted_ = 0;
    std::uint64_t raw_samples_ = 0;
    std::uint64_t invalid_frames_ = 0;
    std::uint64_t dropped_ = 0;
    std::unique_ptr<LineEntry[]> lines_{new LineEntry[line_cache_size]()};
};

} // namespace detail
} // namespace python
} // namespace pycroscope
