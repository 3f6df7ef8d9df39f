#pragma once
// Chrome Trace Event JSON, streamed to disk while the session drains; opens
// in Perfetto UI (ui.perfetto.dev) and chrome://tracing. Spans become
// complete ("X") events written when they end, so a lost begin or end never
// leaves a dangling slice. Threads are named with "M" metadata events; lost
// events are an instant on their thread and a count in "otherData".
// Stack samples become slices rebuilt from consecutive samples (see
// analysis/sample_slices.hpp) on a track per sampled thread, tid = os_tid.

#include "pycroscope/model/overhead_compensation.hpp"
#include "pycroscope/model/sample_decoder.hpp"
#include "pycroscope/model/sample_slices.hpp"
#include "pycroscope/core/span_stack.hpp"
#include "pycroscope/sinks/file_sink.hpp"
#include "pycroscope/sinks/json_summary_sink.hpp"
#include "pycroscope/sinks/json_writer.hpp"
#include "pycroscope/sinks/memory_counter_track.hpp"
#include "pycroscope/sinks/per_thread_state.hpp"

#include <cstdint>
#include <cstring>
#include <string>
#include <unordered_map>

namespace pycroscope {
namespace sinks {

class ChromeTraceSink : public FileSink {
public:
    explicit ChromeTraceSink(std::string path) : FileSink("chrome trace", std::move(path)) {}

    // The sampling interval: the last sample slice of a thread lasts one
    // interval (0: the thread's last gap between samples). Before start().
    void set_sample_interval_ns(std::uint64_t ns) noexcept { sample_interval_ns_ = ns; }

protected:
    struct Empty {};
    using Stack = SpanStack<Empty>;
    // Per recording thread: its open spans and the text all its events repeat.
    struct ThreadState {
        Stack stack;
        std::string ids; // ,"pid":P,"tid":T,"ts":
    };

    void open_(const SessionInfo& info) override {
        FileSink::open_(info);
        info_ = info;
        stacks_.clear();
        sample_streams_.clear();
        sample_slices_.clear();
        fragments_.clear();
        for (auto& slot : fragment_cache_) {
            slot = CachedFragment{};
        }
        memory_track_.reset(static_cast<std::uint64_t>(100000.0 / info.calibration.ns_per_tick)); // 100 us
        common_.clear();
        common_ += ",\"pid\":";
        append_unsigned(common_, info.pid);
        common_ += ",\"tid\":";
        out_.clear();
        out_ += "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n";
        out_ += "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":";
        append_unsigned(out_, info.pid);
        out_ += ",\"tid\":0,\"args\":{\"name\":\"";
        append_json_escaped(out_, info.process_name);
        out_ += "\"}}";
        flush_if_large();
    }

    void sink_it_(const ThreadInfo& thread, const Event* events, std::size_t count) override {
        ThreadState& state = thread_state(thread.index);
        for (std::size_t i = 0; i < count; ++i) {
            const Event& e = events[i];
            if (opens_span(e.kind)) {
                state.stack.push(e.location(), e.timestamp, Empty{});
            } else if (closes_span(e.kind)) {
                state.stack.pop(e.location(), e.timestamp, [&](const Stack::Frame& frame, std::uint64_t end) {
                    write_complete(state, frame, end);
                });
            } else if (e.kind == EventKind::sample || e.kind == EventKind::sample_frame) {
                add_sample_event(thread.index, e);
            } else if (e.kind == EventKind::instant) {
                begin_event(",\n{\"ph\":\"i\",\"s\":\"t\"", state, e.timestamp, e.location());
                out_ += '}';
            } else if (e.kind == EventKind::frame_mark) {
                begin_event(",\n{\"ph\":\"i\",\"s\":\"p\"", state, e.timestamp, e.location());
                out_ += '}';
            } else if (e.kind == EventKind::counter && !model::is_overhead_counter_event(e)) {
                begin_event(",\n{\"ph\":\"C\"", state, e.timestamp, e.location());
                literal(",\"args\":{\"value\":");
                append_double(out_, e.value());
                literal("}}");
            } else if (is_memory_event(e.kind) && memory_track_.add(e, thread.index)) {
                write_memory_counter(state, e.timestamp);
            }
            flush_if_large();
        }
    }

