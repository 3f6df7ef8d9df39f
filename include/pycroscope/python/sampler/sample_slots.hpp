#pragma once
// Per-thread raw sample buffers and the CPU-time timers that fill them.
//
// A ThreadSlot belongs to one sampled thread. Its ring holds raw samples:
// the thread's frame chain as pointers (frame_walk::walk_raw) and its open
// native zones, written by exactly one producer and read by the drain side
// (sample_drain.hpp), which resolves them to names under the GIL:
//  - clock cpu: the producer is a signal handler running ON the sampled
//    thread, fired by a POSIX timer on that thread's CPU clock
//    (timer_create + SIGEV_THREAD_ID). The kernel fires it only while the
//    thread burns CPU, so samples are CPU-weighted by construction; a thread
//    waiting for the GIL, sleeping or blocked burns none and is not sampled.
//  - clock wall: the producer is the sampler's ticking thread, walking the
//    thread's chain from outside through safe reads.
// The slot's ring is never the thread's event ring: the handler may interrupt
// the thread in the middle of writing that one.
//
// The handler is async-signal-safe: no lock, no allocation, no Python API.
// It finds its slot from the timer's sigev_value (slot index and generation,
// never a pointer to something that could be freed), reads its frame chain
// with process_vm_readv (safe_read.hpp: a thread state freed while its thread
// still runs C code on the way out, or a chain torn mid-push, fails a read
// instead of faulting), and copies at most max_frames + 1 frames. errno is
// saved and restored. Slots are never freed (a signal queued before its timer
// was deleted may still arrive): they are reused with a new generation.
//
// Signal: the first real-time signal SIGRTMIN+k whose disposition is SIG_DFL,
// taken once per process and kept (a late signal with SIG_DFL would kill the
// process). Programs using SIGPROF / setitimer are untouched. SA_RESTART: a
// system call interrupted by the signal restarts where the kernel allows it;
// CPU timers only fire while the thread runs, so a thread blocked in a call is
// not interrupted, but a call entered with the signal pending (nanosleep,
// poll, select, which never restart) may return EINTR to C code that does not
// retry (Python's own calls retry, PEP 475).
//
// Timer resolution: the kernel checks CPU timers at its scheduler tick
// (CONFIG_HZ, 250 Hz on the machine measured in docs/benchmarks.md). Above
// HZ a timer fires once per tick with si_overrun counting the periods it
// missed: each raw sample carries that weight (1 + overrun) and the drain
// side writes it as that many samples, so the counts still equal CPU time x
// rate, with distinct stacks at most HZ per thread per second.

#include "pycroscope/core/clock.hpp"
#include "pycroscope/core/event.hpp"
#include "pycroscope/core/zone_stack.hpp"
#include "pycroscope/python/runtime/frame_walk.hpp"
#include "pycroscope/python/runtime/safe_read.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <memory>
#include <mutex>
#include <thread>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#define PYCROSCOPE_SIGNAL_SAMPLER 1
#else
#define PYCROSCOPE_SIGNAL_SAMPLER 0
#endif

namespace pycroscope {
namespace python {
namespace detail {

// One raw sample in a slot's ring: a header, then frames, then zones.
struct RawSampleHeader {
    std::uint64_t timestamp; // clock::now() ticks
    std::uint32_t weight;    // periods it stands for (1 + timer overrun)
    std::uint16_t frames;    // RawFrame records after the header
    std::uint8_t zones;      // ZoneStack::Entry records after the frames
    std::uint8_t flags;      // sample_flags (running)
};

class ThreadSlot {
public:
    static constexpr std::size_t ring_bytes = std::size_t{1} << 18; // 256 KiB: about 30 ms of deep stacks at 1 kHz

    explicit ThreadSlot(std::uint32_t index_) : index(index_), ring_(new unsigned char[ring_bytes]) {}

    const std::uint32_t index;

