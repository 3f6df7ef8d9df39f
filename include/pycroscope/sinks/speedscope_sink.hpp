#pragma once
// speedscope's own file format (https://www.speedscope.app/file-format-schema.json),
// which keeps what folded stacks lose: time order, each thread's timeline and
// source positions. One file holds, sharing one frame table:
//   - an evented profile per recording thread that traced spans: "O"/"C"
//     events in ns since the session started, balanced (an end without its
//     begin is dropped, what is open at stop closes at stop) and in
//     non-decreasing time order;
//   - a sampled profile per sampled thread (sampling mode): one stack per
//     sample, in time order, each weighing one sample (unit "none");
//   - a sampled profile "allocated bytes" (unit "bytes") when allocations were
//     traced: one entry per distinct allocation stack (thread, open spans,
//     allocating line) weighted by the bytes allocated there.
// Events are kept compact (varints) until close, when the JSON is written.

#include "pycroscope/model/sample_decoder.hpp"
#include "pycroscope/core/location_tree.hpp"
#include "pycroscope/core/span_stack.hpp"
#include "pycroscope/sinks/file_sink.hpp"
#include "pycroscope/sinks/json_writer.hpp"
#include "pycroscope/sinks/memory_folded_sink.hpp"
#include "pycroscope/sinks/per_thread_state.hpp"
#include "pycroscope/sinks/protobuf_writer.hpp"
#include "pycroscope/version.hpp"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace pycroscope {
namespace sinks {

class SpeedscopeSink : public FileSink {
public:
    explicit SpeedscopeSink(std::string path) : FileSink("speedscope profile", std::move(path)) {}

protected:
    struct Empty {};
    using Stack = SpanStack<Empty>;
    struct ThreadState {
        Stack stack;
        std::string events;   // per event: varint ns delta, varint frame << 1 | close
        std::uint64_t last_ns = 0;
        std::uint64_t count = 0;
        StackPosition position; // for allocations
    };
    struct SampledTrack {
        std::string name;
        std::vector<std::uint32_t> frames; // per sample: depth, then its frames outermost first
        std::uint64_t samples = 0;
        std::uint64_t first_ns = 0;
        std::uint64_t last_ns = 0;
    };

    void open_(const SessionInfo& info) override {
        FileSink::open_(info);
        info_ = info;
        threads_.clear();
        frames_.clear();
        frame_index_.clear();
        sample_streams_.clear();
        sampled_.clear();
        sampled_order_.clear();
        tree_.clear();
        allocated_.clear();
        thread_frames_.clear();
        thread_names_.clear();
        thread_locations_.clear();
    }

    void sink_it_(const ThreadInfo& thread, const Event* events, std::size_t count) override {
        ThreadState& state = threads_[thread.index];
        for (std::size_t i = 0; i < count; ++i) {
            const Event& e = events[i];
            if (opens_span(e.kind)) {
                state.stack.push(e.location(), e.timestamp, Empty{});
                add_event(state, e.timestamp, frame(e.location()), false);
                state.position.add(e, tree_);
            } else if (closes_span(e.kind)) {
                state.stack.pop(e.location(), e.timestamp, [&](const Stack::Frame& closed, std::uint64_t end) {
                    add_event(state, end, frame(closed.location), true);
                });
                state.position.add(e, tree_);
            } else if (e.kind == EventKind::sample || e.kind == EventKind::sample_frame) {
                sample_streams_.push(thread.index, e, [&](const model::SampleView& sample) { add_sample(sample); });
            } else if (e.kind == EventKind::mem_alloc) {
                const SourceLocation* line = e.location() != nullptr ? e.location() : &unattributed_allocation;
                const std::uint32_t leaf = tree_.child(state.position.node(), line);
                allocated_[(static_cast<std::uint64_t>(thread.index) << 32) | leaf] += memory_bytes(e);
            }
        }
    }