    void close_(const SessionSummary& summary) override {
        stacks_.for_each([&](std::uint32_t, ThreadState& state) {
            state.stack.close_all(summary.stop_ticks, [&](const Stack::Frame& frame, std::uint64_t end) {
                write_complete(state, frame, end);
            });
            flush_if_large();
        });
        finish_samples(summary);
        if (memory_track_.pending_final() && !summary.threads.empty()) {
            write_memory_counter(thread_state(summary.threads.front().index), summary.stop_ticks);
        }
        for (const auto& thread : summary.threads) {
            out_ += ",\n{\"ph\":\"M\",\"name\":\"thread_name\"";
            out_ += common_;
            append_unsigned(out_, thread.index);
            out_ += ",\"args\":{\"name\":\"";
            append_json_escaped(out_, thread.name);
            out_ += "\"}},\n{\"ph\":\"M\",\"name\":\"thread_sort_index\"";
            out_ += common_;
            append_unsigned(out_, thread.index);
            out_ += ",\"args\":{\"sort_index\":";
            append_unsigned(out_, thread.index);
            out_ += "}}";
            if (thread.lost > 0) {
                out_ += ",\n{\"ph\":\"i\",\"s\":\"t\",\"name\":\"pycroscope: ";
                append_unsigned(out_, thread.lost);
                out_ += " events lost\",\"cat\":\"pycroscope\"";
                out_ += common_;
                append_unsigned(out_, thread.index);
                out_ += ",\"ts\":";
                append_ns_as_us(out_, info_.session_ns(summary.stop_ticks));
                out_ += '}';
            }
        }
        out_ += "\n],\"otherData\":";
        JsonWriter json(out_);
        json.begin_object();
        json.field("producer", "pycroscope")
            .field("duration_ns", summary.duration_ns)
            .field("events_total", summary.total_events)
            .field("lost_events", summary.total_lost)
            .field("clock", clock::to_string(info_.calibration.source));
        for (const auto& m : info_.metadata) {
            json.field(m.first, m.second);
        }
        json.end_object();
        out_ += "}\n";
        file().write(out_);
        out_.clear();
        file().commit();
    }

    void abort_() noexcept override {
        out_.clear();
        FileSink::abort_();
    }

private:
    // Room for the longest head, the ids and a timestamp.
    static constexpr std::size_t line_buffer = 128;

    template <std::size_t N>
    void literal(const char (&text)[N]) {
        out_.append(text, N - 1);
    }

    ThreadState& thread_state(std::uint32_t index) {
        ThreadState& state = stacks_[index];
        if (state.ids.empty()) {
            state.ids = common_;
            append_unsigned(state.ids, index);
            state.ids += ",\"ts\":";
        }
        return state;
    }

    // head is the event's opening up to its phase, e.g. ,\n{"ph":"C". Appends
    // head, pid, tid, ts, name and category; the caller closes the object.
    template <std::size_t N>
    void begin_event(const char (&head)[N], const ThreadState& state, std::uint64_t timestamp,
                     const SourceLocation* location) {
        static_assert(N - 1 <= 32, "event head too long for the line buffer");
        char line[line_buffer];
        char* p = line;
        std::memcpy(p, head, N - 1);
        p += N - 1;
        if (state.ids.size() <= line_buffer - 32 - 25) {
            std::memcpy(p, state.ids.data(), state.ids.size());
            p += state.ids.size();
        } else { // never with real pids and thread indices; kept correct anyway
            out_.append(line, static_cast<std::size_t>(p - line));
            out_ += state.ids;
            p = line;
        }
        p = write_ns_as_us(p, info_.session_ns(timestamp));
        out_.append(line, static_cast<std::size_t>(p - line));
        out_ += fragment(location);
    }

    void write_complete(const ThreadState& state, const Stack::Frame& frame, std::uint64_t end) {
        begin_event(",\n{\"ph\":\"X\"", state, frame.begin, frame.location);
        // The converted end minus the converted begin, not the converted
        // length: with a fractional ns_per_tick, rounding the length could
        // make a child end after the parent it ends with.
        const std::int64_t begin_ns = info_.session_ns(frame.begin);
        const std::int64_t end_ns = end > frame.begin ? info_.session_ns(end) : begin_ns;
        char line[40] = ",\"dur\":";
        char* p = write_ns_as_us(line + 7, end_ns - begin_ns);
        *p++ = '}';
        out_.append(line, static_cast<std::size_t>(p - line));
    }

    void write_memory_counter(const ThreadState& state, std::uint64_t timestamp) {
        begin_event(",\n{\"ph\":\"C\"", state, timestamp, &memory_counter_location);
        literal(",\"args\":{\"bytes\":");
        append_unsigned(out_, memory_track_.value());
        literal("}}");
    }

