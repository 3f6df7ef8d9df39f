#pragma once
// IoCollector: file, socket, subprocess and os operations per call site, with
// counts, time and (where known) bytes.
//
// Two sources, joined on the drain side by IoModel:
//  - An audit hook (PySys_AddAuditHook) sees "open", "os.*", "socket.*",
//    "subprocess.*", "shutil.*", "time.sleep", ... when the operation starts:
//    each becomes an io_call event whose location (kind io_site) names the
//    operation and the innermost Python frame's function, file and line.
//    Audit hooks cannot be removed, so the hook is added once per process and
//    does nothing while no IoCollector runs.
//  - Durations come from the PythonTracer's C-call spans (profile backend
//    with c_calls). An audit event inside a C call (open() -> "open",
//    os.listdir -> "os.listdir") gets that call's duration. Blocking calls
//    that raise no audit event (os.read/os.write, file and socket reads and
//    writes, select) are recognized by name; for those the tracer puts the
//    calling line in the c_call event while this collector runs.
// Bytes: neither audit events nor profile events expose sizes or results,
// so "bytes" is null for every operation (the io_call payload is reserved
// for it: io_bytes_unknown).

#include "pycroscope/core/error.hpp"
#include "pycroscope/core/name_table.hpp"
#include "pycroscope/core/recorder.hpp"
#include "pycroscope/core/session_core.hpp"
#include "pycroscope/python/code_registry.hpp"
#include "pycroscope/python/cpython.hpp"
#include "pycroscope/python/tracer.hpp"
#include "pycroscope/sinks/base_sink.hpp"
#include "pycroscope/sinks/json_summary_sink.hpp"
#include "pycroscope/sinks/per_thread_state.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <pthread.h>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace pycroscope {
namespace python {

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
                                       "peek", "write", "writelines", "flush"}) {
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

namespace detail {

inline std::atomic<std::uint64_t> io_epoch{0};
inline void stop_io_recording_in_child() noexcept { io_epoch.store(0, std::memory_order_relaxed); }
inline bool io_audit_hook_added = false;

// Audit events that are I/O: exact names, or prefixes ending in '.'.
inline bool is_io_audit_event(const char* event) noexcept {
    static constexpr const char* prefixes[] = {"os.",     "socket.",     "subprocess.", "shutil.",
                                               "tempfile.", "glob.",     "mmap.",       "fcntl.",
                                               "ftplib.", "smtplib.",    "poplib.",     "imaplib.",
                                               "nntplib.", "telnetlib.", "http.client.", "urllib.",
                                               "webbrowser.", "pty."};
    if (std::strcmp(event, "open") == 0 || std::strcmp(event, "time.sleep") == 0) {
        return true;
    }
    for (const char* prefix : prefixes) {
        if (std::strncmp(event, prefix, std::strlen(prefix)) == 0) {
            return true;
        }
    }
    return false;
}

// (function, line, operation) -> interned io_site, direct-mapped: a site seen
// before costs a hash of the event name and a compare. GIL held.
struct IoSiteCache {
    struct Entry {
        std::uint64_t hash;
        const SourceLocation* function;
        std::uint32_t line;
        const SourceLocation* site;
    };
    Entry entries[256];
};
inline IoSiteCache io_sites{};

inline const SourceLocation* io_site(const char* event, PyFrameObject* frame) {
    const SourceLocation* function = frame != nullptr ? code_location(compat::frame_code(frame)) : nullptr;
    const auto line = frame != nullptr ? static_cast<std::uint32_t>(compat::frame_line(frame)) : 0u;
    const std::string_view operation(event);
    const std::uint64_t hash =
        pycroscope::detail::fnv1a(operation, reinterpret_cast<std::uintptr_t>(function) ^ (std::uint64_t{line} << 48));
    IoSiteCache::Entry& entry = io_sites.entries[hash & 255];
    if (entry.site != nullptr && entry.hash == hash && entry.function == function && entry.line == line &&
        operation == entry.site->name) {
        return entry.site;
    }
    PendingExceptionGuard guard;
    const SourceLocation* site =
        names().intern(LocationKind::io_site, operation, function != nullptr ? function->display_name() : "<native>",
                       function != nullptr ? function->file : "<native>", line);
    entry = IoSiteCache::Entry{hash, function, line, site};
    return site;
}

inline int io_audit_hook(const char* event, PyObject*, void*) {
    const std::uint64_t epoch = io_epoch.load(std::memory_order_relaxed);
    if (epoch == 0 || !is_io_audit_event(event)) {
        return 0;
    }
    // Borrowed; on 3.11+ the first call for a frame creates its frame object.
    PyFrameObject* frame = PyEval_GetFrame();
    const SourceLocation* site = io_site(event, frame);
    pycroscope::detail::push_event(
        epoch, Event{clock::now(), location_id(site), io_bytes_unknown, 0, EventKind::io_call, 0, 0});
    return 0;
}

} // namespace detail

class IoCollector {
public:
    static constexpr const char* name = "io";

    bool enabled = true; // false: start() installs nothing (one Session type for every flag set)

    // Needs the GIL.
    void start(SessionCore& core) {
        if (!enabled) {
            return;
        }
        if (!Py_IsInitialized() || !PyGILState_Check()) {
            throw ConfigError("IoCollector: start the session after Py_Initialize() with the GIL held");
        }
        if (!detail::io_audit_hook_added) {
            if (PySys_AddAuditHook(&detail::io_audit_hook, nullptr) != 0) {
                PyErr_Clear();
                throw ConfigError("IoCollector: an audit hook refused PySys_AddAuditHook");
            }
            detail::io_audit_hook_added = true;
        }
        code_extra_index();
        for (const auto& callable : blocking_io_callables()) {
            detail::add_call_line_callable(names().intern(LocationKind::c_function, callable, callable, "<built-in>", 0));
        }
        detail::call_lines.active = true;
        static const int fork_handler = ::pthread_atfork(nullptr, nullptr, &detail::stop_io_recording_in_child);
        (void)fork_handler;
        detail::io_epoch.store(core.epoch(), std::memory_order_relaxed);
        started_ = true;
    }

    void stop(SessionCore&) noexcept {
        detail::io_epoch.store(0, std::memory_order_relaxed);
        if (started_ && Py_IsInitialized()) {
            const PyGILState_STATE gil = PyGILState_Ensure();
            detail::call_lines.active = false;
            PyGILState_Release(gil);
        }
        started_ = false;
    }

private:
    bool started_ = false;
};

// ---------------------------------------------------------------------------
// Drain side
// ---------------------------------------------------------------------------

class IoModel : public sinks::BaseSinkMt {
public:
    struct Site {
        std::string file;
        std::uint32_t line = 0;
        std::string function;
        std::string operation;
        std::uint64_t count = 0;
        std::uint64_t timed = 0; // calls with a duration (inside a traced C call)
        std::uint64_t ticks = 0;
        bool bytes_known = false;
        std::uint64_t bytes = 0;
    };

    std::string describe() const override { return "io model"; }

    // In order of first sight; valid after the final drain.
    const std::vector<Site>& sites() const noexcept { return sites_; }

protected:
    void open_(const SessionInfo&) override {
        sites_.clear();
        index_.clear();
        threads_.clear();
        blocking_.clear();
    }

    void sink_it_(const ThreadInfo& thread, const Event* events, std::size_t count) override {
        std::vector<Open>& stack = threads_[thread.index];
        for (std::size_t i = 0; i < count; ++i) {
            const Event& e = events[i];
            if (e.kind == EventKind::io_call) {
                const SourceLocation* s = e.location();
                const std::size_t index = site(s->file, s->line, s->function, s->name);
                Site& entry = sites_[index];
                ++entry.count;
                if (e.payload != io_bytes_unknown) {
                    entry.bytes_known = true;
                    entry.bytes += e.payload;
                }
                // sys.audit() is how Python code raises its own events: its span times nothing.
                if (!stack.empty() && stack.back().kind == EventKind::c_call && stack.back().site == no_site &&
                    std::strcmp(stack.back().location->display_name(), "sys.audit") != 0) {
                    stack.back().site = index;
                }
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
                    ++sites_[index].timed;
                    sites_[index].ticks += ticks;
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

    std::vector<Site> sites_;
    std::map<std::tuple<std::string, std::uint32_t, std::string, std::string>, std::size_t> index_;
    sinks::PerThreadState<std::vector<Open>> threads_;
    std::unordered_map<const SourceLocation*, bool> blocking_;
};

// The "io" section: [{"file", "line", "function", "operation", "count",
// "timed", "time_ns", "bytes"}], most time first. time_ns covers the timed
// calls and is null when none was; bytes is null when unknown.
inline void add_io_section(sinks::JsonSummarySink& sink, IoModel& model) {
    IoModel* source = &model;
    sink.add_section("io", [source](sinks::JsonWriter& json, const SessionSummary& summary) {
        source->with_lock([&] {
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
                if (site->bytes_known) {
                    json.value(site->bytes);
                } else {
                    json.null();
                }
                json.end_object();
            }
            json.end_array();
        });
    });
}

} // namespace python
} // namespace pycroscope
