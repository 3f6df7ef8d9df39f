#pragma once
// Sampler: the statistical collector. At a fixed rate it records the stack of
// every thread, Python frames and native PYCRO_SCOPE zones interleaved in true
// call order, as `sample` + `sample_frame` events (core/event.hpp).
//
//     pycroscope::Session<pycroscope::NativeZones, pycroscope::python::Sampler> session(config);
//     session.collector<pycroscope::python::Sampler>().options.rate_hz = 200;
//     session.start();          // GIL held or not
//     ...
//     session.stop();           // before Py_FinalizeEx
//
// Mechanism (docs/sampling.md): nothing takes the GIL to take a sample.
// Each sampled thread has a slot (sample_slots.hpp) that one producer fills
// with raw samples (code pointers, instruction offsets, open zones):
//  - clock cpu (default): a POSIX timer on the thread's own CPU clock fires a
//    real-time signal on that thread after each period of CPU it burns; the
//    handler copies the thread's own frame chain (safe reads, no lock, no
//    allocation). CPU-weighted by construction: a thread waiting for the GIL,
//    sleeping or blocked is not sampled.
//  - clock wall: a ticking thread (absolute deadlines) walks every thread's
//    chain from outside through safe reads (process_vm_readv), as py-spy and
//    Austin do; no signal is sent.
// The sampler thread takes the GIL every 20 ms only to find new and gone
// threads and to name the raw frames, validating each code pointer
// (sample_drain.hpp, code_graveyard.hpp).
//
// Bias that remains (measured in docs/sampling.md):
//  - CPU timers fire at the kernel's scheduler tick (CONFIG_HZ, 250 Hz here):
//    above it a raw sample carries the periods it stands for (1 + overrun),
//    so counts equal CPU time x rate, but a thread yields at most HZ distinct
//    stacks per second, and CPU burnt in a phase shorter than a tick is
//    credited to the stack at the next tick.
//  - The wall clock reads frames of running threads: a torn stack fails
//    validation (dropped) or mixes two moments.
//  - Threads that live less than one drain period may be missed.
//  - A signal pending when the thread enters poll/select/epoll_wait makes
//    them return EINTR (SA_RESTART covers the other calls).
// Fallback: where this cannot run (not Linux, process_vm_readv forbidden,
// no free real-time signal) or with use_gil_sampler, the older mechanism
// runs (run_gil_sampler): a thread that takes the GIL at each tick and
// walks every thread state's frame chain (sampling_round.hpp). Its bias:
//  - Samples land only where the GIL changes hands (eval-breaker points
//    after the 5 ms switch interval): the rate is capped near 160-330 Hz,
//    long C calls holding the GIL are under-sampled, and a script computing
//    67% / sleeping 33% in 1-5 ms bursts read as 95% sleep.
//  - While it holds the GIL the program does not run Python.
// Running or idle (both mechanisms' wall view): a thread is "running" when
// its CPU clock advanced by at least 10% of the wall time since the previous
// tick; waiting for the GIL, sleeping or blocked in I/O is idle. The CPU
// clock only records running threads. options.include_idle is the older
// spelling of the wall clock.
//
// Shutdown: stop() joins the thread. Called with the GIL held, it releases
// the GIL while it waits, so a tick waiting for the GIL can finish. Stop the
// session before Py_FinalizeEx (python/shutdown.hpp): the thread never takes
// the GIL once the interpreter is finalizing. After fork() the child has no
// sampler thread: stop() in the child forgets it without joining.
// Runtime control: pause(), resume(), set_rate(); the builtin module's
// start_sampling()/stop_sampling() reach the running Sampler through
// active_sampler_control().

#include "pycroscope/core/fork_child.hpp"
#include "pycroscope/core/error.hpp"
#include "pycroscope/core/session_core.hpp"
#include "pycroscope/core/thread_registry.hpp"
#include "pycroscope/python/runtime/cpython.hpp"
#include "pycroscope/python/runtime/safe_read.hpp"
#include "pycroscope/python/sampler/code_graveyard.hpp"
#include "pycroscope/python/sampler/sample_drain.hpp"
#include "pycroscope/python/sampler/sample_slots.hpp"
#include "pycroscope/python/sampler/sampling_round.hpp"

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include <algorithm>
#include <ctime>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#include <unistd.h>
#endif