    // Producer side (one at a time: the handler of this slot's thread, or the ticker).
    // Writes one sample; false (counted in dropped) when the ring is full.
    bool write(const RawSampleHeader& header, const frame_walk::RawFrame* frames, const ZoneStack::Entry* zones) noexcept {
        const std::size_t size = sizeof header + header.frames * sizeof(frame_walk::RawFrame) +
                                 header.zones * sizeof(ZoneStack::Entry);
        const std::uint64_t head = head_.load(std::memory_order_relaxed);
        const std::uint64_t tail = tail_.load(std::memory_order_acquire);
        if (ring_bytes - (head - tail) < size) {
            dropped.fetch_add(1, std::memory_order_relaxed);
            return false;
        }
        std::uint64_t at = head;
        copy_in(at, &header, sizeof header);
        copy_in(at, frames, header.frames * sizeof(frame_walk::RawFrame));
        copy_in(at, zones, header.zones * sizeof(ZoneStack::Entry));
        head_.store(at, std::memory_order_release);
        return true;
    }

    // Consumer side (the drain). Calls f(header, frames, zones) per sample.
    template <class F>
    std::size_t drain(F&& f) {
        std::uint64_t tail = tail_.load(std::memory_order_relaxed);
        const std::uint64_t head = head_.load(std::memory_order_acquire);
        std::size_t count = 0;
        while (head - tail >= sizeof(RawSampleHeader)) {
            RawSampleHeader header;
            copy_out(tail, &header, sizeof header);
            copy_out(tail, frames_out_, header.frames * sizeof(frame_walk::RawFrame));
            copy_out(tail, zones_out_, header.zones * sizeof(ZoneStack::Entry));
            f(header, frames_out_, zones_out_);
            ++count;
        }
        tail_.store(tail, std::memory_order_release);
        return count;
    }

    // Frames the producer walks into before copying them to the ring.
    frame_walk::RawFrame* scratch() noexcept { return scratch_; }

    // Sampled thread and what the producer reads of it (set while inactive).
    std::atomic<PyThreadState*> tstate{nullptr};
    std::atomic<const ZoneStack*> zones{nullptr};
    std::uint64_t os_tid = 0;
    std::atomic<std::uint32_t> generation{0};
    std::atomic<bool> active{false};
    std::atomic<int> busy{0}; // producers inside write right now
    std::atomic<std::uint64_t> dropped{0};
#if PYCROSCOPE_SIGNAL_SAMPLER
    timer_t timer{};
    bool has_timer = false; // drain side only
#endif
    static constexpr std::size_t max_frames_limit = 1024;

    // Empties the ring; only while no producer can write (inactive, busy 0).
    void reset() noexcept {
        head_.store(0, std::memory_order_relaxed);
        tail_.store(0, std::memory_order_relaxed);
    }

private:
    void copy_in(std::uint64_t& at, const void* data, std::size_t size) noexcept {
        const auto* bytes = static_cast<const unsigned char*>(data);
        for (std::size_t i = 0; i < size; ++i) {
            ring_[(at + i) & (ring_bytes - 1)] = bytes[i];
        }
        at += size;
    }
    void copy_out(std::uint64_t& at, void* data, std::size_t size) noexcept {
        auto* bytes = static_cast<unsigned char*>(data);
        for (std::size_t i = 0; i < size; ++i) {
            bytes[i] = ring_[(at + i) & (ring_bytes - 1)];
        }
        at += size;
    }

