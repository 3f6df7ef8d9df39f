#pragma once
// One round of stack sampling: the stacks of every thread, Python frames and
// native zones interleaved, as `sample` + `sample_frame` events (the contract
// in core/event.hpp). The Sampler collector runs one round per tick on its own
// thread; benchmarks run it directly.
//
// A round has two halves:
//  - collect(): with the GIL held. Walks every thread state's frame chain
//    (frame_walk.hpp: no allocation once the scratch space is sized), reads
//    the zone stacks of the session's threads (ZoneStack, racy but
//    memory-safe), merges them in call order and stages the events.
//  - publish(): without the GIL. Reads each thread's CPU clock to tell
//    running from idle, then writes the kept samples into the calling
//    thread's own ring. Keeping system calls and ring writes out of the
//    GIL-held half keeps the sampled program's pause short.

#include "pycroscope/core/clock.hpp"
#include "pycroscope/core/event.hpp"
#include "pycroscope/core/name_table.hpp"
#include "pycroscope/core/recorder.hpp"
#include "pycroscope/core/session_core.hpp"
#include "pycroscope/core/zone_stack.hpp"
#include "pycroscope/python/runtime/code_registry.hpp"
#include "pycroscope/python/runtime/cpython.hpp"
#include "pycroscope/python/runtime/frame_walk.hpp"

#include <cstdint>
#include <ctime>
#include <pthread.h>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace pycroscope {
namespace python {
namespace detail {

// CPU time of a thread of this process in ns, -1 when it cannot be read
// (the thread is gone, or not Linux). One system call, no file.
inline std::int64_t thread_cpu_ns(std::uint64_t os_tid) noexcept {
#if defined(__linux__)
    if (os_tid == 0) {
        return -1;
    }
    // MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED): the kernel's encoding of a
    // per-thread CPU clock; it only resolves threads of the caller's process.
    const auto id = static_cast<clockid_t>((~static_cast<unsigned>(os_tid) << 3) | 6u);
    timespec ts{};
    if (::clock_gettime(id, &ts) != 0) {
        return -1;
    }
    return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
#else
    (void)os_tid;
    return -1;
#endif
}

// Kernel thread id of a live thread of this process from its pthread_t
// (what CPython before 3.11 keeps as a thread state's thread_id): glibc
// encodes it in the thread's CPU-clock id. 0 when unknown.
inline std::uint64_t os_tid_of_pthread(unsigned long handle) noexcept {
#if defined(__linux__) && defined(__GLIBC__)
    clockid_t id = 0;
    if (handle == 0 || ::pthread_getcpuclockid(static_cast<pthread_t>(handle), &id) != 0) {
        return 0;
    }
    const int tid = ~(static_cast<int>(id) >> 3); // MAKE_THREAD_CPUCLOCK(tid, ...) = (~tid << 3) | 6
    return tid > 0 ? static_cast<std::uint64_t>(tid) : 0;
#else
    (void)handle;
    return 0;
#endif
}

inline std::int64_t monotonic_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

inline PyObject* threading_name() {
    static PyObject* name = PyUnicode_InternFromString("threading");
    return name;
}

// threading's name and native id of a Python thread (first sight only:
// attribute reads of a Thread instance, no Python code runs).
inline void describe_from_threading(unsigned long ident, std::string& name, std::uint64_t& os_tid) {
    PyObject* module_name = threading_name();
    PyObject* threading = module_name != nullptr ? PyImport_GetModule(module_name) : nullptr;
    if (threading == nullptr) {
        PyErr_Clear();
        return;
    }
    PyObject* active = PyObject_GetAttrString(threading, "_active");
    Py_DECREF(threading);
    if (active == nullptr || !PyDict_Check(active)) {
        Py_XDECREF(active);
        PyErr_Clear();
        return;
    }
    PyObject* key = PyLong_FromUnsignedLong(ident);
    PyObject* thread = key != nullptr ? PyDict_GetItemWithError(active, key) : nullptr; // borrowed
    Py_XDECREF(key);
    if (thread != nullptr) {
        Py_INCREF(thread);
        if (PyObject* value = PyObject_GetAttrString(thread, "_name")) {
            name = python::detail::utf8(value, "");
            Py_DECREF(value);
        }
        PyErr_Clear();
        if (os_tid == 0) {
            if (PyObject* value = PyObject_GetAttrString(thread, "_native_id")) {
                if (PyLong_Check(value)) {
                    os_tid = PyLong_AsUnsignedLongLong(value);
                }
                Py_DECREF(value);
            }
        }
        Py_DECREF(thread);
    }
    Py_DECREF(active);
    PyErr_Clear();
}

// Puts a thread's native zones between its Python frames in true call order.
// raw: frames innermost first (frame_walk); zones: outermost first
// (ZoneStack::read). Calls frame(const RawFrame&) and zone(const
// SourceLocation*) outermost first. A zone on the C stack goes inside every
// frame whose eval loop is at a higher address; a zone opened from Python
// goes right after its frame.
template <class OnFrame, class OnZone>
inline void interleave(const frame_walk::RawFrame* raw, std::size_t raw_count, const ZoneStack::Entry* zones,
                       std::size_t zone_count, OnFrame&& frame, OnZone&& zone) {
    std::size_t next = raw_count; // raw[next - 1] is the outermost frame not yet emitted
    for (std::size_t z = 0; z < zone_count; ++z) {
        const ZoneStack::Entry& entry = zones[z];
        if (entry.location == nullptr) {
            continue;
        }
        if ((entry.position & ZoneStack::python_frame_tag) != 0) {
            const void* anchor = reinterpret_cast<const void*>(entry.position & ~ZoneStack::python_frame_tag);
            std::size_t found = next;
            for (std::size_t i = next; i > 0; --i) {
                if (raw[i - 1].id == anchor) {
                    found = i - 1;
                    break;
                }
            }
            while (found < next) { // emits up to and including the anchor frame
                frame(raw[--next]);
            }
        } else {
            while (next > 0 && raw[next - 1].c_position > entry.position) {
                frame(raw[--next]);
            }
        }
        zone(entry.location);
    }
    while (next > 0) {
        frame(raw[--next]);
    }
}

class SamplingRound {
public:
    // A thread counts as running when its CPU clock advanced by at least
    // this share of the wall time since the previous round.
    static constexpr std::int64_t running_cpu_share_percent = 10;

