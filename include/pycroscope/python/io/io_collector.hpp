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
// so bytes come from the thread's own I/O counters (Linux,
// /proc/thread-self/io: rchar + wchar, the bytes passed by this thread's
// read(2)/write(2)-family syscalls), read by the tracer at the c_call and
// at the c_return of a measured call; the difference (less the tracer's own
// reads of that file) is the call's bytes, carried in the c_return payload
// (0: not measured, else bytes + 1; see tracer.hpp, IoBytes). It needs the
// profile backend with c_calls, like durations. Measured:
//  - os.read/write/pread/pwrite/readv/writev and _io.FileIO methods: the
//    syscall bytes, on any fd (read(2) on a socket or pipe counts too);
//  - _io.BufferedReader/Writer/Random and _io.TextIOWrapper methods whose
//    object reads and writes through an _io.FileIO: the bytes of the
//    syscalls the call made, which is not what it returned or was given.
//    A buffered write that fits the buffer is 0 and the flush() that
//    writes it carries the bytes; a buffered read of a few bytes shows the
//    chunk (up to the buffer size) it read from the file, or 0 when the
//    buffer had them. close() and a with-block's exit (__exit__) carry the
//    bytes they flush;
//  - C calls raising "open" or an os.* audit event other than the process
//    ones (os.system, exec, fork, forkpty, posix_spawn, spawn, startfile)
//    and os.walk/os.fwalk: usually 0, since opening, listing, removing move
//    no bytes through read/write.
// Everything the thread read or wrote during the call counts (a signal
// handler's or another audit hook's writes too). Null (unknown), never 0,
// for: socket methods (recv/send/sendto/sendmsg... use recv(2)/send(2),
// which leave rchar/wchar unchanged), _ssl reads and writes (OpenSSL's read(2)s and
// write(2)s count ciphertext), buffered objects not on an _io.FileIO (a
// socket's makefile(), BytesIO, BufferedRWPair), os.sendfile (the kernel
// counts its bytes twice, once read and once written), waits and sleeps,
// fsync, input(), audit events of sockets, subprocesses, shutil and other
// Python-level modules, calls without the tracer, and everything when
// /proc/thread-self/io is missing or unreadable. A site's bytes is a number
// only when every call counted there was measured. The io_call payload
// stays io_bytes_unknown: the audit event comes before the I/O is done.

#include "pycroscope/model/io_model.hpp"
#include "pycroscope/core/recording_epoch.hpp"
#include "pycroscope/core/error.hpp"
#include "pycroscope/core/name_table.hpp"
#include "pycroscope/core/recorder.hpp"
#include "pycroscope/core/session_core.hpp"
#include "pycroscope/python/runtime/code_registry.hpp"
#include "pycroscope/python/runtime/cpython.hpp"
#include "pycroscope/python/tracer/tracer.hpp"
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

using model::blocking_io_callables;
using model::io_bytes_unknown;

// How the bytes of a blocking callable are measured (see "Bytes:" above).
inline detail::IoBytesMode io_bytes_mode(std::string_view callable) noexcept {
    static constexpr std::string_view direct[] = {"posix.read",  "posix.write",  "posix.pread",
                                                  "posix.pwrite", "posix.readv", "posix.writev"};
    static constexpr std::string_view buffered[] = {"_io.BufferedReader.", "_io.BufferedWriter.",
                                                    "_io.BufferedRandom.", "_io.TextIOWrapper."};
    for (std::string_view name : direct) {
        if (callable == name) {
            return detail::IoBytesMode::direct;
        }
    }
    if (callable.substr(0, 11) == "_io.FileIO.") {
        return detail::IoBytesMode::direct;
    }
    for (std::string_view prefix : buffered) {
        if (callable.substr(0, prefix.size()) == prefix) {
            return detail::IoBytesMode::buffered;
        }
    }
    return detail::IoBytesMode::none;
}

namespace detail {

struct IoRecording;
using io_epoch = RecordingEpoch<IoRecording>;
// The child's thread is not the one its counter file was opened for.
inline void close_io_counters_in_child() noexcept { close_io_counters(tls_io_bytes); }

// Audit events whose C call's bytes are measured ("Bytes:" above).
inline bool io_audit_bytes_measured(const char* event) noexcept {
    static constexpr const char* process[] = {"os.system", "os.exec",  "os.fork",    "os.forkpty", "os.posix_spawn",
                                              "os.spawn",  "os.startfile", "os.walk", "os.fwalk"};
    if (std::strcmp(event, "open") == 0) {
        return true;
    }
    if (std::strncmp(event, "os.", 3) != 0) {
        return false;
    }
    for (const char* name : process) {
        if (std::strcmp(event, name) == 0) {
            return false;
        }
    }
    return true;
}
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
    const std::uint64_t epoch = io_epoch::load();
    if (epoch == 0 || !is_io_audit_event(event)) {
        return 0;
    }
    // Borrowed; on 3.11+ the first call for a frame creates its frame object.
    PyFrameObject* frame = PyEval_GetFrame();
    const SourceLocation* site = io_site(event, frame);
    pycroscope::detail::push_event(
        epoch, Event{clock::now(), location_id(site), io_bytes_unknown, 0, EventKind::io_call, 0, 0});
    if (io_audit_bytes_measured(event)) {
        begin_audited_io_bytes(frame); // the bytes come with the C call's c_return
    }
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
        detail::prepare_io_bytes();
        for (const auto& callable : blocking_io_callables()) {
            detail::add_call_line_callable(names().intern(LocationKind::c_function, callable, callable, "<built-in>", 0),
                                           io_bytes_mode(callable));
        }
        detail::call_lines.active = true;
        forget_in_forked_child<&detail::close_io_counters_in_child>();
        detail::io_epoch::begin(core.epoch());
        started_ = true;
    }

    void stop(SessionCore&) noexcept {
        detail::io_epoch::end();
        if (started_ && Py_IsInitialized()) {
            const PyGILState_STATE gil = PyGILState_Ensure();
            detail::call_lines.active = false;
            detail::close_io_counters(detail::tls_io_bytes); // other threads' close when they exit
            PyGILState_Release(gil);
        }
        started_ = false;
    }

private:
    bool started_ = false;
};

} // namespace python
} // namespace pycroscope
