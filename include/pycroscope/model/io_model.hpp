#pragma once
// The drain-side model of the io collector and its session.json section:
// an EventProcessor fed by the live drain or by a capture's replay. Needs no
// Python: it reads only events and their SourceLocations.

#include "pycroscope/core/event.hpp"
#include "pycroscope/core/event_processor.hpp"
#include "pycroscope/core/session_info.hpp"
#include "pycroscope/core/source_location.hpp"
#include "pycroscope/core/thread_info.hpp"
#include "pycroscope/sinks/json_summary_sink.hpp"
#include "pycroscope/sinks/json_writer.hpp"
#include "pycroscope/sinks/per_thread_state.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace pycroscope {
namespace model {

// io_call payload when the bytes are not known.
constexpr std::uint64_t io_bytes_unknown = ~std::uint64_t{0};

// Blocking C callables as callable_location() names them, timed from their
// C-call spans even without an audit event.
inline const std::vector<std::string>& blocking_io_callables() {
    static const std::vector<std::string>* names = [] {
        auto* list = new std::vector<std::string>{
            "posix.read",     "posix.write",     "posix.pread",   "posix.pwrite",     "posix.readv",
            "posix.writev",   "posix.sendfile",  "posix.fsync",   "posix.fdatasync",  "posix.waitpid",
            "posix.wait",     "time.sleep",      "select.select", "select.poll.poll", "select.epoll.poll",
            "builtins.input", "_ssl._SSLSocket.read", "_ssl._SSLSocket.write"};
        for (const char* type : {"_io.FileIO", "_io.BufferedReader", "_io.BufferedWriter", "_io.BufferedRandom",
                                 "_io.BufferedRWPair", "_io.TextIOWrapper"}) {
            for (const char* method : {"read", "read1", "readall", "readinto", "readinto1", "readline", "readlines",
                                       "peek", "write", "writelines", "flush", "close", "__exit__"}) {
                list->push_back(std::string(type) + "." + method);
            }
        }
        // socket.socket is a Python subclass named "socket" of _socket.socket.
        for (const char* type : {"socket", "_socket.socket"}) {
            for (const char* method : {"recv", "recv_into", "recvfrom", "recvfrom_into", "recvmsg", "send",
                                       "sendall", "sendto", "sendmsg", "_accept", "connect", "connect_ex"}) {
                list->push_back(std::string(type) + "." + method);
            }
        }
        return list;
    }();
    return *names;
}

class IoModel : public EventProcessor {
public:
    struct Site {
        std::string file;
        std::uint32_t line = 0;
        std::string function;
        std::string operation;
        std::uint64_t count = 0;
        std::uint64_t timed = 0; // calls with a duration (inside a traced C call)
        std::uint64_t ticks = 0;
        std::uint64_t measured = 0;   // calls whose bytes were measured
        std::uint64_t bytes = 0;      // sum over the measured calls
        // Every call counted here was measured.
        bool bytes_known() const noexcept { return count > 0 && measured == count; }
    };

    // c_call_spans: the run records C calls, which time I/O calls and need
    // the span stack. Without them only the audit events count, and the
    // model skips the span events, most of a traced run's events.
    explicit IoModel(bool c_call_spans = true) : c_call_spans_(c_call_spans) {}

    std::string describe() const override { return "io model"; }

    // In order of first sight; valid after the final drain.
    const std::vector<Site>& sites() const noexcept { return sites_; }

    void open(const SessionInfo&) override {
        sites_.clear();
        index_.clear();
        threads_.clear();
        blocking_.clear();
    }

    void close(const SessionSummary&) override {}