    // One raw slot more than max_frames tells a cut stack from a full one.
    explicit SamplingRound(std::size_t max_frames = 512)
        : raw_(max_frames + 1), zones_(ZoneStack::capacity), max_frames_(max_frames),
          truncated_(names().intern(LocationKind::other,
                                    "[outer frames truncated at " + std::to_string(max_frames) + "]",
                                    "[truncated]", "<sampler>", 0)) {}

    std::size_t max_frames() const noexcept { return max_frames_; }

    // GIL held. Stages one sample per thread: every Python thread state
    // except skip, and the session's native threads that have zones open.
    void collect(const SessionCore& core, PyThreadState* skip, const ThreadBuffer* own_buffer) {
        staged_.clear();
        events_.clear();
        ++round_;
        code_extra_index(); // without it (no tracer running) every frame would be interned again
        const std::uint64_t now = clock::now();
        core.thread_buffers(buffers_);
        matched_.assign(buffers_.size(), false);
        PyInterpreterState* interp = PyInterpreterState_Main();
        for (PyThreadState* t = PyInterpreterState_ThreadHead(interp); t != nullptr; t = PyThreadState_Next(t)) {
            if (t != skip) {
                stage_python_thread(core, t, own_buffer, now);
            }
        }
        for (std::size_t i = 0; i < buffers_.size(); ++i) {
            ThreadBuffer& buffer = *buffers_[i];
            if (matched_[i] || &buffer == own_buffer || buffer.exited.load(std::memory_order_acquire) ||
                buffer.zones.depth() == 0) {
                continue;
            }
            stage_native_thread(core, buffer, now);
        }
        forget_unseen_threads();
    }

    // No GIL needed. Decides running/idle and writes the kept samples into
    // the calling thread's ring for the session epoch. Returns samples written.
    std::size_t publish(std::uint64_t epoch, bool include_idle) noexcept {
        const std::int64_t wall = monotonic_ns();
        std::size_t written = 0;
        for (Staged& sample : staged_) {
            bool running = true; // unknown counts as running
            auto found = known_.find(sample.key);
            if (found != known_.end()) {
                running = is_running(found->second, wall);
            }
            if (!running && !include_idle) {
                continue;
            }
            Event* events = events_.data() + sample.first;
            events[0].flags = static_cast<std::uint8_t>(events[0].flags | (running ? sample_flags::running : 0));
            pycroscope::detail::push_events(epoch, events, sample.frames + 1);
            ++written;
        }
        return written;
    }