    std::atomic<std::uint64_t> head_{0};
    std::atomic<std::uint64_t> tail_{0};
    std::unique_ptr<unsigned char[]> ring_;
    frame_walk::RawFrame scratch_[max_frames_limit + 1];
    frame_walk::RawFrame frames_out_[max_frames_limit + 1];
    ZoneStack::Entry zones_out_[ZoneStack::capacity];
};

// Every slot ever made, by index; never freed (see the top of this file).
struct SlotPool {
    static constexpr std::uint32_t capacity = 4096;
    std::atomic<ThreadSlot*> slots[capacity];
    std::atomic<std::uint32_t> made{0};
    std::atomic<std::uint32_t> max_frames{512}; // frames a producer copies (+1 tells a cut stack)
    std::atomic<bool> paused{false};            // producers record nothing while set
    std::mutex mutex;                           // acquire/release (drain side only)
    ThreadSlot* free_list[capacity];
    std::uint32_t free_count = 0;
};
inline SlotPool& slot_pool() {
    static SlotPool* pool = new SlotPool(); // never destroyed: signals may come late
    return *pool;
}

// A slot for a new thread (drain side). Null when all are taken.
inline ThreadSlot* acquire_slot(PyThreadState* tstate, const ZoneStack* zones, std::uint64_t os_tid) {
    SlotPool& pool = slot_pool();
    ThreadSlot* slot = nullptr;
    {
        std::lock_guard<std::mutex> lock(pool.mutex);
        if (pool.free_count > 0) {
            slot = pool.free_list[--pool.free_count];
        } else {
            const std::uint32_t index = pool.made.load(std::memory_order_relaxed);
            if (index >= SlotPool::capacity) {
                return nullptr;
            }
            slot = new ThreadSlot(index);
            pool.slots[index].store(slot, std::memory_order_release);
            pool.made.store(index + 1, std::memory_order_relaxed);
        }
    }
    slot->reset();
    slot->dropped.store(0, std::memory_order_relaxed);
    slot->tstate.store(tstate, std::memory_order_relaxed);
    slot->zones.store(zones, std::memory_order_relaxed);
    slot->os_tid = os_tid;
    slot->generation.fetch_add(1, std::memory_order_relaxed);
    slot->active.store(true, std::memory_order_release);
    return slot;
}

// Stops a slot's producer; the caller drains what is left, then releases it.
inline void deactivate_slot(ThreadSlot& slot) noexcept {
    slot.active.store(false, std::memory_order_seq_cst);
    slot.generation.fetch_add(1, std::memory_order_seq_cst);
    while (slot.busy.load(std::memory_order_seq_cst) != 0) {
        std::this_thread::yield(); // a producer finishes a bounded copy
    }
}

inline void release_slot(ThreadSlot& slot) {
    SlotPool& pool = slot_pool();
    std::lock_guard<std::mutex> lock(pool.mutex);
    pool.free_list[pool.free_count++] = &slot;
}

// One sample of the slot's thread, from whichever producer runs it.
inline void record_raw_sample(ThreadSlot& slot, std::uint32_t weight, std::uint8_t flags) noexcept {
    const std::size_t limit = slot_pool().max_frames.load(std::memory_order_relaxed) + 1;
    RawSampleHeader header{clock::now(), weight, 0, 0, flags};
    PyThreadState* tstate = slot.tstate.load(std::memory_order_relaxed);
    const std::size_t frames =
        tstate != nullptr ? frame_walk::walk_raw(tstate, slot.scratch(), limit, safe_read::CheckedReader{}) : 0;
    ZoneStack::Entry zones[ZoneStack::capacity];
    const ZoneStack* stack = slot.zones.load(std::memory_order_relaxed);
    const std::size_t zone_count = stack != nullptr ? stack->read(zones, ZoneStack::capacity) : 0;
    header.frames = static_cast<std::uint16_t>(frames);
    header.zones = static_cast<std::uint8_t>(zone_count);
    slot.write(header, slot.scratch(), zones);
}

#if PYCROSCOPE_SIGNAL_SAMPLER

inline std::uintptr_t slot_cookie(const ThreadSlot& slot) noexcept {
    return (static_cast<std::uintptr_t>(slot.generation.load(std::memory_order_relaxed)) << 16) | slot.index;
}

inline void on_sample_signal(int, siginfo_t* info, void*) noexcept {
    const int saved_errno = errno;
    if (info != nullptr && info->si_code == SI_TIMER && !slot_pool().paused.load(std::memory_order_relaxed)) {
        const auto cookie = reinterpret_cast<std::uintptr_t>(info->si_value.sival_ptr);
        const std::uint32_t index = static_cast<std::uint32_t>(cookie & 0xFFFF);
        ThreadSlot* slot = index < SlotPool::capacity ? slot_pool().slots[index].load(std::memory_order_acquire) : nullptr;
        if (slot != nullptr) {
            slot->busy.fetch_add(1, std::memory_order_seq_cst);
            if (slot->active.load(std::memory_order_seq_cst) &&
                slot->generation.load(std::memory_order_seq_cst) == static_cast<std::uint32_t>(cookie >> 16)) {
                const int overrun = info->si_overrun;
                record_raw_sample(*slot, 1 + static_cast<std::uint32_t>(overrun < 0 ? 0 : overrun),
                                  sample_flags::running);
            }
            slot->busy.fetch_sub(1, std::memory_order_seq_cst);
        }
    }
    errno = saved_errno;
}

// The signal the CPU timers deliver; 0 when none is free. Chosen and
// installed once per process (see the top of this file).
inline int sample_signal() {
    static const int chosen = [] {
        for (int signal = SIGRTMIN; signal <= SIGRTMAX; ++signal) {
            struct sigaction old {};
            if (::sigaction(signal, nullptr, &old) != 0) {
                continue;
            }
            if ((old.sa_flags & SA_SIGINFO) != 0 || old.sa_handler != SIG_DFL) {
                continue;
            }
            struct sigaction action {};
            action.sa_sigaction = &on_sample_signal;
            action.sa_flags = SA_SIGINFO | SA_RESTART;
            sigemptyset(&action.sa_mask);
            if (::sigaction(signal, &action, nullptr) == 0) {
                return signal;
            }
        }
        return 0;
    }();
    return chosen;
}

// Starts the CPU timer of the slot's thread, period_ns of its CPU time
// apart. False when the thread is gone or timers are unavailable.
inline bool arm_cpu_timer(ThreadSlot& slot, std::int64_t period_ns) noexcept {
    const int signal = sample_signal();
    if (signal == 0 || slot.os_tid == 0) {
        return false;
    }
    if (!slot.has_timer) {
        sigevent event{};
        event.sigev_notify = SIGEV_THREAD_ID;
        event.sigev_signo = signal;
        event.sigev_value.sival_ptr = reinterpret_cast<void*>(slot_cookie(slot));
#if defined(sigev_notify_thread_id)
        event.sigev_notify_thread_id = static_cast<pid_t>(slot.os_tid);
#else
        event._sigev_un._tid = static_cast<pid_t>(slot.os_tid);
#endif
        // MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED): that thread's CPU clock.
        const auto clock_id = static_cast<clockid_t>((~static_cast<unsigned>(slot.os_tid) << 3) | 6u);
        if (::timer_create(clock_id, &event, &slot.timer) != 0) {
            return false;
        }
        slot.has_timer = true;
    }
    itimerspec spec{};
    spec.it_interval.tv_sec = static_cast<time_t>(period_ns / 1000000000);
    spec.it_interval.tv_nsec = static_cast<long>(period_ns % 1000000000);
    spec.it_value = spec.it_interval;
    return ::timer_settime(slot.timer, 0, &spec, nullptr) == 0;
}

inline void delete_cpu_timer(ThreadSlot& slot) noexcept {
    if (slot.has_timer) {
        ::timer_delete(slot.timer);
        slot.has_timer = false;
    }
}

#endif

// fork(): the child has none of the parent's timers (POSIX timers are not
// inherited) and none of its threads: every slot is forgotten.
inline void forget_slots_in_child() noexcept {
    SlotPool& pool = slot_pool();
    new (&pool.mutex) std::mutex();
    pool.free_count = 0;
    const std::uint32_t made = pool.made.load(std::memory_order_relaxed);
    for (std::uint32_t i = 0; i < made; ++i) {
        ThreadSlot* slot = pool.slots[i].load(std::memory_order_relaxed);
        if (slot != nullptr) {
            slot->active.store(false, std::memory_order_relaxed);
            slot->busy.store(0, std::memory_order_relaxed);
#if PYCROSCOPE_SIGNAL_SAMPLER
            slot->has_timer = false;
#endif
            pool.free_list[pool.free_count++] = slot;
        }
    }
}

} // namespace detail
} // namespace python
} // namespace pycroscope
