#pragma once
// Perfetto's native trace format: a protobuf `Trace` of TracePackets carrying
// TrackEvents, streamed to disk while the session drains; opens in
// ui.perfetto.dev and trace_processor, and is several times smaller than the
// Chrome JSON of the same run because names are interned and numbers are
// varints.
//
// Shape of the file (field numbers from Perfetto's protos, see
// tests/sinks/perfetto_trace.proto):
//   - a TrackDescriptor for the process, one per recording thread (pid, tid =
//     os_tid, name), one per counter and one per sampled thread;
//   - one packet sequence per recording thread (trusted_packet_sequence_id),
//     and one per sampled thread. A sequence starts with a packet that clears
//     its incremental state and sets its defaults (its thread's track, and a
//     sequence-scoped incremental clock from a ClockSnapshot, so each packet's
//     timestamp is a small delta from the previous one, as Perfetto's SDK
//     writes them). Event names, categories and source locations are interned
//     once per sequence (InternedData); every later packet says it needs
//     that state;
//   - spans as TYPE_SLICE_BEGIN / TYPE_SLICE_END on the thread's track, marks
//     and frame marks as TYPE_INSTANT, counters as TYPE_COUNTER (double
//     values), the traced live Python bytes as an integer counter track;
//   - stack samples as slices on a track per sampled thread (rebuilt from
//     consecutive samples, as in the Chrome trace).
// Timestamps are nanoseconds since the session started (the clock snapshot
// maps them to BOOTTIME), never going back on a sequence. An end without its
// begin is dropped and spans still open at stop end at stop (SpanStack), so
// every track is balanced.

#include "pycroscope/model/overhead_compensation.hpp"
#include "pycroscope/model/sample_decoder.hpp"
#include "pycroscope/model/sample_slices.hpp"
#include "pycroscope/core/span_stack.hpp"
#include "pycroscope/sinks/file_sink.hpp"
#include "pycroscope/sinks/json_summary_sink.hpp"
#include "pycroscope/sinks/memory_counter_track.hpp"
#include "pycroscope/sinks/per_thread_state.hpp"
#include "pycroscope/sinks/protobuf_writer.hpp"

#include <algorithm>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace pycroscope {
namespace sinks {

namespace perfetto_fields {
// Trace
constexpr std::uint32_t trace_packet = 1;
// TracePacket
constexpr std::uint32_t packet_clock_snapshot = 6;
constexpr std::uint32_t packet_timestamp = 8;
constexpr std::uint32_t packet_sequence_id = 10; // trusted_packet_sequence_id
constexpr std::uint32_t packet_track_event = 11;
constexpr std::uint32_t packet_interned_data = 12;
constexpr std::uint32_t packet_sequence_flags = 13;
constexpr std::uint32_t packet_timestamp_clock_id = 58;
constexpr std::uint32_t packet_defaults = 59; // trace_packet_defaults
constexpr std::uint32_t packet_track_descriptor = 60;
constexpr std::uint32_t seq_incremental_state_cleared = 1;
constexpr std::uint32_t seq_needs_incremental_state = 2;
// ClockSnapshot, ClockSnapshot.Clock
constexpr std::uint32_t snapshot_clocks = 1;
constexpr std::uint32_t clock_id = 1;
constexpr std::uint32_t clock_timestamp = 2;
constexpr std::uint32_t clock_is_incremental = 3;
constexpr std::uint64_t clock_boottime = 6;
constexpr std::uint64_t clock_sequence_incremental = 64; // 64..127: sequence-scoped clocks
// TracePacketDefaults, TrackEventDefaults
constexpr std::uint32_t defaults_timestamp_clock_id = 58;
constexpr std::uint32_t defaults_track_event = 11;
constexpr std::uint32_t track_event_defaults_track_uuid = 11;
// TrackDescriptor
constexpr std::uint32_t track_uuid = 1;
constexpr std::uint32_t track_name = 2;
constexpr std::uint32_t track_process = 3;
constexpr std::uint32_t track_thread = 4;
constexpr std::uint32_t track_parent_uuid = 5;
constexpr std::uint32_t track_counter = 8;
// ProcessDescriptor / ThreadDescriptor
constexpr std::uint32_t process_pid = 1;
constexpr std::uint32_t process_name = 6;
constexpr std::uint32_t thread_pid = 1;
constexpr std::uint32_t thread_tid = 2;
constexpr std::uint32_t thread_name = 5;
// CounterDescriptor
constexpr std::uint32_t counter_unit = 3;
constexpr std::uint64_t unit_size_bytes = 3;
// TrackEvent
constexpr std::uint32_t event_category_iids = 3;
constexpr std::uint32_t event_type = 9;
constexpr std::uint32_t event_name_iid = 10;
constexpr std::uint32_t event_track_uuid = 11;
constexpr std::uint32_t event_name = 23;
constexpr std::uint32_t event_counter_value = 30;
constexpr std::uint32_t event_source_location_iid = 34;
constexpr std::uint32_t event_double_counter_value = 44;
constexpr std::uint64_t type_slice_begin = 1;
constexpr std::uint64_t type_slice_end = 2;
constexpr std::uint64_t type_instant = 3;
constexpr std::uint64_t type_counter = 4;
// InternedData, EventCategory / EventName, SourceLocation
constexpr std::uint32_t interned_event_categories = 1;
constexpr std::uint32_t interned_event_names = 2;
constexpr std::uint32_t interned_source_locations = 4;
constexpr std::uint32_t interned_iid = 1;
constexpr std::uint32_t interned_name = 2;
constexpr std::uint32_t source_file_name = 2;
constexpr std::uint32_t source_function_name = 3;
constexpr std::uint32_t source_line_number = 4;
} // namespace perfetto_fields

class PerfettoTraceSink : public FileSink {
public:
    explicit PerfettoTraceSink(std::string path) : FileSink("perfetto trace", std::move(path)) {}