namespace pycroscope {
namespace python {

// What a sample stands for.
//  cpu:  a period of a thread's CPU time; only threads that run are sampled,
//        each in proportion to the CPU it burns (the default).
//  wall: a period of wall time; every thread is sampled at every tick,
//        running or not (the running flag tells them apart).
enum class SamplerClock : std::uint8_t { cpu, wall };

inline const char* to_string(SamplerClock clock) noexcept { return clock == SamplerClock::cpu ? "cpu" : "wall"; }

struct SamplerOptions {
    bool enabled = true;      // false: start() does nothing (a session type shared with tracing mode)
    double rate_hz = 100.0;   // samples per second of CPU time (cpu) or of wall time (wall), (0, 10000]
    SamplerClock clock = SamplerClock::cpu;
    bool include_idle = false; // also record threads that are not running: the wall clock
    bool start_paused = false; // start with the sampler paused (resume() or pycroscope.start_sampling())
    std::size_t max_frames = 512; // Python frames per sample; deeper stacks lose their outermost frames
    // start() before Py_Initialize is allowed: the host then calls attach()
    // after Py_Initialize to start sampling (otherwise start() throws).
    bool deferred = false;
    // The older mechanism (a thread that takes the GIL at each tick: biased,
    // see the top of this file); also used where the GIL-free one cannot run.
    bool use_gil_sampler = false;
};

struct SamplerStats {
    std::uint64_t ticks = 0;        // rounds taken
    std::uint64_t samples = 0;      // sample events written
    std::uint64_t missed_ticks = 0; // ticks dropped because a round ran late
    std::uint64_t gil_wait_ns = 0;  // total time waiting for the GIL
    std::uint64_t hold_ns = 0;      // total time holding it (walk and staging)
    double active_seconds = 0;      // time between consecutive ticks, pauses left out
    std::uint64_t intervals = 0;    // tick-to-tick intervals in active_seconds
    std::uint64_t dropped = 0;      // raw samples lost to a full per-thread buffer
    std::uint64_t invalid_frames = 0; // frames dropped because their code object failed validation
    bool gil_free = false;          // the GIL-free mechanism ran (sample_slots.hpp), not the GIL-taking one
    double cpu_seconds = 0;         // CPU time the sampled threads burnt while sampled (cpu clock)
    // Ticks per second while sampling: the achieved rate.
    double achieved_rate() const noexcept { return active_seconds > 0 ? intervals / active_seconds : 0.0; }
};

namespace detail {

inline void validate_rate(double hz) {
    if (!(hz > 0.0) || !std::isfinite(hz) || hz > 10000.0) {
        throw ConfigError("Sampler: rate must be more than 0 and at most 10000 Hz, got " + std::to_string(hz));
    }
}

inline bool interpreter_finalizing() noexcept {
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing() != 0;
#else
    return _Py_IsFinalizing() != 0;
#endif
}

// What the collector, its thread and the builtin module share.
class SamplerControl {
public:
    explicit SamplerControl(const SamplerOptions& options)
        : period_ns_(static_cast<std::int64_t>(1e9 / options.rate_hz)), paused_(options.start_paused),
          include_idle_(options.include_idle || options.clock == SamplerClock::wall),
          wall_clock_(options.include_idle || options.clock == SamplerClock::wall) {
        slot_pool().paused.store(options.start_paused, std::memory_order_relaxed);
    }