    // Forget the CPU readings (after a pause they would span it).
    void reset_cpu_baselines() noexcept {
        for (auto& entry : known_) {
            entry.second.cpu_ns = -1;
        }
    }

    // What the last collect() staged (tests, benchmarks).
    std::size_t staged_samples() const noexcept { return staged_.size(); }
    std::size_t staged_events() const noexcept { return events_.size(); }

private:
    struct Known {
        std::uint64_t os_tid = 0;
        const SourceLocation* name = nullptr;
        std::int64_t cpu_ns = -1; // previous reading
        std::int64_t wall_ns = 0;
        std::uint64_t seen_round = 0;
        const void* tstate = nullptr;
        unsigned long thread_id = 0;
    };
    struct Staged {
        std::uint64_t key;
        std::size_t first;  // index of the header in events_
        std::size_t frames; // frame events after it
        bool native;        // no Python thread state
    };
    struct LineEntry {
        const SourceLocation* location;
        int offset;
        int line;
    };

    static constexpr std::uint64_t native_key_bit = std::uint64_t{1} << 63;

    bool is_running(Known& thread, std::int64_t wall) noexcept {
        const std::int64_t cpu = thread_cpu_ns(thread.os_tid);
        if (cpu < 0) {
            return true;
        }
        const std::int64_t previous_cpu = thread.cpu_ns;
        const std::int64_t previous_wall = thread.wall_ns;
        thread.cpu_ns = cpu;
        thread.wall_ns = wall;
        if (previous_cpu < 0 || wall <= previous_wall) {
            return false; // first reading: no interval yet
        }
        return (cpu - previous_cpu) * 100 >= (wall - previous_wall) * running_cpu_share_percent;
    }

    void forget_unseen_threads() {
        for (auto it = known_.begin(); it != known_.end();) {
            it = it->second.seen_round + 64 < round_ ? known_.erase(it) : std::next(it);
        }
    }

    Known& known_python_thread(const SessionCore& core, PyThreadState* t, const ThreadBuffer* buffer) {
        const unsigned long ident = frame_walk::thread_id(t);
        const std::uint64_t key = (reinterpret_cast<std::uintptr_t>(t) ^ (std::uint64_t{ident} * 0x9E3779B97F4A7C15ull)) &
                                  ~native_key_bit;
        Known& known = known_[key];
        if (known.seen_round == 0 || known.tstate != t || known.thread_id != ident) {
            known = Known{};
            known.tstate = t;
            known.thread_id = ident;
            known.os_tid = frame_walk::native_thread_id(t);
            if (known.os_tid == 0 && buffer != nullptr) {
                known.os_tid = buffer->os_tid;
            }
            if (known.os_tid == 0) {
                known.os_tid = os_tid_of_pthread(ident); // the thread state is in the list: it is alive
            }
            python::detail::PendingExceptionGuard guard;
            std::string name;
            describe_from_threading(ident, name, known.os_tid);
            if (name.empty() && buffer != nullptr) {
                name = core.thread_name(*buffer);
            }
            if (!name.empty()) {
                known.name = names().intern(LocationKind::other, name, name, "<thread>", 0);
            }
        } else if (known.os_tid == 0 && round_ % 8 == 0) {
            // Before 3.11 the kernel id comes from threading, which may be
            // imported (or the thread registered) after the first sighting.
            python::detail::PendingExceptionGuard guard;
            std::string name;
            describe_from_threading(ident, name, known.os_tid);
            if (known.name == nullptr && !name.empty()) {
                known.name = names().intern(LocationKind::other, name, name, "<thread>", 0);
            }
        }
        known.seen_round = round_;
        last_key_ = key;
        return known;
    }

    ThreadBuffer* match_buffer(PyThreadState* t) {
        const std::uint64_t tid = frame_walk::native_thread_id(t);
        const std::uint64_t handle = frame_walk::thread_id(t);
        for (std::size_t i = 0; i < buffers_.size(); ++i) {
            ThreadBuffer& buffer = *buffers_[i];
            if (matched_[i] || buffer.exited.load(std::memory_order_acquire)) {
                continue;
            }
            if (tid != 0 ? buffer.os_tid == tid : buffer.thread_handle == handle) {
                matched_[i] = true;
                return &buffer;
            }
        }
        return nullptr;
    }