    // As ChromeTraceSink::set_sample_interval_ns: how long a thread's last
    // sample slice lasts (0: its last gap between samples). Before start().
    void set_sample_interval_ns(std::uint64_t ns) noexcept { sample_interval_ns_ = ns; }

protected:
    struct Empty {};
    using Stack = SpanStack<Empty>;

    // A packet sequence and what it has interned so far.
    struct Sequence {
        std::uint32_t id = 0;
        bool started = false;
        std::uint64_t default_track = 0;
        std::uint64_t last_ns = 0; // the incremental clock's value
        std::unordered_map<const SourceLocation*, std::uint64_t> names; // location -> iid
        std::uint32_t categories = 0; // bit k: category of LocationKind k interned
    };
    struct ThreadState {
        Stack stack;
        Sequence sequence;
        std::uint64_t track = 0;
        bool described = false;
        std::string described_name; // the name its descriptor carries
    };

    void open_(const SessionInfo& info) override {
        FileSink::open_(info);
        info_ = info;
        threads_.clear();
        counter_tracks_.clear();
        sample_streams_.clear();
        sample_slices_.clear();
        slices_.clear();
        next_track_ = first_dynamic_track;
        memory_track_.reset(static_cast<std::uint64_t>(100000.0 / info.calibration.ns_per_tick)); // 100 us
        memory_track_uuid_ = 0;
        out_.clear();
        namespace f = perfetto_fields;
        protobuf::Writer w(out_);
        const auto packet = w.begin(f::trace_packet);
        const auto track = w.begin(f::packet_track_descriptor);
        w.uint(f::track_uuid, process_track);
        const auto process = w.begin(f::track_process);
        w.uint(f::process_pid, info.pid);
        w.string(f::process_name, info.process_name);
        w.end(process);
        w.end(track);
        w.end(packet);
        flush_if_large();
    }

    void sink_it_(const ThreadInfo& thread, const Event* events, std::size_t count) override {
        ThreadState& state = thread_state(thread);
        for (std::size_t i = 0; i < count; ++i) {
            const Event& e = events[i];
            if (opens_span(e.kind)) {
                state.stack.push(e.location(), e.timestamp, Empty{});
                write_event(state.sequence, e.timestamp, perfetto_fields::type_slice_begin, state.track,
                            e.location());
            } else if (closes_span(e.kind)) {
                state.stack.pop(e.location(), e.timestamp, [&](const Stack::Frame&, std::uint64_t end) {
                    write_event(state.sequence, end, perfetto_fields::type_slice_end, state.track, nullptr);
                });
            } else if (e.kind == EventKind::instant || e.kind == EventKind::frame_mark ||
                       e.kind == EventKind::io_call) {
                write_event(state.sequence, e.timestamp, perfetto_fields::type_instant, state.track, e.location());
            } else if (e.kind == EventKind::counter) {
                if (model::is_overhead_counter_event(e)) {
                    continue; // the profiler's own
                }
                write_counter(state.sequence, e.timestamp, counter_track(e.location()), e.value());
            } else if (e.kind == EventKind::sample || e.kind == EventKind::sample_frame) {
                sample_streams_.push(thread.index, e, [&](const model::SampleView& sample) {
                    sample_slices_.add(sample, [&](const model::SampleSlice& slice) { slices_.push_back(slice); });
                });
            } else if (is_memory_event(e.kind) && memory_track_.add(e, thread.index)) {
                write_memory_counter(state.sequence, e.timestamp);
            }
            flush_if_large();
        }
    }

