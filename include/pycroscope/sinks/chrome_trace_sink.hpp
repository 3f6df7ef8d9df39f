#pragma once
// Chrome Trace Event JSON, streamed to disk while the session drains; opens
// in Perfetto UI (ui.perfetto.dev) and chrome://tracing. Spans become
// complete ("X") events written when they end, so a lost begin or end never
// leaves a dangling slice. Threads are named with "M" metadata events; lost
// events are an instant on their thread and a count in "otherData".

#include "pycroscope/core/span_stack.hpp"
#include "pycroscope/sinks/file_sink.hpp"
#include "pycroscope/sinks/json_summary_sink.hpp"
#include "pycroscope/sinks/json_writer.hpp"
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
        fragments_.clear();
        for (auto& slot : fragment_cache_) {
            slot = CachedFragment{};
        }
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
            } else if (e.kind == EventKind::instant) {
                begin_event(",\n{\"ph\":\"i\",\"s\":\"t\"", state, e.timestamp, e.location());
                out_ += '}';
            } else if (e.kind == EventKind::frame_mark) {
                begin_event(",\n{\"ph\":\"i\",\"s\":\"p\"", state, e.timestamp, e.location());
                out_ += '}';
            } else if (e.kind == EventKind::counter) {
                begin_event(",\n{\"ph\":\"C\"", state, e.timestamp, e.location());
                literal(",\"args\":{\"value\":");
                append_double(out_, e.value());
                literal("}}");
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
        text += to_string(location->kind);
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