    // The escaped name/category (and source position for Python code) of a
    // location, rendered once.
    const std::string& fragment(const SourceLocation* location) {
        // A direct-mapped cache in front of the map: map values never move.
        CachedFragment& slot =
            fragment_cache_[(reinterpret_cast<std::uintptr_t>(location) / sizeof(SourceLocation)) %
                            fragment_cache_size];
        if (slot.location == location && location != nullptr) {
            return *slot.text;
        }
        auto found = fragments_.find(location);
        if (found != fragments_.end()) {
            slot = CachedFragment{location, &found->second};
            return found->second;
        }
        std::string text = ",\"name\":\"";
        append_json_escaped(text, location->display_name());
        text += "\",\"cat\":\"";
        text += kind_name(location->kind);
        text += '"';
        if (location->kind == LocationKind::python_function || location->kind == LocationKind::python_line) {
            text += ",\"args\":{\"file\":\"";
            append_json_escaped(text, location->file);
            text += "\",\"line\":";
            append_unsigned(text, location->line);
            text += '}';
        }
        const std::string& stored = fragments_.emplace(location, std::move(text)).first->second;
        slot = CachedFragment{location, &stored};
        return stored;
    }

    void add_sample_event(std::uint32_t producer, const Event& e) {
        sample_streams_.push(producer, e, [&](const model::SampleView& sample) {
            sample_slices_.add(sample, [&](const model::SampleSlice& slice) { write_sample_slice(slice); });
        });
    }

    void finish_samples(const SessionSummary& summary) {
        const auto interval = static_cast<std::uint64_t>(
            static_cast<double>(sample_interval_ns_) / info_.calibration.ns_per_tick + 0.5);
        sample_slices_.finish(summary.stop_ticks, interval,
                              [&](const model::SampleSlice& slice) { write_sample_slice(slice); });
        // Sampled tracks are named from the samples and sorted after the recording threads.
        std::uint64_t order = 0;
        for (const auto& track : sample_slices_.tracks()) {
            out_ += ",\n{\"ph\":\"M\",\"name\":\"thread_name\"";
            out_ += common_;
            append_unsigned(out_, track.os_tid);
            out_ += ",\"args\":{\"name\":\"";
            append_json_escaped(out_, track.name);
            out_ += "\"}},\n{\"ph\":\"M\",\"name\":\"thread_sort_index\"";
            out_ += common_;
            append_unsigned(out_, track.os_tid);
            out_ += ",\"args\":{\"sort_index\":";
            append_unsigned(out_, 1000000 + order++);
            out_ += "}}";
        }
        flush_if_large();
    }

    // A complete event on the sampled thread's track with the samples it covers.
    void write_sample_slice(const model::SampleSlice& slice) {
        const std::int64_t begin_ns = info_.session_ns(slice.begin);
        const std::int64_t end_ns = slice.end > slice.begin ? info_.session_ns(slice.end) : begin_ns;
        out_ += ",\n{\"ph\":\"X\"";
        out_ += common_;
        append_unsigned(out_, slice.os_tid);
        out_ += ",\"ts\":";
        append_ns_as_us(out_, begin_ns);
        out_ += ",\"dur\":";
        append_ns_as_us(out_, end_ns - begin_ns);
        out_ += ",\"name\":\"";
        append_json_escaped(out_, slice.location->display_name());
        out_ += "\",\"cat\":\"sample\",\"args\":{\"samples\":";
        append_unsigned(out_, slice.samples);
        if (slice.location->kind == LocationKind::python_function) {
            out_ += ",\"file\":\"";
            append_json_escaped(out_, slice.location->file);
            out_ += "\",\"line\":";
            append_unsigned(out_, slice.location->line);
        }
        out_ += "}}";
        flush_if_large();
    }

    void flush_if_large() {
        if (out_.size() >= (1u << 20)) {
            file().write(out_);
            out_.clear();
        }
    }

    SessionInfo info_;
    std::string common_; // ,"pid":N,"tid":
    std::string out_;
    PerThreadState<ThreadState> stacks_;
    MemoryCounterTrack memory_track_;
    model::SampleStreams sample_streams_;
    model::SampleSliceBuilder sample_slices_;
    std::uint64_t sample_interval_ns_ = 0;
    std::unordered_map<const SourceLocation*, std::string> fragments_;
    struct CachedFragment {
        const SourceLocation* location = nullptr;
        const std::string* text = nullptr;
    };
    static constexpr std::size_t fragment_cache_size = 256;
    CachedFragment fragment_cache_[fragment_cache_size];
};

} // namespace sinks
} // namespace pycroscope