    void set_rate(double hz) {
        validate_rate(hz);
        period_ns_.store(static_cast<std::int64_t>(1e9 / hz), std::memory_order_relaxed);
        wake_.notify_all();
    }
    double rate() const noexcept { return 1e9 / static_cast<double>(period_ns_.load(std::memory_order_relaxed)); }
    void pause() noexcept {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            paused_ = true;
        }
        slot_pool().paused.store(true, std::memory_order_relaxed); // CPU-timer handlers record nothing
        wake_.notify_all();
    }
    void resume() noexcept {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            paused_ = false;
        }
        slot_pool().paused.store(false, std::memory_order_relaxed);
        wake_.notify_all();
    }
    bool paused() const noexcept {
        std::lock_guard<std::mutex> lock(mutex_);
        return paused_;
    }
    void request_stop() noexcept {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stop_requested_ = true;
        }
        wake_.notify_all();
    }
    bool stop_requested() const noexcept {
        std::lock_guard<std::mutex> lock(mutex_);
        return stop_requested_;
    }
    bool include_idle() const noexcept { return include_idle_; }
    // Samples wall time (SamplerOptions::clock, or include_idle) rather than CPU time.
    bool wall_clock() const noexcept { return wall_clock_; }

    SamplerStats stats() const noexcept {
        SamplerStats s;
        s.ticks = ticks.load(std::memory_order_relaxed);
        s.samples = samples.load(std::memory_order_relaxed);
        s.missed_ticks = missed_ticks.load(std::memory_order_relaxed);
        s.gil_wait_ns = gil_wait_ns.load(std::memory_order_relaxed);
        s.hold_ns = hold_ns.load(std::memory_order_relaxed);
        s.active_seconds = static_cast<double>(active_ns.load(std::memory_order_relaxed)) / 1e9;
        s.intervals = intervals.load(std::memory_order_relaxed);
        s.dropped = dropped.load(std::memory_order_relaxed);
        s.invalid_frames = invalid_frames.load(std::memory_order_relaxed);
        s.gil_free = gil_free.load(std::memory_order_relaxed);
        s.cpu_seconds = static_cast<double>(cpu_ns_sampled.load(std::memory_order_relaxed)) / 1e9;
        return s;
    }

    // Sampler thread: waits for the next tick. Returns false to exit; sets
    // resumed when the sampler was paused meanwhile.
    bool wait_for_tick(std::chrono::steady_clock::time_point& next, bool& resumed) {
        std::unique_lock<std::mutex> lock(mutex_);
        resumed = false;
        for (;;) {
            if (stop_requested_) {
                return false;
            }
            if (paused_) {
                wake_.wait(lock);
                resumed = true;
                next = std::chrono::steady_clock::now();
                continue;
            }
            const auto period = std::chrono::nanoseconds(period_ns_.load(std::memory_order_relaxed));
            const auto now = std::chrono::steady_clock::now();
            if (next > now + period) {
                next = now + period; // the rate went up
            }
            if (now >= next) {
                if (now - next > period) {
                    // Ran late (a long GIL hold): skip the lost ticks instead of bursting.
                    const auto behind = static_cast<std::uint64_t>((now - next) / period);
                    missed_ticks.fetch_add(behind, std::memory_order_relaxed);
                    next += period * static_cast<std::int64_t>(behind);
                }
                next += period;
                return true;
            }
            wake_.wait_until(lock, next);
        }
    }

