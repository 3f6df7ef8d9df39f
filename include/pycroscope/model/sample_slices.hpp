#pragma once
// Timeline slices rebuilt from consecutive samples of each sampled thread,
// for trace viewers. A frame present at the same depth (same location, and
// the same frames above it) in consecutive samples continues one slice:
//
//   samples at t0..t3:  A;B   A;B   A;C   A
//   slices:             A [t0, t3 + interval)  4 samples
//                       B [t0, t2)             2 samples
//                       C [t2, t3)             1 sample
//
// A slice opens at the first sample where its frame appears and closes at
// the first sample where it is gone; what is still open at the end closes
// one sampling interval after the thread's last sample, or at session stop
// if that comes first. A function that returns and is called again between
// two samples looks like one slice: sampling cannot tell.

#include "pycroscope/model/sample_decoder.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace pycroscope {
namespace model {

struct SampleSlice {
    std::uint64_t os_tid = 0;
    const SourceLocation* location = nullptr;
    std::uint32_t depth = 0;  // 0 is the outermost frame
    std::uint64_t begin = 0;  // ticks
    std::uint64_t end = 0;    // ticks
    std::uint64_t samples = 0; // samples the frame was seen in
};

struct SampledTrack {
    std::uint64_t os_tid = 0;
    std::string name; // from the samples, or "thread <os_tid>"
    std::uint64_t samples = 0;
};

class SampleSliceBuilder {
public:
    // Adds one sample; calls on_slice(const SampleSlice&) for every slice it closes.
    template <class OnSlice>
    void add(const SampleView& sample, OnSlice&& on_slice) {
        Track& track = track_of(sample);
        // Samples of one thread from two producers may interleave out of
        // order: the timeline never goes back.
        const std::uint64_t now = std::max(sample.timestamp, track.last);
        if (track.info.samples > 0) {
            track.gap = now - track.last;
        }
        track.last = now;
        ++track.info.samples;
        std::size_t same = 0;
        while (same < track.open.size() && same < sample.depth &&
               track.open[same].location == sample.frames[same].location) {
            ++same;
        }
        close_above(track, same, now, on_slice);
        for (std::size_t i = 0; i < same; ++i) {
            ++track.open[i].samples;
        }
        for (std::size_t i = same; i < sample.depth; ++i) {
            track.open.push_back(Open{sample.frames[i].location, now, 1});
        }
    }

    // Closes every open slice at (last sample + interval), capped at
    // stop_ticks. interval_ticks 0: the thread's last gap between samples;
    // with a single sample and no interval, the slices last until stop.
    template <class OnSlice>
    void finish(std::uint64_t stop_ticks, std::uint64_t interval_ticks, OnSlice&& on_slice) {
        for (Track& track : tracks_) {
            const std::uint64_t interval = interval_ticks > 0 ? interval_ticks : track.gap;
            std::uint64_t end = interval > 0 ? track.last + interval : stop_ticks;
            end = std::min(end, std::max(stop_ticks, track.last));
            close_above(track, 0, end, on_slice);
        }
    }

    // Sampled threads in order of first appearance.
    std::vector<SampledTrack> tracks() const {
        std::vector<SampledTrack> out;
        out.reserve(tracks_.size());
        for (const Track& track : tracks_) {
            out.push_back(track.info);
        }
        return out;
    }

    void clear() {
        tracks_.clear();
        index_.clear();
    }

private:
    struct Open {
        const SourceLocation* location;
        std::uint64_t begin;
        std::uint64_t samples;
    };
    struct Track {
        SampledTrack info;
        const SourceLocation* name = nullptr;
        std::vector<Open> open; // outermost first
        std::uint64_t last = 0;
        std::uint64_t gap = 0;
    };

    Track& track_of(const SampleView& sample) {
        auto found = index_.find(sample.os_tid);
        if (found == index_.end()) {
            found = index_.emplace(sample.os_tid, tracks_.size()).first;
            tracks_.emplace_back();
            tracks_.back().info.os_tid = sample.os_tid;
            tracks_.back().info.name = sampled_thread_name(sample.os_tid, sample.thread_name);
            tracks_.back().name = sample.thread_name;
        }
        Track& track = tracks_[found->second];
        if (sample.thread_name != nullptr && sample.thread_name != track.name) {
            track.name = sample.thread_name;
            track.info.name = sampled_thread_name(sample.os_tid, sample.thread_name);
        }
        return track;
    }

    // Closes the slices at depth >= keep, innermost first.
    template <class OnSlice>
    void close_above(Track& track, std::size_t keep, std::uint64_t end, OnSlice& on_slice) {
        while (track.open.size() > keep) {
            const Open& open = track.open.back();
            SampleSlice slice;
            slice.os_tid = track.info.os_tid;
            slice.location = open.location;
            slice.depth = static_cast<std::uint32_t>(track.open.size() - 1);
            slice.begin = open.begin;
            slice.end = std::max(end, open.begin);
            slice.samples = open.samples;
            on_slice(static_cast<const SampleSlice&>(slice));
            track.open.pop_back();
        }
    }

    std::vector<Track> tracks_;
    std::unordered_map<std::uint64_t, std::size_t> index_;
};

} // namespace model
} // namespace pycroscope