    void close_(const SessionSummary& summary) override {
        namespace f = perfetto_fields;
        threads_.for_each([&](std::uint32_t, ThreadState& state) {
            state.stack.close_all(summary.stop_ticks, [&](const Stack::Frame&, std::uint64_t end) {
                write_event(state.sequence, end, f::type_slice_end, state.track, nullptr);
            });
            flush_if_large();
        });
        if (memory_track_.pending_final() && !summary.threads.empty()) {
            write_memory_counter(threads_[summary.threads.front().index].sequence, summary.stop_ticks);
        }
        finish_samples(summary);
        for (const auto& thread : summary.threads) {
            ThreadState& state = thread_state(thread); // names set since the first batch win
            if (thread.lost > 0) {
                const std::string name = "pycroscope: " + std::to_string(thread.lost) + " events lost";
                begin_packet(state.sequence, summary.stop_ticks);
                const auto event = w_.begin(f::packet_track_event);
                w_.uint(f::event_type, f::type_instant);
                write_track(state.sequence, state.track);
                w_.string(f::event_name, name);
                w_.end(event);
                end_packet();
            }
        }
        file().write(out_);
        out_.clear();
        file().commit();
    }

    void abort_() noexcept override {
        out_.clear();
        FileSink::abort_();
    }

private:
    static constexpr std::uint64_t process_track = 1;
    static constexpr std::uint64_t first_dynamic_track = 2;

    ThreadState& thread_state(const ThreadInfo& thread) {
        ThreadState& state = threads_[thread.index];
        if (state.track == 0) {
            state.track = next_track_++;
            state.sequence.id = 1 + thread.index;
            state.sequence.default_track = state.track;
        }
        if (!state.described || state.described_name != thread.name) {
            state.described = true;
            state.described_name = thread.name;
            namespace f = perfetto_fields;
            const auto packet = w_.begin(f::trace_packet);
            const auto track = w_.begin(f::packet_track_descriptor);
            w_.uint(f::track_uuid, state.track);
            w_.uint(f::track_parent_uuid, process_track);
            const auto descriptor = w_.begin(f::track_thread);
            w_.uint(f::thread_pid, info_.pid);
            w_.uint(f::thread_tid, thread.os_tid != 0 ? thread.os_tid : thread.index);
            w_.string(f::thread_name, thread.name.empty() ? "thread-" + std::to_string(thread.index) : thread.name);
            w_.end(descriptor);
            w_.end(track);
            w_.end(packet);
        }
        return state;
    }

    std::uint64_t timestamp_ns(std::uint64_t ticks) const noexcept {
        const std::int64_t ns = info_.session_ns(ticks);
        return ns > 0 ? static_cast<std::uint64_t>(ns) : 0;
    }

    void begin_packet(Sequence& sequence, std::uint64_t ticks) {
        namespace f = perfetto_fields;
        const std::uint64_t ns = std::max(timestamp_ns(ticks), sequence.last_ns);
        if (!sequence.started) {
            start_sequence(sequence, ns);
        }
        packet_ = w_.begin(f::trace_packet);
        w_.uint(f::packet_timestamp, ns - sequence.last_ns);
        sequence.last_ns = ns;
        w_.uint(f::packet_sequence_id, sequence.id);
        w_.uint(f::packet_sequence_flags, f::seq_needs_incremental_state);
    }

    // The first packet of a sequence: clears its state, sets the defaults
    // and starts the incremental clock at ns.
    void start_sequence(Sequence& sequence, std::uint64_t ns) {
        namespace f = perfetto_fields;
        sequence.started = true;
        sequence.last_ns = ns;
        const auto packet = w_.begin(f::trace_packet);
        w_.uint(f::packet_timestamp, ns);
        w_.uint(f::packet_timestamp_clock_id, f::clock_boottime);
        w_.uint(f::packet_sequence_id, sequence.id);
        w_.uint(f::packet_sequence_flags, f::seq_incremental_state_cleared);
        const auto defaults = w_.begin(f::packet_defaults);
        w_.uint(f::defaults_timestamp_clock_id, f::clock_sequence_incremental);
        if (sequence.default_track != 0) {
            const auto event_defaults = w_.begin(f::defaults_track_event);
            w_.uint(f::track_event_defaults_track_uuid, sequence.default_track);
            w_.end(event_defaults);
        }
        w_.end(defaults);
        const auto snapshot = w_.begin(f::packet_clock_snapshot);
        const auto incremental = w_.begin(f::snapshot_clocks);
        w_.uint(f::clock_id, f::clock_sequence_incremental);
        w_.uint(f::clock_timestamp, ns);
        w_.boolean(f::clock_is_incremental, true);
        w_.end(incremental);
        const auto boottime = w_.begin(f::snapshot_clocks);
        w_.uint(f::clock_id, f::clock_boottime);
        w_.uint(f::clock_timestamp, ns);
        w_.end(boottime);
        w_.end(snapshot);
        w_.end(packet);
    }