    // Wall-clock ticker: like wait_for_tick, but sleeps with clock_nanosleep
    // to an absolute deadline (no condition-variable wake-up latency) and
    // catches up on ticks it ran late for (up to catch_up_limit periods:
    // a longer stall is skipped and counted), so the rate got is the rate
    // asked even on a loaded machine.
    bool wait_for_tick_precise(std::chrono::steady_clock::time_point& next, bool& resumed) {
        static constexpr std::int64_t catch_up_limit = 20;
        resumed = false;
        for (;;) {
            {
                std::unique_lock<std::mutex> lock(mutex_);
                if (stop_requested_) {
                    return false;
                }
                if (paused_) {
                    wake_.wait(lock);
                    resumed = true;
                    next = std::chrono::steady_clock::now();
                    continue;
                }
            }
            const auto period = std::chrono::nanoseconds(period_ns_.load(std::memory_order_relaxed));
            const auto now = std::chrono::steady_clock::now();
            if (next > now + period) {
                next = now + period; // the rate went up
            }
            if (now >= next) {
                if (now - next > period * catch_up_limit) {
                    const auto behind = static_cast<std::uint64_t>((now - next) / period);
                    missed_ticks.fetch_add(behind, std::memory_order_relaxed);
                    next += period * static_cast<std::int64_t>(behind);
                }
                next += period;
                return true;
            }
#if defined(__linux__)
            // At most 10 ms at a time: stop and pause are seen within that.
            const auto until = std::min(next, now + std::chrono::milliseconds(10));
            const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(until.time_since_epoch()).count();
            timespec deadline{};
            deadline.tv_sec = static_cast<time_t>(ns / 1000000000);
            deadline.tv_nsec = static_cast<long>(ns % 1000000000);
            ::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, nullptr); // steady_clock is CLOCK_MONOTONIC
#else
            std::this_thread::sleep_until(std::min(next, now + std::chrono::milliseconds(10)));
#endif
        }
    }

    std::atomic<std::uint64_t> ticks{0};
    std::atomic<std::uint64_t> samples{0};
    std::atomic<std::uint64_t> missed_ticks{0};
    std::atomic<std::uint64_t> gil_wait_ns{0};
    std::atomic<std::uint64_t> hold_ns{0};
    std::atomic<std::uint64_t> active_ns{0};
    std::atomic<std::uint64_t> intervals{0};
    std::atomic<std::uint64_t> dropped{0};
    std::atomic<std::uint64_t> invalid_frames{0};
    std::atomic<std::uint64_t> cpu_ns_sampled{0};
    std::atomic<bool> gil_free{false};

    std::int64_t period_ns() const noexcept { return period_ns_.load(std::memory_order_relaxed); }

    // Sampler thread: sleeps up to `for_how_long`; false once stop was asked.
    bool wait_for(std::chrono::nanoseconds for_how_long) {
        std::unique_lock<std::mutex> lock(mutex_);
        if (!stop_requested_) {
            wake_.wait_for(lock, for_how_long, [&] { return stop_requested_; });
        }
        return !stop_requested_;
    }

private:
    std::atomic<std::int64_t> period_ns_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    bool paused_;
    bool stop_requested_ = false;
    const bool include_idle_;
    const bool wall_clock_;
};

// The running Sampler's control, for the builtin module (one sampler at a
// time: only one session records). Guarded by active_sampler_mutex().
inline std::mutex& active_sampler_mutex() {
    static std::mutex* mutex = new std::mutex();
    return *mutex;
}
inline std::shared_ptr<SamplerControl>& active_sampler_slot() {
    static auto* slot = new std::shared_ptr<SamplerControl>();
    return *slot;
}

// fork(): the child has no sampler thread. Its mutexes may have been held by
// the thread that is gone: forget them (leaked, never unlocked or freed).
inline void forget_sampler_in_child() noexcept {
    new (&active_sampler_mutex()) std::mutex();
    new (&active_sampler_slot()) std::shared_ptr<SamplerControl>();
    forget_slots_in_child();
}

inline std::uint64_t elapsed_ns(std::chrono::steady_clock::time_point since) noexcept {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - since).count());
}