    void process(const ThreadInfo& thread, Event* events, std::size_t count) override {
        std::vector<Open>& stack = threads_[thread.index];
        for (std::size_t i = 0; i < count; ++i) {
            const Event& e = events[i];
            if (e.kind == EventKind::io_call) {
                const SourceLocation* s = e.location();
                const std::size_t index = site(s->file, s->line, s->function, s->name);
                Site& entry = sites_[index];
                ++entry.count;
                if (e.payload != io_bytes_unknown) {
                    ++entry.measured;
                    entry.bytes += e.payload;
                }
                // sys.audit() is how Python code raises its own events: its span times nothing.
                if (!stack.empty() && stack.back().kind == EventKind::c_call && stack.back().site == no_site &&
                    std::strcmp(stack.back().location->display_name(), "sys.audit") != 0) {
                    stack.back().site = index;
                }
            } else if (!c_call_spans_) {
                continue;
            } else if (opens_span(e.kind)) {
                stack.push_back(Open{e.kind, e.location(), e.timestamp, static_cast<std::uint32_t>(e.payload), no_site});
            } else if (closes_span(e.kind) && !stack.empty()) {
                const Open open = stack.back();
                stack.pop_back();
                if (open.kind != EventKind::c_call) {
                    continue;
                }
                const std::uint64_t ticks = e.timestamp > open.begin ? e.timestamp - open.begin : 0;
                std::size_t index = open.site;
                if (index == no_site && is_blocking(open.location)) {
                    const SourceLocation* caller = innermost_python(stack);
                    index = site(caller != nullptr ? caller->file : "<native>",
                                 open.line != 0 ? open.line : caller != nullptr ? caller->line : 0,
                                 caller != nullptr ? caller->display_name() : "<native>", open.location->display_name());
                    ++sites_[index].count;
                }
                if (index != no_site) {
                    Site& entry = sites_[index];
                    ++entry.timed;
                    entry.ticks += ticks;
                    if (e.kind == EventKind::c_return && e.payload != 0) { // bytes + 1 (tracer.hpp, IoBytes)
                        ++entry.measured;
                        entry.bytes += e.payload - 1;
                    }
                }
            }
        }
    }

private:
    static constexpr std::size_t no_site = ~std::size_t{0};

    struct Open {
        EventKind kind;
        const SourceLocation* location;
        std::uint64_t begin;
        std::uint32_t line; // c_call: the calling line, when the tracer recorded it
        std::size_t site;   // the audit event this C call raised
    };

    static const SourceLocation* innermost_python(const std::vector<Open>& stack) {
        for (auto it = stack.rbegin(); it != stack.rend(); ++it) {
            if ((it->kind == EventKind::py_call || it->kind == EventKind::py_resume) && it->location != nullptr) {
                return it->location;
            }
        }
        return nullptr;
    }

    bool is_blocking(const SourceLocation* location) {
        if (location == nullptr) {
            return false;
        }
        auto found = blocking_.find(location);
        if (found == blocking_.end()) {
            const auto& list = blocking_io_callables();
            const bool blocking = location->kind == LocationKind::c_function &&
                                  std::find(list.begin(), list.end(), location->display_name()) != list.end();
            found = blocking_.emplace(location, blocking).first;
        }
        return found->second;
    }

    std::size_t site(const char* file, std::uint32_t line, const char* function, const char* operation) {
        auto key = std::make_tuple(std::string(file), line, std::string(function), std::string(operation));
        auto found = index_.find(key);
        if (found != index_.end()) {
            return found->second;
        }
        Site entry;
        entry.file = file;
        entry.line = line;
        entry.function = function;
        entry.operation = operation;
        sites_.push_back(std::move(entry));
        index_.emplace(std::move(key), sites_.size() - 1);
        return sites_.size() - 1;
    }

    bool c_call_spans_;
    std::vector<Site> sites_;
    std::map<std::tuple<std::string, std::uint32_t, std::string, std::string>, std::size_t> index_;
    sinks::PerThreadState<std::vector<Open>> threads_;
    std::unordered_map<const SourceLocation*, bool> blocking_;
};

// The "io" section: [{"file", "line", "function", "operation", "count",
// "timed", "time_ns", "bytes"}], most time first. time_ns covers the timed
// calls and is null when none was; bytes (read/write syscall bytes, see
// "Bytes:" at the top) is null unless every call at the site was measured.
inline void add_io_section(sinks::JsonSummarySink& sink, IoModel& model) {
    IoModel* source = &model;
    sink.add_section("io", [source](sinks::JsonWriter& json, const SessionSummary& summary) {
        {
            std::vector<const IoModel::Site*> order;
            for (const auto& site : source->sites()) {
                order.push_back(&site);
            }
            std::stable_sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
                return a->ticks != b->ticks ? a->ticks > b->ticks : a->count > b->count;
            });
            json.begin_array();
            for (const auto* site : order) {
                json.begin_object()
                    .field("file", site->file)
                    .field("line", site->line)
                    .field("function", site->function)
                    .field("operation", site->operation)
                    .field("count", site->count)
                    .field("timed", site->timed);
                json.key("time_ns");
                if (site->timed > 0) {
                    json.value(static_cast<std::uint64_t>(summary.info.ticks_to_ns(site->ticks) + 0.5));
                } else {
                    json.null();
                }
                json.key("bytes");
                if (site->bytes_known()) {
                    json.value(site->bytes);
                } else {
                    json.null();
                }
                json.end_object();
            }
            json.end_array();
        }
    });
}

} // namespace model
} // namespace pycroscope