    // The event's track, unless it is the sequence's default.
    void write_track(const Sequence& sequence, std::uint64_t track) {
        if (track != sequence.default_track) {
            w_.uint(perfetto_fields::event_track_uuid, track);
        }
    }
    void end_packet() { w_.end(packet_); }

    // A track event; location names it (null for slice ends).
    void write_event(Sequence& sequence, std::uint64_t ticks, std::uint64_t type, std::uint64_t track,
                     const SourceLocation* location) {
        namespace f = perfetto_fields;
        begin_packet(sequence, ticks);
        std::uint64_t iid = 0;
        if (location != nullptr) {
            iid = intern(sequence, location);
        }
        const auto event = w_.begin(f::packet_track_event);
        w_.uint(f::event_type, type);
        write_track(sequence, track);
        if (location != nullptr) {
            w_.uint(f::event_category_iids, category_iid(location->kind));
            w_.uint(f::event_name_iid, iid);
            if (has_source(*location)) {
                w_.uint(f::event_source_location_iid, iid);
            }
        }
        w_.end(event);
        end_packet();
    }

    static bool has_source(const SourceLocation& location) noexcept {
        return location.kind == LocationKind::python_function || location.kind == LocationKind::native_zone ||
               location.kind == LocationKind::python_line;
    }
    static std::uint64_t category_iid(LocationKind kind) noexcept { return static_cast<std::uint64_t>(kind) + 1; }

    // The iid of location's name (and source location) on sequence; writes
    // InternedData into the open packet on first use.
    std::uint64_t intern(Sequence& sequence, const SourceLocation* location) {
        auto found = sequence.names.find(location);
        if (found != sequence.names.end()) {
            return found->second;
        }
        namespace f = perfetto_fields;
        const std::uint64_t iid = sequence.names.size() + 1;
        sequence.names.emplace(location, iid);
        const auto interned = w_.begin(f::packet_interned_data);
        const auto kind_bit = std::uint32_t{1} << static_cast<std::uint32_t>(location->kind);
        if ((sequence.categories & kind_bit) == 0) {
            sequence.categories |= kind_bit;
            const auto category = w_.begin(f::interned_event_categories);
            w_.uint(f::interned_iid, category_iid(location->kind));
            w_.string(f::interned_name, kind_name(location->kind));
            w_.end(category);
        }
        const char* name = location->display_name();
        const auto event_name = w_.begin(f::interned_event_names);
        w_.uint(f::interned_iid, iid);
        w_.string(f::interned_name, name != nullptr ? name : "");
        w_.end(event_name);
        if (has_source(*location)) {
            const auto source = w_.begin(f::interned_source_locations);
            w_.uint(f::interned_iid, iid);
            w_.string(f::source_file_name, location->file != nullptr ? location->file : "");
            w_.string(f::source_function_name, location->function != nullptr ? location->function : "");
            w_.uint(f::source_line_number, location->line);
            w_.end(source);
        }
        w_.end(interned);
        return iid;
    }

    // A counter track under the process, described on first use.
    std::uint64_t counter_track(const SourceLocation* location) {
        auto found = counter_tracks_.find(location);
        if (found != counter_tracks_.end()) {
            return found->second;
        }
        const std::uint64_t uuid = next_track_++;
        counter_tracks_.emplace(location, uuid);
        describe_track(uuid, location != nullptr ? location->display_name() : "counter", true, false);
        return uuid;
    }

    void describe_track(std::uint64_t uuid, const std::string& name, bool counter, bool bytes) {
        namespace f = perfetto_fields;
        const auto packet = w_.begin(f::trace_packet);
        const auto track = w_.begin(f::packet_track_descriptor);
        w_.uint(f::track_uuid, uuid);
        w_.uint(f::track_parent_uuid, process_track);
        w_.string(f::track_name, name);
        if (counter) {
            const auto descriptor = w_.begin(f::track_counter);
            if (bytes) {
                w_.uint(f::counter_unit, f::unit_size_bytes);
            }
            w_.end(descriptor);
        }
        w_.end(track);
        w_.end(packet);
    }