// The sampler thread's body when the GIL-free mechanism is unavailable.
inline void run_gil_sampler(std::shared_ptr<SamplerControl> control, const SessionCore* core, std::uint64_t epoch,
                        std::size_t max_frames) {
    set_thread_name("pycroscope-sampler");
    auto next = std::chrono::steady_clock::now();
    bool resumed = false;
    if (interpreter_finalizing()) {
        return;
    }
    // One thread state for the sampler's whole life: PyGILState_Ensure per
    // tick would create and free one each time.
    const PyGILState_STATE gil = PyGILState_Ensure();
    PyThreadState* own = PyThreadState_Get();
    PyEval_SaveThread();
    std::unique_ptr<SamplingRound> collector;
    try {
        collector = std::make_unique<SamplingRound>(max_frames);
    } catch (...) {
        collector = nullptr;
    }
    next = std::chrono::steady_clock::now();
    auto last_tick = next;
    bool first_tick = true;
    bool interpreter_alive = true;
    while (collector != nullptr && control->wait_for_tick(next, resumed)) {
        if (resumed) {
            collector->reset_cpu_baselines();
        }
        if (interpreter_finalizing()) {
            interpreter_alive = false; // never take the GIL during Py_FinalizeEx
            break;
        }
        const auto asked = std::chrono::steady_clock::now();
        if (!resumed && !first_tick) {
            control->active_ns.fetch_add(
                static_cast<std::uint64_t>(
                    std::chrono::duration_cast<std::chrono::nanoseconds>(asked - last_tick).count()),
                std::memory_order_relaxed);
            control->intervals.fetch_add(1, std::memory_order_relaxed);
        }
        first_tick = false;
        last_tick = asked;
        PyEval_RestoreThread(own);
        const auto got = std::chrono::steady_clock::now();
        if (control->stop_requested()) {
            PyEval_SaveThread();
            break;
        }
        try {
            collector->collect(*core, own, pycroscope::detail::tls_slot.buffer);
        } catch (...) {
            // Out of memory while staging: this tick is lost, the next one tries again.
        }
        PyEval_SaveThread();
        control->gil_wait_ns.fetch_add(
            static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(got - asked).count()),
            std::memory_order_relaxed);
        control->hold_ns.fetch_add(elapsed_ns(got), std::memory_order_relaxed);
        const std::size_t written = collector->publish(epoch, control->include_idle());
        control->ticks.fetch_add(1, std::memory_order_relaxed);
        control->samples.fetch_add(written, std::memory_order_relaxed);
    }
    collector.reset();
    if (interpreter_alive && Py_IsInitialized() && !interpreter_finalizing()) {
        PyEval_RestoreThread(own);
        PyGILState_Release(gil);
    }
}

// Wall clock: the ticking thread. Never takes the GIL: at each tick it walks
// every active slot's thread from outside through safe reads
// (frame_walk::walk_raw + safe_read::CheckedReader) into that slot's ring.
// "running": the thread's CPU clock advanced by at least 10% of the wall
// time since its previous tick (as SamplingRound::is_running).
inline void run_ticker(std::shared_ptr<SamplerControl> control) {
    set_thread_name("pycroscope-ticker");
    struct Last {
        std::int64_t cpu = -1;
        std::int64_t wall = 0;
        std::uint32_t generation = 0;
    };
    std::vector<Last> last(SlotPool::capacity);
    auto next = std::chrono::steady_clock::now();
    auto last_tick = next;
    bool resumed = false;
    bool first_tick = true;
    SlotPool& pool = slot_pool();
    while (control->wait_for_tick_precise(next, resumed)) {
        const auto now = std::chrono::steady_clock::now();
        if (!resumed && !first_tick) {
            control->active_ns.fetch_add(
                static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now - last_tick).count()),
                std::memory_order_relaxed);
            control->intervals.fetch_add(1, std::memory_order_relaxed);
        }
        if (resumed) {
            for (Last& entry : last) {
                entry.cpu = -1;
            }
        }
        first_tick = false;
        last_tick = now;
        const std::int64_t wall = monotonic_ns();
        const std::uint32_t made = pool.made.load(std::memory_order_acquire);
        for (std::uint32_t i = 0; i < made; ++i) {
            ThreadSlot* slot = pool.slots[i].load(std::memory_order_acquire);
            if (slot == nullptr) {
                continue;
            }
            slot->busy.fetch_add(1, std::memory_order_seq_cst);
            if (slot->active.load(std::memory_order_seq_cst)) {
                Last& previous = last[i];
                const std::uint32_t generation = slot->generation.load(std::memory_order_relaxed);
                if (previous.generation != generation) {
                    previous = Last{-1, 0, generation};
                }
                const std::int64_t cpu = thread_cpu_ns(slot->os_tid);
                {
                    bool running = cpu < 0; // unknown counts as running
                    if (cpu >= 0 && previous.cpu >= 0 && wall > previous.wall) {
                        running = (cpu - previous.cpu) * 100 >=
                                  (wall - previous.wall) * SamplingRound::running_cpu_share_percent;
                    }
                    previous.cpu = cpu;
                    previous.wall = wall;
                    record_raw_sample(*slot, 1, running ? sample_flags::running : 0);
                }
            }
            slot->busy.fetch_sub(1, std::memory_order_seq_cst);
        }
        control->ticks.fetch_add(1, std::memory_order_relaxed);
    }
}