    int line_of(const SourceLocation* location, PyCodeObject* code, int offset) noexcept {
        const auto bits = (reinterpret_cast<std::uintptr_t>(location) >> 4) ^ static_cast<std::uintptr_t>(offset) * 31u;
        LineEntry& entry = lines_[bits & (line_cache_size - 1)];
        if (entry.location != location || entry.offset != offset) {
            entry = LineEntry{location, offset, frame_walk::line_of(code, offset)};
        }
        return entry.line;
    }

    void add_frame(std::uint64_t now, const SourceLocation* location, std::uint64_t line) {
        const auto index = static_cast<std::uint32_t>(events_.size() - staged_.back().first - 1);
        events_.push_back(Event{now, location_id(location), line, index, EventKind::sample_frame, 0, 0});
    }

    void stage_header(std::uint64_t key, std::uint64_t now, const Known& known, bool native) {
        staged_.push_back(Staged{key, events_.size(), 0, native});
        events_.push_back(Event{now, known.os_tid, location_id(known.name), 0, EventKind::sample, 0, 0});
    }

    void close_sample() noexcept {
        Staged& sample = staged_.back();
        sample.frames = events_.size() - sample.first - 1;
        events_[sample.first].aux = static_cast<std::uint32_t>(sample.frames);
    }

    void stage_python_thread(const SessionCore& core, PyThreadState* t, const ThreadBuffer* own_buffer,
                             std::uint64_t now) {
        ThreadBuffer* buffer = match_buffer(t);
        if (buffer == own_buffer) {
            buffer = nullptr;
        }
        const Known& known = known_python_thread(core, t, buffer);
        std::size_t raw_count = frame_walk::walk(t, raw_.data(), raw_.size());
        const bool truncated = raw_count > max_frames_;
        raw_count = truncated ? max_frames_ : raw_count;
        const std::size_t zone_count = buffer != nullptr ? buffer->zones.read(zones_.data(), zones_.size()) : 0;
        stage_header(last_key_, now, known, false);

        if (truncated) {
            add_frame(now, truncated_, 0); // the stack is cut: say so where the cut is
        }
        interleave(
            raw_.data(), raw_count, zones_.data(), zone_count,
            [&](const frame_walk::RawFrame& frame) {
                const SourceLocation* location = code_location(frame.code);
                add_frame(now, location,
                          static_cast<std::uint64_t>(line_of(location, frame.code, frame.byte_offset)));
            },
            [&](const SourceLocation* zone) { add_frame(now, zone, 0); });
        close_sample();
    }

    void stage_native_thread(const SessionCore& core, ThreadBuffer& buffer, std::uint64_t now) {
        const std::uint64_t key = buffer.os_tid | native_key_bit;
        Known& known = known_[key];
        if (known.seen_round == 0) {
            known.os_tid = buffer.os_tid;
            const std::string name = core.thread_name(buffer);
            if (!name.empty()) {
                known.name = names().intern(LocationKind::other, name, name, "<thread>", 0);
            }
        }
        known.seen_round = round_;
        const std::size_t zone_count = buffer.zones.read(zones_.data(), zones_.size());
        stage_header(key, now, known, true);
        for (std::size_t z = 0; z < zone_count; ++z) {
            if (zones_[z].location != nullptr) {
                add_frame(now, zones_[z].location, 0);
            }
        }
        close_sample();
        staged_.back().native = true;
    }

    static constexpr std::size_t line_cache_size = 4096;

    std::vector<frame_walk::RawFrame> raw_;
    std::vector<ZoneStack::Entry> zones_;
    std::size_t max_frames_;
    const SourceLocation* truncated_; // the outermost frame of a cut stack
    std::vector<std::shared_ptr<ThreadBuffer>> buffers_;
    std::vector<bool> matched_;
    std::vector<Staged> staged_;
    std::vector<Event> events_;
    std::unordered_map<std::uint64_t, Known> known_;
    std::uint64_t round_ = 0;
    std::uint64_t last_key_ = 0;
    std::unique_ptr<LineEntry[]> lines_{new LineEntry[line_cache_size]()};
};

} // namespace detail
} // namespace python
} // namespace pycroscope
