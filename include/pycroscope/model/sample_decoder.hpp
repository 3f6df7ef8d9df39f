#pragma once
// Reassembles stack samples from the event stream. A sample is one `sample`
// header followed in the same ring by `aux` `sample_frame` events, outermost
// frame first (see core/event.hpp). Sinks get a ring's events in batches, so
// a header's frames may arrive in the next consume(): a decoder keeps the
// partly read sample of one producer thread between batches.
//
// A sample is delivered only when all its frames arrived. One cut short by
// lost events (a new header, a frame of another timestamp, or a frame whose
// index is not the next one, where its next frame should be) is dropped and
// counted, never attributed to a wrong stack.

#include "pycroscope/core/event.hpp"
#include "pycroscope/core/source_location.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace pycroscope {
namespace model {

struct SampleFrame {
    const SourceLocation* location = nullptr;
    std::uint32_t line = 0; // current line of a Python frame; 0 for zones or when unknown
};

// One complete sample; frames point into the decoder and stay valid only
// during the callback.
struct SampleView {
    std::uint64_t timestamp = 0;
    std::uint64_t os_tid = 0;                   // the sampled thread, not the producer
    const SourceLocation* thread_name = nullptr; // null when unknown
    std::uint8_t flags = 0;
    const SampleFrame* frames = nullptr; // outermost first
    std::size_t depth = 0;

    bool running() const noexcept { return (flags & sample_flags::running) != 0; }
    bool manual() const noexcept { return (flags & sample_flags::manual) != 0; }
    const SampleFrame& leaf() const noexcept { return frames[depth - 1]; }
};

// Stands in for a frame recorded without a location.
inline constexpr SourceLocation unknown_sample_frame{"<unknown>", "<unknown>", "", 0, LocationKind::other};

// The display name of a sampled thread: its interned name, or "thread <os_tid>".
inline std::string sampled_thread_name(std::uint64_t os_tid, const SourceLocation* name) {
    if (name != nullptr && name->name != nullptr && name->name[0] != '\0') {
        return name->name;
    }
    return std::string("thread ").append(std::to_string(os_tid));
}

// Decoder for the events of ONE producer thread (one ring), in order.
class SampleDecoder {
public:
    // Feeds one event; calls on_sample(const SampleView&) when it completes a
    // sample. Events of other kinds are ignored.
    template <class OnSample>
    void push(const Event& e, OnSample&& on_sample) {
        if (e.kind == EventKind::sample) {
            if (pending_) {
                ++incomplete_;
            }
            header_ = e;
            frames_.clear();
            pending_ = true;
            if (e.aux == 0) {
                complete(on_sample);
            }
        } else if (e.kind == EventKind::sample_frame) {
            if (!pending_ || e.timestamp != header_.timestamp || e.aux != frames_.size()) {
                if (pending_) {
                    ++incomplete_;
                    pending_ = false;
                }
                ++orphan_frames_;
                return;
            }
            const SourceLocation* location = e.location() != nullptr ? e.location() : &unknown_sample_frame;
            frames_.push_back(SampleFrame{location, static_cast<std::uint32_t>(e.payload)});
            if (frames_.size() == header_.aux) {
                complete(on_sample);
            }
        }
    }

    template <class OnSample>
    void feed(const Event* events, std::size_t count, OnSample&& on_sample) {
        for (std::size_t i = 0; i < count; ++i) {
            push(events[i], on_sample);
        }
    }

    // A sample still waiting for frames (at the end of the session it never completes).
    bool pending() const noexcept { return pending_; }
    // Samples dropped because frames were missing.
    std::uint64_t incomplete() const noexcept { return incomplete_ + (pending_ ? 1 : 0); }
    // Frames with no header in front of them (their header was lost).
    std::uint64_t orphan_frames() const noexcept { return orphan_frames_; }

    void reset() {
        frames_.clear();
        pending_ = false;
        incomplete_ = 0;
        orphan_frames_ = 0;
    }

private:
    template <class OnSample>
    void complete(OnSample& on_sample) {
        pending_ = false;
        SampleView view;
        view.timestamp = header_.timestamp;
        view.os_tid = header_.id;
        view.thread_name = reinterpret_cast<const SourceLocation*>(static_cast<std::uintptr_t>(header_.payload));
        view.flags = header_.flags;
        view.frames = frames_.data();
        view.depth = frames_.size();
        on_sample(static_cast<const SampleView&>(view));
    }

    Event header_{};
    std::vector<SampleFrame> frames_;
    bool pending_ = false;
    std::uint64_t incomplete_ = 0;
    std::uint64_t orphan_frames_ = 0;
};

// One decoder per producer thread, found by the session-local thread index
// (ThreadInfo::index) that Sink::consume() is given.
class SampleStreams {
public:
    template <class OnSample>
    void feed(std::uint32_t producer, const Event* events, std::size_t count, OnSample&& on_sample) {
        if (producer >= decoders_.size()) {
            decoders_.resize(producer + 1);
        }
        decoders_[producer].feed(events, count, on_sample);
    }

    template <class OnSample>
    void push(std::uint32_t producer, const Event& e, OnSample&& on_sample) {
        if (producer >= decoders_.size()) {
            decoders_.resize(producer + 1);
        }
        decoders_[producer].push(e, on_sample);
    }

    std::uint64_t incomplete() const noexcept {
        std::uint64_t n = 0;
        for (const auto& d : decoders_) {
            n += d.incomplete();
        }
        return n;
    }
    std::uint64_t orphan_frames() const noexcept {
        std::uint64_t n = 0;
        for (const auto& d : decoders_) {
            n += d.orphan_frames();
        }
        return n;
    }

    void clear() { decoders_.clear(); }

private:
    std::vector<SampleDecoder> decoders_;
};

} // namespace model
} // namespace pycroscope