    void close_(const SessionSummary& summary) override {
        const std::uint64_t stop_ns = ns(summary.stop_ticks);
        threads_.for_each([&](std::uint32_t, ThreadState& state) {
            state.stack.close_all(summary.stop_ticks, [&](const Stack::Frame& closed, std::uint64_t end) {
                add_event(state, end, frame(closed.location), true);
            });
        });
        // Allocation stacks are turned into frame lists before the frame table is written.
        struct Allocation {
            std::string thread;
            std::vector<std::uint32_t> frames;
            std::uint64_t bytes;
        };
        std::vector<Allocation> allocations;
        for (const auto& entry : allocated_) {
            if (entry.second == 0) {
                continue;
            }
            const auto index = static_cast<std::uint32_t>(entry.first >> 32);
            Allocation a{thread_name(summary, index), {}, entry.second};
            a.frames.push_back(thread_frame(a.thread));
            for (const SourceLocation* location : tree_.path(static_cast<std::uint32_t>(entry.first))) {
                a.frames.push_back(frame(location));
            }
            allocations.push_back(std::move(a));
        }
        std::sort(allocations.begin(), allocations.end(), [](const Allocation& a, const Allocation& b) {
            return a.thread != b.thread ? a.thread < b.thread : a.frames < b.frames;
        });

        std::string out = "{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\",\"exporter\":"
                          "\"pycroscope@" PYCROSCOPE_VERSION_STRING "\",\"name\":\"";
        append_json_escaped(out, info_.process_name);
        out += "\",\"activeProfileIndex\":0,\"shared\":{\"frames\":[";
        for (std::size_t i = 0; i < frames_.size(); ++i) {
            const SourceLocation* location = frames_[i];
            out += i == 0 ? "\n{\"name\":\"" : ",\n{\"name\":\"";
            append_json_escaped(out, location->display_name() != nullptr ? location->display_name() : "");
            out += '"';
            if (location->file != nullptr && location->file[0] != '\0') {
                out += ",\"file\":\"";
                append_json_escaped(out, location->file);
                out += "\",\"line\":";
                append_unsigned(out, location->line);
            }
            out += '}';
        }
        out += "]},\"profiles\":[";
        bool first_profile = true;
        auto begin_profile = [&](const char* type, const std::string& name, const char* unit, std::uint64_t start,
                                 std::uint64_t end) {
            out += first_profile ? "\n{\"type\":\"" : ",\n{\"type\":\"";
            first_profile = false;
            out += type;
            out += "\",\"name\":\"";
            append_json_escaped(out, name);
            out += "\",\"unit\":\"";
            out += unit;
            out += "\",\"startValue\":";
            append_unsigned(out, start);
            out += ",\"endValue\":";
            append_unsigned(out, std::max(start, end));
        };
        threads_.for_each([&](std::uint32_t index, ThreadState& state) {
            if (state.count == 0) {
                return;
            }
            begin_profile("evented", thread_name(summary, index), "nanoseconds", 0, std::max(stop_ns, state.last_ns));
            out += ",\"events\":[";
            write_events(out, state);
            out += "]}";
            flush_if_large(out);
        });
        for (const std::uint64_t os_tid : sampled_order_) {
            const SampledTrack& track = sampled_.at(os_tid);
            begin_profile("sampled", track.name, "none", track.first_ns, std::max(track.last_ns, stop_ns));
            out += ",\"samples\":[";
            std::size_t at = 0;
            for (std::uint64_t s = 0; s < track.samples; ++s) {
                const std::uint32_t depth = track.frames[at++];
                out += s == 0 ? "[" : ",[";
                for (std::uint32_t d = 0; d < depth; ++d) {
                    if (d > 0) {
                        out += ',';
                    }
                    append_unsigned(out, track.frames[at++]);
                }
                out += ']';
                flush_if_large(out);
            }
            out += "],\"weights\":[";
            for (std::uint64_t s = 0; s < track.samples; ++s) {
                out += s == 0 ? "1" : ",1";
            }
            out += "]}";
        }
        if (!allocations.empty()) {
            std::uint64_t total = 0;
            for (const auto& a : allocations) {
                total += a.bytes;
            }
            begin_profile("sampled", "allocated bytes", "bytes", 0, total);
            out += ",\"samples\":[";
            bool first = true;
            for (const auto& a : allocations) {
                out += first ? "[" : ",[";
                first = false;
                for (std::size_t i = 0; i < a.frames.size(); ++i) {
                    if (i > 0) {
                        out += ',';
                    }
                    append_unsigned(out, a.frames[i]);
                }
                out += ']';
            }
            out += "],\"weights\":[";
            first = true;
            for (const auto& a : allocations) {
                if (!first) {
                    out += ',';
                }
                first = false;
                append_unsigned(out, a.bytes);
            }
            out += "]}";
        }
        out += "\n]}\n";
        file().write(out);
        file().commit();
    }

private:
    std::uint64_t ns(std::uint64_t ticks) const noexcept {
        const std::int64_t value = info_.session_ns(ticks);
        return value > 0 ? static_cast<std::uint64_t>(value) : 0;
    }

