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
// Mechanism: an in-process thread that takes the GIL at each tick and walks
// every thread state's internal frame chain (frame_walk.hpp). Why this one:
//  - Reading frames without the GIL, as py-spy and Austin do from outside
//    the process, needs every version's frame layout and tolerance for torn
//    reads; in process it also races the frames being freed under us.
//  - A signal handler (SIGPROF) runs on the interrupted thread in the middle
//    of anything, including the interpreter updating its frames: only
//    async-signal-safe code, and still a torn stack.
//  - Under the GIL the frame chains are consistent, the walk needs no copy
//    and no retry, and code objects can be interned on first sight.
// Native zones come from each thread's ZoneStack (core/zone_stack.hpp), which
// that thread writes on the zone path and the sampler reads racily, so the
// zones of threads running without the GIL are seen too; threads with open
// zones and no Python thread state are sampled too (zones only).
//
// Bias, to read the results with:
//  - Samples land only where the GIL changes hands. A thread running Python
//    gives the GIL up at eval-breaker points (function entry, loop back-edges)
//    after the switch interval (sys.getswitchinterval(), 5 ms): the sampler
//    is capped near 1/switch-interval (about 160-200 Hz), and a rate above
//    that is not reached. Lines are those of an eval-breaker point.
//  - A long C call that holds the GIL (a big sort, a regex, numpy without
//    releasing) delays the tick until it returns: it is under-sampled, and
//    the time lands on the code that runs when it returns.
//  - Threads that released the GIL (I/O, sleep, native work) are sampled at
//    their exact position, without waiting.
//  - While the sampler holds the GIL the program does not run Python: the
//    pause grows with the number of threads and the depth of their stacks
//    (docs/benchmarks.md).
// Running or idle: a thread is "running" when its CPU clock advanced by at
// least 10% of the wall time since the previous tick (CLOCK_THREAD_CPUTIME
// of its kernel thread id): a thread waiting for the GIL, sleeping or blocked
// in I/O is idle. Its first sample has no interval yet and counts as idle.
// options.include_idle records idle threads too (wall-clock profile).
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

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#include <unistd.h>
#endif

namespace pycroscope {
namespace python {

struct SamplerOptions {
    bool enabled = true;      // false: start() does nothing (a session type shared with tracing mode)
    double rate_hz = 100.0;   // ticks per second, (0, 10000]; capped in practice near 1/switch interval
    bool include_idle = false; // also record threads that are not running
    bool start_paused = false; // start with the sampler paused (resume() or pycroscope.start_sampling())
    std::size_t max_frames = 512; // Python frames per sample; deeper stacks lose their outermost frames
    // start() before Py_Initialize is allowed: the host then calls attach()
    // after Py_Initialize to start sampling (otherwise start() throws).
    bool deferred = false;
};

struct SamplerStats {
    std::uint64_t ticks = 0;        // rounds taken (the GIL taken once each)
    std::uint64_t samples = 0;      // sample events written
    std::uint64_t missed_ticks = 0; // ticks dropped because a round ran late
    std::uint64_t gil_wait_ns = 0;  // total time waiting for the GIL
    std::uint64_t hold_ns = 0;      // total time holding it (walk and staging)
    double active_seconds = 0;      // time between consecutive ticks, pauses left out
    std::uint64_t intervals = 0;    // tick-to-tick intervals in active_seconds
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
          include_idle_(options.include_idle) {}

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
        wake_.notify_all();
    }
    void resume() noexcept {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            paused_ = false;
        }
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

    SamplerStats stats() const noexcept {
        SamplerStats s;
        s.ticks = ticks.load(std::memory_order_relaxed);
        s.samples = samples.load(std::memory_order_relaxed);
        s.missed_ticks = missed_ticks.load(std::memory_order_relaxed);
        s.gil_wait_ns = gil_wait_ns.load(std::memory_order_relaxed);
        s.hold_ns = hold_ns.load(std::memory_order_relaxed);
        s.active_seconds = static_cast<double>(active_ns.load(std::memory_order_relaxed)) / 1e9;
        s.intervals = intervals.load(std::memory_order_relaxed);
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

    std::atomic<std::uint64_t> ticks{0};
    std::atomic<std::uint64_t> samples{0};
    std::atomic<std::uint64_t> missed_ticks{0};
    std::atomic<std::uint64_t> gil_wait_ns{0};
    std::atomic<std::uint64_t> hold_ns{0};
    std::atomic<std::uint64_t> active_ns{0};
    std::atomic<std::uint64_t> intervals{0};

private:
    std::atomic<std::int64_t> period_ns_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    bool paused_;
    bool stop_requested_ = false;
    const bool include_idle_;
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
}

inline std::uint64_t elapsed_ns(std::chrono::steady_clock::time_point since) noexcept {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - since).count());
}

// The sampler thread's body.
inline void run_sampler(std::shared_ptr<SamplerControl> control, const SessionCore* core, std::uint64_t epoch,
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
        thread_ = std::thread(&detail::run_sampler, control_, &core, core.epoch(), options.max_frames);
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
