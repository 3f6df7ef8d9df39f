#pragma once
// The bytes of each blocking I/O call, measured for the IoCollector by the
// tracer's C-call hooks: which C callables carry their calling line and
// whether their bytes are measured (CallLineTable), and the per-thread
// /proc/thread-self/io reading around each measured call (IoBytes). The
// tracer calls in here; nothing here knows the tracer.

#include "pycroscope/core/compiler.hpp"
#include "pycroscope/core/source_location.hpp"
#include "pycroscope/system/proc_stats.hpp"
#include "pycroscope/python/runtime/cpython.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace pycroscope {
namespace python {
namespace detail {

// C callables whose c_call events carry the calling Python line in payload
// (the IoCollector lists its blocking calls): finding a line walks the line
// table, so it is done only for these. Open addressing over interned
// locations; read and written with the GIL held. Each slot also says whether
// (and how) the call's I/O bytes are measured (see IoBytes below).
enum class IoBytesMode : std::uint8_t {
    none,     // not measured: the bytes stay unknown
    direct,   // read(2)/write(2)-family syscalls on the fd the call is given (os.read, FileIO)
    buffered, // an _io buffered or text object: measured only when it sits on an _io.FileIO
};
struct CallLineTable {
    static constexpr std::size_t size = 256;
    struct Slot {
        const SourceLocation* location;
        IoBytesMode bytes;
    };
    bool active;
    Slot slots[size];
};
inline CallLineTable call_lines{};

// The slot of location, or null.
inline const CallLineTable::Slot* find_call_line(const SourceLocation* location) noexcept {
    std::size_t i = (reinterpret_cast<std::uintptr_t>(location) >> 4) % CallLineTable::size;
    for (std::size_t probe = 0; probe < CallLineTable::size; ++probe, i = (i + 1) % CallLineTable::size) {
        if (call_lines.slots[i].location == location) {
            return &call_lines.slots[i];
        }
        if (call_lines.slots[i].location == nullptr) {
            return nullptr;
        }
    }
    return nullptr;
}
inline bool wants_call_line(const SourceLocation* location) noexcept { return find_call_line(location) != nullptr; }
// False when the table is full.
inline bool add_call_line_callable(const SourceLocation* location, IoBytesMode bytes = IoBytesMode::none) noexcept {
    std::size_t i = (reinterpret_cast<std::uintptr_t>(location) >> 4) % CallLineTable::size;
    for (std::size_t probe = 0; probe + 1 < CallLineTable::size; ++probe, i = (i + 1) % CallLineTable::size) {
        if (call_lines.slots[i].location == location) {
            call_lines.slots[i].bytes = bytes;
            return true;
        }
        if (call_lines.slots[i].location == nullptr) {
            call_lines.slots[i] = CallLineTable::Slot{location, bytes}; // one slot always stays empty, so lookups end
            return true;
        }
    }
    return false;
}

// IoBytes: the bytes of one blocking I/O call, from the thread's own I/O
// counters (Linux: /proc/thread-self/io, rchar + wchar: bytes passed by
// read(2)/write(2)-family syscalls of this thread). Read at the call and at
// its return; the difference is what the call (and anything it ran) moved.
// recv(2)/send(2) on sockets do not move these counters, so socket calls are
// never measured (the IoCollector decides per callable; io_collector.hpp).
//
// Only the IoCollector's I/O calls pay for it (two pread(2)s each, with the
// GIL held): calls that are themselves syscalls, usually much slower. Nothing
// here runs for ordinary calls beyond one flag and one thread-local test at
// c_return, and never on the allocation or zone paths.
//
// Pairing: a measured call pushes (frame, callable) at c_call; an I/O audit
// event inside a C call pushes (frame, any callable) from the audit hook, so
// the next C return in that frame (the call that raised it) takes the bytes.
// The c_return's payload is 0 when nothing was measured, else bytes + 1.
struct IoBytesThread {
    static constexpr std::uint32_t max_depth = 8;
    struct Entry {
        const void* frame;
        const SourceLocation* location; // null: the call that raised an audit event in frame
        std::uint64_t start;            // rchar + wchar at the call
        std::uint64_t self_before;      // self_read before that reading
    };
    int fd_plus_one;         // 0: not opened yet; -1: unavailable (bytes stay unknown)
    std::uint32_t depth;
    std::uint64_t epoch;     // session the entries belong to
    std::uint64_t self_read; // bytes read from the counter file: they count in rchar too
    Entry entries[max_depth];
};
// Trivially initialised: reading depth at c_return costs no TLS wrapper.
inline thread_local IoBytesThread tls_io_bytes{};

inline void close_io_counters(IoBytesThread& t) noexcept {
#if defined(__linux__)
    if (t.fd_plus_one > 0) {
        ::close(t.fd_plus_one - 1);
    }
#endif
    t.fd_plus_one = 0;
    t.depth = 0;
}

// Closes the thread's counter file when the thread exits.
struct IoCountersCloser {
    IoCountersCloser() = default;
    IoCountersCloser(const IoCountersCloser&) = delete;
    IoCountersCloser& operator=(const IoCountersCloser&) = delete;
    ~IoCountersCloser() { close_io_counters(tls_io_bytes); }
};

// rchar + wchar of this thread; false when the counters cannot be read. A
// syscall: only around the I/O calls themselves. No allocation.
inline bool read_io_counters(IoBytesThread& t, std::uint64_t& total) noexcept {
#if defined(__linux__)
    if (t.fd_plus_one == 0) {
        static thread_local IoCountersCloser closer; // registered on first use only
        const int fd = ::open("/proc/thread-self/io", O_RDONLY | O_CLOEXEC);
        t.fd_plus_one = fd >= 0 ? fd + 1 : -1;
    }
    if (t.fd_plus_one < 0) {
        return false;
    }
    char buffer[512];
    const ssize_t n = ::pread(t.fd_plus_one - 1, buffer, sizeof buffer, 0);
    if (n <= 0) {
        return false;
    }
    t.self_read += static_cast<std::uint64_t>(n);
    proc::IoCounters counters;
    if (!proc::parse_io(std::string_view(buffer, static_cast<std::size_t>(n)), counters)) {
        return false;
    }
    total = counters.rchar + counters.wchar;
    return true;
#else
    (void)t;
    (void)total;
    return false;
#endif
}

// A C call starts in frame: entries of frame on top are stale (a frame runs
// one C call at a time), left by an audit event raised outside a traced call
// (or by an earlier audit event of the same call: measured from the last).
inline void drop_io_bytes_of(IoBytesThread& t, const void* frame) noexcept {
    while (t.depth > 0 && t.entries[t.depth - 1].frame == frame) {
        --t.depth;
    }
}

// Starts measuring a call in frame (location null: the C call that raised an
// I/O audit event). No entry when the counters are unreadable or 8 calls nest.
inline void begin_io_bytes(std::uint64_t epoch, const void* frame, const SourceLocation* location) noexcept {
    IoBytesThread& t = tls_io_bytes;
    if (t.epoch != epoch) {
        t.epoch = epoch;
        t.depth = 0;
    }
    drop_io_bytes_of(t, frame);
    if (t.depth == IoBytesThread::max_depth) {
        t.depth = 0; // leftovers of calls whose return was never seen: start over
    }
    IoBytesThread::Entry entry{frame, location, 0, t.self_read};
    if (read_io_counters(t, entry.start)) {
        t.entries[t.depth++] = entry;
    }
}

// At a C return in frame: bytes + 1 of the measured call that returns, or 0.
// Entries above it were calls nested in it, so they are over.
inline std::uint64_t end_io_bytes(std::uint64_t epoch, const void* frame, const SourceLocation* location) noexcept {
    IoBytesThread& t = tls_io_bytes;
    if (t.epoch != epoch) {
        t.depth = 0;
        return 0;
    }
    for (std::uint32_t i = t.depth; i-- > 0;) {
        const IoBytesThread::Entry entry = t.entries[i];
        if (entry.frame != frame || (entry.location != nullptr && entry.location != location)) {
            continue;
        }
        t.depth = i;
        const std::uint64_t self_before = t.self_read;
        std::uint64_t now = 0;
        if (!read_io_counters(t, now)) {
            return 0;
        }
        // Our own reads of the counter file since the first reading count in rchar.
        const std::uint64_t own = self_before - entry.self_before;
        if (now < entry.start || now - entry.start < own) {
            return 0;
        }
        return now - entry.start - own + 1;
    }
    return 0;
}

// Buffered mode: self (the bound method's object) reads and writes through
// an _io.FileIO (TextIOWrapper -> buffer -> raw). Exact types only, so the
// attribute lookups are C members and run no Python code. GIL held.
struct IoAttributeNames {
    PyObject* buffer;
    PyObject* raw;
};
inline IoAttributeNames io_attribute_names{};
// By IoCollector::start (GIL held), so recording allocates nothing. Once per
// start: an interpreter started again has new strings (the old ones are not
// released, they may belong to a finalized interpreter).
inline void prepare_io_bytes() noexcept {
    io_attribute_names.buffer = PyUnicode_InternFromString("buffer");
    io_attribute_names.raw = PyUnicode_InternFromString("raw");
    PyErr_Clear();
}

inline bool io_object_on_file(PyObject* callable) noexcept {
    PyObject* const buffer_name = io_attribute_names.buffer;
    PyObject* const raw_name = io_attribute_names.raw;
    if (buffer_name == nullptr || raw_name == nullptr || !PyCFunction_Check(callable)) {
        return false;
    }
    PyObject* self = PyCFunction_GET_SELF(callable);
    if (self == nullptr) {
        return false;
    }
    Py_INCREF(self);
    for (int level = 0; level < 3; ++level) {
        const char* type = Py_TYPE(self)->tp_name;
        PyObject* inner = nullptr;
        if (std::strcmp(type, "_io.FileIO") == 0) {
            Py_DECREF(self);
            return true;
        }
        if (std::strcmp(type, "_io.TextIOWrapper") == 0) {
            inner = PyObject_GetAttr(self, buffer_name);
        } else if (std::strcmp(type, "_io.BufferedReader") == 0 || std::strcmp(type, "_io.BufferedWriter") == 0 ||
                   std::strcmp(type, "_io.BufferedRandom") == 0) {
            inner = PyObject_GetAttr(self, raw_name);
        }
        Py_DECREF(self);
        if (inner == nullptr) {
            PyErr_Clear();
            return false;
        }
        self = inner;
    }
    Py_DECREF(self);
    return false;
}

} // namespace detail
} // namespace python
} // namespace pycroscope