// The sampler thread's body with the GIL-free mechanism: CPU timers (cpu)
// or the ticking thread (wall) fill the slots; this thread takes the GIL
// only every drain period, to find threads and name what was sampled.
inline void run_gil_free_sampler(std::shared_ptr<SamplerControl> control, const SessionCore* core,
                                 std::uint64_t epoch, std::size_t max_frames) {
    set_thread_name("pycroscope-sampler");
    if (interpreter_finalizing()) {
        return;
    }
    control->gil_free.store(true, std::memory_order_relaxed);
    const PyGILState_STATE gil = PyGILState_Ensure();
    PyThreadState* own = PyThreadState_Get();
    start_code_graveyard();
    std::unique_ptr<RawSampleDrain> drain;
    try {
        drain = std::make_unique<RawSampleDrain>(max_frames, !control->wall_clock());
        drain->scan(*core, own, pycroscope::detail::tls_slot.buffer, control->period_ns(), control->paused());
    } catch (...) {
        drain = nullptr;
    }
    PyEval_SaveThread();
    std::thread ticker;
    if (drain != nullptr && control->wall_clock()) {
        ticker = std::thread(&run_ticker, control);
    }
    bool interpreter_alive = true;
    bool running = drain != nullptr;
    while (running) {
        // 20 ms: short enough that few threads live and die unseen and the
        // slots' rings never fill; long enough that taking the GIL costs little.
        running = control->wait_for(std::chrono::milliseconds(20));
        if (interpreter_finalizing() || !Py_IsInitialized()) {
            interpreter_alive = false; // never take the GIL during Py_FinalizeEx
            break;
        }
        PyEval_RestoreThread(own);
        try {
            drain->scan(*core, own, pycroscope::detail::tls_slot.buffer, control->period_ns(), control->paused());
            drain->resolve();
        } catch (...) {
            // Out of memory while staging: these samples are lost, the next round tries again.
        }
        if (!running) {
            drain->retire_all();
        }
        PyEval_SaveThread();
        const std::size_t written = drain->publish(epoch);
        control->samples.fetch_add(written, std::memory_order_relaxed);
        control->invalid_frames.store(drain->invalid_frames(), std::memory_order_relaxed);
        control->dropped.store(drain->dropped(), std::memory_order_relaxed);
        control->cpu_ns_sampled.store(drain->cpu_ns_sampled(), std::memory_order_relaxed);
        if (!control->wall_clock()) {
            // CPU clock: the rate is samples per CPU second of the sampled threads.
            control->ticks.store(drain->raw_samples(), std::memory_order_relaxed);
            control->intervals.store(drain->weighted_samples(), std::memory_order_relaxed);
            control->active_ns.store(drain->cpu_ns_sampled(), std::memory_order_relaxed);
        }
    }
    if (ticker.joinable()) {
        control->request_stop();
        ticker.join();
    }
    drain.reset(); // deletes the timers of threads still known (their last samples are lost if not drained)
    if (interpreter_alive && Py_IsInitialized() && !interpreter_finalizing()) {
        PyEval_RestoreThread(own);
        stop_code_graveyard();
        PyGILState_Release(gil);
    } else {
        stop_code_graveyard();
    }
}

// True when this process can run the GIL-free mechanism for that clock.
inline bool gil_free_sampling_available(bool wall_clock) {
#if PYCROSCOPE_SIGNAL_SAMPLER
    if (!safe_read::available()) {
        return false;
    }
    return wall_clock || sample_signal() != 0;
#else
    (void)wall_clock;
    return false;
#endif
}

inline void run_sampler(std::shared_ptr<SamplerControl> control, const SessionCore* core, std::uint64_t epoch,
                        std::size_t max_frames, bool gil_free) {
    if (gil_free) {
        run_gil_free_sampler(std::move(control), core, epoch, max_frames);
    } else {
        run_gil_sampler(std::move(control), core, epoch, max_frames);
    }
}

} // namespace detail

// The running Sampler's control (null when none runs): what
// pycroscope.start_sampling() and stop_sampling() act on.
inline std::shared_ptr<detail::SamplerControl> active_sampler_control() {
    std::lock_guard<std::mutex> lock(detail::active_sampler_mutex());
    return detail::active_sampler_slot();
}