    static std::string thread_name(const SessionSummary& summary, std::uint32_t index) {
        const ThreadInfo* thread = summary.thread(index);
        return thread != nullptr && !thread->name.empty() ? thread->name : "thread-" + std::to_string(index);
    }

    std::uint32_t frame(const SourceLocation* location) {
        if (location == nullptr) {
            location = &model::unknown_sample_frame;
        }
        auto found = frame_index_.find(location);
        if (found != frame_index_.end()) {
            return found->second;
        }
        const auto index = static_cast<std::uint32_t>(frames_.size());
        frames_.push_back(location);
        frame_index_.emplace(location, index);
        return index;
    }

    // The frame standing for a thread at the root of allocation stacks.
    std::uint32_t thread_frame(const std::string& name) {
        auto found = thread_frames_.find(name);
        if (found != thread_frames_.end()) {
            return found->second;
        }
        thread_names_.push_back(name);
        const char* text = thread_names_.back().c_str();
        thread_locations_.push_back(SourceLocation{text, text, "", 0, LocationKind::other});
        const std::uint32_t index = frame(&thread_locations_.back());
        thread_frames_.emplace(name, index);
        return index;
    }

    void add_event(ThreadState& state, std::uint64_t ticks, std::uint32_t frame_index, bool close) {
        const std::uint64_t at = std::max(ns(ticks), state.last_ns); // the file's times never go back
        protobuf::append_varint(state.events, at - state.last_ns);
        protobuf::append_varint(state.events, (static_cast<std::uint64_t>(frame_index) << 1) | (close ? 1 : 0));
        state.last_ns = at;
        ++state.count;
    }

    static void write_events(std::string& out, const ThreadState& state) {
        const auto* p = reinterpret_cast<const std::uint8_t*>(state.events.data());
        const auto* end = p + state.events.size();
        std::uint64_t at = 0;
        bool first = true;
        while (p < end) {
            at += read_varint(p);
            const std::uint64_t code = read_varint(p);
            out += first ? "{\"type\":\"" : ",{\"type\":\"";
            first = false;
            out += (code & 1) != 0 ? "C\",\"frame\":" : "O\",\"frame\":";
            append_unsigned(out, code >> 1);
            out += ",\"at\":";
            append_unsigned(out, at);
            out += '}';
        }
    }

    static std::uint64_t read_varint(const std::uint8_t*& p) noexcept {
        std::uint64_t value = 0;
        for (unsigned shift = 0;; shift += 7) {
            const std::uint8_t byte = *p++;
            value |= static_cast<std::uint64_t>(byte & 0x7F) << shift;
            if ((byte & 0x80) == 0) {
                return value;
            }
        }
    }

    void add_sample(const model::SampleView& sample) {
        auto found = sampled_.find(sample.os_tid);
        if (found == sampled_.end()) {
            found = sampled_.emplace(sample.os_tid, SampledTrack{}).first;
            sampled_order_.push_back(sample.os_tid);
            found->second.first_ns = ns(sample.timestamp);
        }
        SampledTrack& track = found->second;
        track.name = model::sampled_thread_name(sample.os_tid, sample.thread_name);
        track.frames.push_back(static_cast<std::uint32_t>(sample.depth));
        for (std::size_t i = 0; i < sample.depth; ++i) {
            track.frames.push_back(frame(sample.frames[i].location));
        }
        ++track.samples;
        track.last_ns = std::max(track.last_ns, ns(sample.timestamp));
    }

    void flush_if_large(std::string& out) {
        if (out.size() >= (1u << 20)) {
            file().write(out);
            out.clear();
        }
    }

    SessionInfo info_;
    PerThreadState<ThreadState> threads_;
    std::vector<const SourceLocation*> frames_;
    std::unordered_map<const SourceLocation*, std::uint32_t> frame_index_;
    std::map<std::string, std::uint32_t> thread_frames_;
    std::deque<std::string> thread_names_;          // stable addresses
    std::deque<SourceLocation> thread_locations_;
    model::SampleStreams sample_streams_;
    std::unordered_map<std::uint64_t, SampledTrack> sampled_;
    std::vector<std::uint64_t> sampled_order_;
    LocationTree tree_;
    std::unordered_map<std::uint64_t, std::uint64_t> allocated_; // thread index << 32 | leaf -> bytes
};

} // namespace sinks
} // namespace pycroscope
