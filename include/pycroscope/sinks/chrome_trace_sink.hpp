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

    void open_(const SessionInfo& info) override {
        FileSink::open_(info);
        info_ = info;
        stacks_.clear();
        fragments_.clear();
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
        Stack& stack = stacks_[thread.index];
        for (std::size_t i = 0; i < count; ++i) {
            const Event& e = events[i];
            if (opens_span(e.kind)) {
                stack.push(e.location(), e.timestamp, Empty{});
            } else if (closes_span(e.kind)) {
                stack.pop(e.location(), e.timestamp, [&](const Stack::Frame& frame, std::uint64_t end) {
                    write_complete(thread.index, frame, end);
                });
            } else if (e.kind == EventKind::instant || e.kind == EventKind::frame_mark) {
                begin_event(e.kind == EventKind::instant ? "i\",\"s\":\"t" : "i\",\"s\":\"p", thread.index,
                            e.timestamp, e.location());
                out_ += '}';
            } else if (e.kind == EventKind::counter) {
                begin_event("C", thread.index, e.timestamp, e.location());
                out_ += ",\"args\":{\"value\":";
                append_double(out_, e.value());
                out_ += "}}";
            }
            flush_if_large();
        }
    }

    void close_(const SessionSummary& summary) override {
        stacks_.for_each([&](std::uint32_t index, Stack& stack) {
            stack.close_all(summary.stop_ticks,
                            [&](const Stack::Frame& frame, std::uint64_t end) { write_complete(index, frame, end); });
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
    void begin_event(const char* phase, std::uint32_t tid, std::uint64_t timestamp, const SourceLocation* location) {
        out_ += ",\n{\"ph\":\"";
        out_ += phase;
        out_ += '"';
        out_ += common_;
        append_unsigned(out_, tid);
        out_ += ",\"ts\":";
        append_ns_as_us(out_, info_.session_ns(timestamp));
        out_ += fragment(location);
    }

    void write_complete(std::uint32_t tid, const Stack::Frame& frame, std::uint64_t end) {
        begin_event("X", tid, frame.begin, frame.location);
        out_ += ",\"dur\":";
        const std::uint64_t ticks = end > frame.begin ? end - frame.begin : 0;
        append_ns_as_us(out_, static_cast<std::int64_t>(info_.ticks_to_ns(ticks) + 0.5));
        out_ += '}';
    }

    // The escaped name/category (and source position for Python code) of a
    // location, rendered once.
    const std::string& fragment(const SourceLocation* location) {
        auto found = fragments_.find(location);
        if (found != fragments_.end()) {
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
        return fragments_.emplace(location, std::move(text)).first->second;
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
    PerThreadState<Stack> stacks_;
    std::unordered_map<const SourceLocation*, std::string> fragments_;
};

} // namespace sinks
} // namespace pycroscope