class Sampler {
public:
    static constexpr const char* name = "sampler";

    SamplerOptions options;

    void start(SessionCore& core) {
        if (!options.enabled) {
            return;
        }
        detail::validate_rate(options.rate_hz);
        if (options.max_frames == 0) {
            throw ConfigError("Sampler: max_frames must be at least 1");
        }
        if (!Py_IsInitialized() && !options.deferred) {
            throw ConfigError("Sampler: the interpreter is not initialized; start the session after "
                              "Py_Initialize() or set SamplerOptions::deferred");
        }
        zone_reader_ = std::make_unique<ZoneStackReader>(); // samples interleave the threads' open zones
        if (!Py_IsInitialized()) {
            // The thread starts in attach(): taking the GIL while Py_Initialize
            // is still setting up the runtime's locks would race with it.
            pending_core_ = &core;
            return;
        }
        launch(core);
    }

    // Deferred mode: starts the sampling thread of a sampler started before
    // Py_Initialize. Does nothing when none is pending.
    void attach() {
        if (pending_core_ == nullptr || !Py_IsInitialized()) {
            return;
        }
        SessionCore& core = *pending_core_;
        pending_core_ = nullptr;
        launch(core);
    }

    void stop(SessionCore&) noexcept {
        pending_core_ = nullptr;
        // Released on every way out, after the last sample was taken.
        const std::unique_ptr<ZoneStackReader> zone_reader = std::move(zone_reader_);
        if (!thread_.joinable()) {
            return;
        }
        {
            std::lock_guard<std::mutex> lock(detail::active_sampler_mutex());
            if (detail::active_sampler_slot() == control_) {
                detail::active_sampler_slot().reset();
            }
        }
        if (current_pid() != pid_) {
            new std::thread(std::move(thread_)); // forked child: that thread does not exist here
            return;
        }
        control_->request_stop();
        if (Py_IsInitialized() && PyGILState_Check()) {
            // A tick may be waiting for the GIL this thread holds.
            PyThreadState* saved = PyEval_SaveThread();
            thread_.join();
            PyEval_RestoreThread(saved);
        } else {
            thread_.join();
        }
        last_stats_ = control_->stats();
    }

    // Runtime control (any thread, while the session runs).
    void pause() noexcept {
        if (control_) {
            control_->pause();
        }
    }
    void resume() noexcept {
        if (control_) {
            control_->resume();
        }
    }
    // Throws ConfigError for a rate out of (0, 10000].
    void set_rate(double hz) {
        detail::validate_rate(hz);
        options.rate_hz = hz;
        if (control_) {
            control_->set_rate(hz);
        }
    }
    bool paused() const noexcept { return control_ ? control_->paused() : options.start_paused; }

    // Live while running; the final figures after stop().
    SamplerStats stats() const noexcept {
        if (control_ && thread_.joinable()) {
            return control_->stats();
        }
        return last_stats_;
    }

private:
    void launch(SessionCore& core) {
        forget_in_forked_child<&detail::forget_sampler_in_child>();
        control_ = std::make_shared<detail::SamplerControl>(options);
        pid_ = current_pid();
        const bool gil_free =
            !options.use_gil_sampler && detail::gil_free_sampling_available(control_->wall_clock());
        thread_ = std::thread(&detail::run_sampler, control_, &core, core.epoch(), options.max_frames, gil_free);
        std::lock_guard<std::mutex> lock(detail::active_sampler_mutex());
        detail::active_sampler_slot() = control_;
    }

    SessionCore* pending_core_ = nullptr;
    std::unique_ptr<ZoneStackReader> zone_reader_;
    static std::uint64_t current_pid() noexcept {
#if defined(__unix__) || defined(__APPLE__)
        return static_cast<std::uint64_t>(::getpid());
#else
        return 0;
#endif
    }

    std::shared_ptr<detail::SamplerControl> control_;
    std::thread thread_;
    std::uint64_t pid_ = 0;
    SamplerStats last_stats_;
};

} // namespace python
} // namespace pycroscope