    void write_counter(Sequence& sequence, std::uint64_t ticks, std::uint64_t track, double value) {
        namespace f = perfetto_fields;
        begin_packet(sequence, ticks);
        const auto event = w_.begin(f::packet_track_event);
        w_.uint(f::event_type, f::type_counter);
        write_track(sequence, track);
        w_.float64(f::event_double_counter_value, value);
        w_.end(event);
        end_packet();
    }

    void write_memory_counter(Sequence& sequence, std::uint64_t ticks) {
        namespace f = perfetto_fields;
        if (memory_track_uuid_ == 0) {
            memory_track_uuid_ = next_track_++;
            describe_track(memory_track_uuid_, memory_counter_location.name, true, true);
        }
        begin_packet(sequence, ticks);
        const auto event = w_.begin(f::packet_track_event);
        w_.uint(f::event_type, f::type_counter);
        write_track(sequence, memory_track_uuid_);
        w_.int64(f::event_counter_value, static_cast<std::int64_t>(memory_track_.value()));
        w_.end(event);
        end_packet();
    }

    // Sample slices close innermost first, so a parent would follow its
    // child in the file; they are sorted per track (begin, then depth) and
    // written as properly nested begin/end pairs.
    void finish_samples(const SessionSummary& summary) {
        namespace f = perfetto_fields;
        const auto interval = static_cast<std::uint64_t>(
            static_cast<double>(sample_interval_ns_) / info_.calibration.ns_per_tick + 0.5);
        sample_slices_.finish(summary.stop_ticks, interval,
                              [&](const model::SampleSlice& slice) { slices_.push_back(slice); });
        std::stable_sort(slices_.begin(), slices_.end(),
                         [](const model::SampleSlice& a, const model::SampleSlice& b) {
                             if (a.os_tid != b.os_tid) {
                                 return a.os_tid < b.os_tid;
                             }
                             return a.begin != b.begin ? a.begin < b.begin : a.depth < b.depth;
                         });
        // A sequence per sampled track, numbered after the recording threads'.
        std::unordered_map<std::uint64_t, Sequence> tracks; // os_tid -> its sequence
        std::uint32_t sequence_id = 1;
        threads_.for_each([&](std::uint32_t, ThreadState& state) {
            sequence_id = std::max(sequence_id, state.sequence.id);
        });
        for (const auto& track : sample_slices_.tracks()) {
            Sequence& sequence = tracks[track.os_tid];
            sequence.id = ++sequence_id;
            sequence.default_track = next_track_++;
            describe_track(sequence.default_track, "samples: " + track.name, false, false);
        }
        std::vector<const model::SampleSlice*> open;
        std::uint64_t current_tid = 0;
        auto close_until = [&](std::size_t keep, std::uint64_t limit, bool all) {
            while (open.size() > keep && (all || open.back()->end <= limit)) {
                Sequence& sequence = tracks[current_tid];
                write_event(sequence, open.back()->end, f::type_slice_end, sequence.default_track, nullptr);
                open.pop_back();
            }
        };
        for (const auto& slice : slices_) {
            if (slice.os_tid != current_tid) {
                close_until(0, 0, true);
                current_tid = slice.os_tid;
            }
            close_until(slice.depth, slice.begin, true);
            close_until(0, slice.begin, false);
            Sequence& sequence = tracks[current_tid];
            write_event(sequence, slice.begin, f::type_slice_begin, sequence.default_track, slice.location);
            open.push_back(&slice);
            flush_if_large();
        }
        close_until(0, 0, true);
        slices_.clear();
    }

    void flush_if_large() {
        if (out_.size() >= (1u << 20)) {
            file().write(out_);
            out_.clear();
        }
    }

    SessionInfo info_;
    std::string out_;
    protobuf::Writer w_{out_};
    protobuf::Writer::Mark packet_{0};
    PerThreadState<ThreadState> threads_;
    std::unordered_map<const SourceLocation*, std::uint64_t> counter_tracks_;
    std::uint64_t next_track_ = first_dynamic_track;
    MemoryCounterTrack memory_track_;
    std::uint64_t memory_track_uuid_ = 0;
    model::SampleStreams sample_streams_;
    model::SampleSliceBuilder sample_slices_;
    std::vector<model::SampleSlice> slices_;
    std::uint64_t sample_interval_ns_ = 0;
};

} // namespace sinks
} // namespace pycroscope
