#pragma once
// The non-template part of a session: validation, the thread registry, the
// drain thread and the sinks. Session<Collectors...> wraps it.

#include "pycroscope/core/clock.hpp"
#include "pycroscope/core/config.hpp"
#include "pycroscope/core/error.hpp"
#include "pycroscope/core/event_processor.hpp"
#include "pycroscope/core/fork_child.hpp"
#include "pycroscope/core/recorder.hpp"
#include "pycroscope/core/session_info.hpp"
#include "pycroscope/core/sink.hpp"
#include "pycroscope/core/thread_registry.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#include <unistd.h>
#endif

namespace pycroscope {
namespace detail {

inline std::uint64_t current_pid() noexcept {
#if defined(__unix__) || defined(__APPLE__)
    return static_cast<std::uint64_t>(::getpid());
#else
    return 0;
#endif
}

// Only one session records at a time: the hot path reads one global epoch.
inline std::atomic<bool>& session_slot_taken() {
    static std::atomic<bool> taken{false};
    return taken;
}
inline std::atomic<std::uint64_t>& last_epoch() {
    static std::atomic<std::uint64_t> epoch{0};
    return epoch;
}

// fork(): the child keeps only the forking thread, so the drain thread is
// gone. The child detaches: it records nothing and leaves the parent's
// output alone; a Session object it inherited stops without touching files.
inline void stop_recording_in_child() noexcept {
    stop_native_zones_in_child();
    session_epoch.store(0, std::memory_order_relaxed);
    session_slot_taken().store(false, std::memory_order_relaxed);
}

// How long the drain thread sleeps after a pass. fullest: the largest share
// of a buffer's capacity that the pass drained; since_last: the time since
// the pass before. Sleeping lets the drain read in batches and cost little
// CPU. The pause shrinks while a buffer fills fast, so that the fastest one
// would be about a quarter full again by the next pass. A producer then
// never meets a full buffer merely because the drain slept, which costs more
// than the wait: the producer wakes the drain thread onto its own CPU, and
// there the two can only take turns.
inline std::chrono::nanoseconds drain_pause(double fullest, std::chrono::nanoseconds since_last,
                                            std::chrono::nanoseconds longest) noexcept {
    constexpr std::chrono::nanoseconds shortest{20'000};
    if (fullest <= 0) {
        return longest;
    }
    const double pause = static_cast<double>(since_last.count()) * (0.25 / fullest);
    if (pause >= static_cast<double>(longest.count())) {
        return longest;
    }
    return std::min(longest, std::max(shortest, std::chrono::nanoseconds(static_cast<std::int64_t>(pause))));
}

} // namespace detail

class SessionCore {
public:
    explicit SessionCore(Config config) : config_(std::move(config)) {}
    ~SessionCore() {
        if (running_) {
            try {
                stop();
            } catch (...) {
                // Destruction must not throw; the errors are in last_summary().
            }
        }
    }
    SessionCore(const SessionCore&) = delete;
    SessionCore& operator=(const SessionCore&) = delete;

    const Config& config() const noexcept { return config_; }
    bool running() const noexcept { return running_; }
    std::uint64_t epoch() const noexcept { return epoch_; }
    const SessionInfo& info() const noexcept { return info_; }
    const SessionSummary& last_summary() const noexcept { return summary_; }

    void add_sink(std::shared_ptr<Sink> sink) {
        if (!sink) {
            throw ConfigError("add_sink() was given a null sink");
        }
        if (running_) {
            throw SessionError("sinks must be added before start()");
        }
        sinks_.push_back(std::move(sink));
    }
    const std::vector<std::shared_ptr<Sink>>& sinks() const noexcept { return sinks_; }

    // Runs on every batch before the sinks, in the order added (see event_processor.hpp).
    void add_processor(std::shared_ptr<EventProcessor> processor) {
        if (!processor) {
            throw ConfigError("add_processor() was given a null processor");
        }
        if (running_) {
            throw SessionError("processors must be added before start()");
        }
        processors_.push_back(std::move(processor));
    }

    // The recording threads' buffers (os_tid, open zones), for a sampler:
    // copied into out, reusing its storage; empty when not running.
    void thread_buffers(std::vector<std::shared_ptr<ThreadBuffer>>& out) const {
        if (registry_ != nullptr) {
            registry_->snapshot(out);
        } else {
            out.clear();
        }
    }
    std::string thread_name(const ThreadBuffer& buffer) const {
        return registry_ != nullptr ? registry_->name_of(buffer) : std::string();
    }

    // Validates, opens every sink, then starts recording. Throws before
    // anything records when a value or an output is wrong.
    void start(std::vector<std::string> collector_names) {
        if (running_) {
            return;
        }
        config_.validate();
        forget_in_forked_child<&detail::stop_recording_in_child>();
        bool expected = false;
        if (!detail::session_slot_taken().compare_exchange_strong(expected, true)) {
            throw SessionError("another session is already recording in this process; stop it first");
        }
        try {
            // Only once the slot is ours: select() switches the process-wide
            // hot-path clock, which a refused start must leave alone.
            const clock::Calibration calibration = clock::select(config_.clock);
            info_ = SessionInfo{};
            info_.process_name = config_.process_name;
            info_.pid = detail::current_pid();
            owner_pid_ = info_.pid;
            info_.start_unix_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count();
            info_.calibration = calibration;
            info_.buffer_capacity = config_.effective_capacity();
            info_.overflow = config_.overflow;
            info_.collectors = std::move(collector_names);
            info_.metadata = config_.metadata;
            info_.start_ticks = clock::now();
            for (auto& processor : processors_) {
                processor->open(info_);
            }
            open_sinks();
        } catch (...) {
            detail::session_slot_taken().store(false);
            throw;
        }

        epoch_ = detail::last_epoch().fetch_add(1) + 1;
        registry_ = std::make_unique<detail::ThreadRegistry>(info_.buffer_capacity, config_.overflow, epoch_,
                                                             &SessionCore::wake_drain, this, config_.prefault_buffers);
        {
            std::lock_guard<std::mutex> lock(detail::active_registry_mutex());
            detail::active_registry() = registry_.get();
        }
        finished_.clear();
        drain_cache_.clear();
        stop_requested_ = false;
        drain_thread_ = std::thread([this] { drain_loop(); });
        running_ = true;
        detail::session_epoch.store(epoch_, std::memory_order_release);
    }

    // Stops recording, drains every buffer, closes the sinks and joins the
    // drain thread. Safe to call twice. Throws SinkError after everything
    // else completed when a sink could not write its output.
    SessionSummary stop() {
        if (!running_) {
            return summary_;
        }
        if (detach_if_forked()) {
            return summary_;
        }
        const std::uint64_t stop_ticks = halt_recording();

        summary_ = SessionSummary{};
        summary_.info = info_;
        summary_.stop_ticks = stop_ticks;
        summary_.duration_ns = info_.session_ns(stop_ticks);
        summary_.threads = finished_;
        std::vector<std::shared_ptr<ThreadBuffer>> live;
        registry_->snapshot(live);
        for (const auto& buffer : live) {
            summary_.threads.push_back(thread_info(*buffer));
        }
        std::sort(summary_.threads.begin(), summary_.threads.end(),
                  [](const ThreadInfo& a, const ThreadInfo& b) { return a.index < b.index; });
        for (const auto& t : summary_.threads) {
            summary_.total_events += t.events;
            summary_.total_lost += t.lost;
        }
        for (auto& processor : processors_) {
            try {
                processor->close(summary_);
            } catch (const std::exception& e) {
                sink_errors_.push_back(processor->describe() + ": " + e.what());
            }
        }
        summary_.errors = sink_errors_;
        for (std::size_t i = 0; i < sinks_.size(); ++i) {
            if (sink_failed_[i]) {
                continue;
            }
            try {
                sinks_[i]->close(summary_);
            } catch (const std::exception& e) {
                summary_.errors.push_back(sinks_[i]->describe() + ": " + e.what());
                sinks_[i]->abort();
            } catch (...) {
                summary_.errors.push_back(sinks_[i]->describe() + ": unknown exception");
                sinks_[i]->abort();
            }
        }
        release_session();
        if (!summary_.errors.empty()) {
            std::string message = "some outputs were not written:";
            for (const auto& error : summary_.errors) {
                message += "\n  " + error;
            }
            throw SinkError(message);
        }
        return summary_;
    }

    // Undoes start() when a collector failed to install: nothing is written.
    void abort() noexcept {
        if (!running_) {
            return;
        }
        if (detach_if_forked()) {
            return;
        }
        halt_recording();
        for (auto& sink : sinks_) {
            sink->abort();
        }
        release_session();
    }

private:
    static constexpr std::size_t batch_size = 4096;

    // Stops every recording path, drains what was recorded and joins the
    // drain thread. Returns the stop time, taken once nothing records, so no
    // delivered event lies beyond it.
    std::uint64_t halt_recording() noexcept {
        detail::set_native_epoch(0);
        detail::session_epoch.store(0, std::memory_order_release);
        const std::uint64_t stop_ticks = clock::now();
        registry_->close_all();
        {
            std::lock_guard<std::mutex> lock(wake_mutex_);
            stop_requested_ = true;
        }
        wake_.notify_all();
        drain_thread_.join();
        std::lock_guard<std::mutex> lock(detail::active_registry_mutex());
        detail::active_registry() = nullptr;
        return stop_ticks;
    }

    // The session's slot is free for the next one.
    void release_session() noexcept {
        registry_.reset();
        running_ = false;
        detail::session_slot_taken().store(false);
    }

    // In a forked child the drain thread does not exist and the sinks' files
    // belong to the parent: forget both without touching them.
    bool detach_if_forked() noexcept {
        if (detail::current_pid() == owner_pid_) {
            return false;
        }
        new std::thread(std::move(drain_thread_)); // never joined or destroyed: it has no thread here
        (void)registry_.release();                 // the parent's threads' buffers: not ours to free
        sinks_.clear();
        running_ = false;
        summary_.errors.assign(1, "session inherited through fork(): detached in the child, nothing written");
        return true;
    }

    void open_sinks() {
        // Two sinks writing one file would share its temporary and clobber each other.
        for (std::size_t i = 0; i < sinks_.size(); ++i) {
            const std::string path = sinks_[i]->output_path();
            for (std::size_t j = 0; j < i && !path.empty(); ++j) {
                if (sinks_[j]->output_path() == path) {
                    throw ConfigError(sinks_[j]->describe() + " and " + sinks_[i]->describe() +
                                      " write the same file");
                }
            }
        }
        sink_failed_.assign(sinks_.size(), false);
        sink_recorded_.assign(sinks_.size(), false);
        any_recorded_sink_ = false;
        for (std::size_t i = 0; i < sinks_.size(); ++i) {
            sink_recorded_[i] = sinks_[i]->consumes_recorded_events();
            any_recorded_sink_ = any_recorded_sink_ || sink_recorded_[i];
        }
        processor_failed_.assign(processors_.size(), false);
        sink_errors_.clear();
        for (std::size_t i = 0; i < sinks_.size(); ++i) {
            try {
                sinks_[i]->open(info_);
            } catch (...) {
                for (std::size_t j = 0; j < i; ++j) {
                    sinks_[j]->abort();
                }
                throw;
            }
        }
    }

    // A producer blocked on a full buffer (block policy) wakes the drain
    // thread instead of waiting out its sleep.
    static void wake_drain(void* self) {
        auto* core = static_cast<SessionCore*>(self);
        core->producer_waiting_.store(true, std::memory_order_release);
        core->wake_.notify_one();
    }

    ThreadInfo thread_info(const ThreadBuffer& buffer) const {
        ThreadInfo t;
        t.index = buffer.index;
        t.os_tid = buffer.os_tid;
        t.name = registry_->name_of(buffer);
        t.events = buffer.delivered;
        // Events stored after the final drain (a push racing stop()) were
        // never delivered: they count as lost too.
        const std::uint64_t stored = buffer.ring.pushed();
        const std::uint64_t accounted = buffer.delivered + buffer.ring.overwritten();
        t.lost = buffer.ring.lost() + (stored > accounted ? stored - accounted : 0);
        t.exited = buffer.exited.load(std::memory_order_acquire);
        return t;
    }

    struct DrainPass {
        std::size_t events = 0;
        double fullest = 0; // the largest share of a buffer's capacity drained
        bool more = false;  // a buffer still held events when its turn ended
    };

    void drain_loop() {
        std::vector<Event> batch(batch_size);
        std::vector<std::shared_ptr<ThreadBuffer>> buffers;
        auto last_pass = std::chrono::steady_clock::now();
        for (;;) {
            bool stopping;
            {
                std::lock_guard<std::mutex> lock(wake_mutex_);
                stopping = stop_requested_;
            }
            const auto pass_start = std::chrono::steady_clock::now();
            const DrainPass pass = drain_all(buffers, batch, stopping);
            if (stopping) {
                while (drain_all(buffers, batch, true).events > 0) {
                }
                return;
            }
            const auto since_last = pass_start - last_pass;
            last_pass = pass_start;
            if (pass.more) {
                continue;
            }
            std::unique_lock<std::mutex> lock(wake_mutex_);
            wake_.wait_for(lock, detail::drain_pause(pass.fullest, since_last, config_.drain_interval), [this] {
                return stop_requested_ || producer_waiting_.exchange(false, std::memory_order_acq_rel);
            });
        }
    }

    DrainPass drain_all(std::vector<std::shared_ptr<ThreadBuffer>>& buffers, std::vector<Event>& batch,
                        bool stopping) {
        registry_->snapshot(buffers);
        DrainPass pass;
        for (const auto& buffer : buffers) {
            // Read before draining: once an exited thread's buffer is empty, it stays empty.
            const bool exited = buffer->exited.load(std::memory_order_acquire);
            std::size_t from_this = 0;
            for (;;) {
                const std::size_t n = buffer->ring.pop(batch.data(), batch.size());
                if (n == 0) {
                    break;
                }
                deliver(*buffer, batch.data(), n);
                from_this += n;
                // Fairness between threads, except when this buffer must be emptied now.
                if (!exited && !stopping && from_this >= 16 * batch_size) {
                    pass.more = true;
                    break;
                }
            }
            pass.events += from_this;
            pass.fullest = std::max(pass.fullest, static_cast<double>(from_this) /
                                                      static_cast<double>(buffer->ring.capacity()));
            if (exited && buffer->ring.empty()) {
                ThreadInfo info = thread_info(*buffer);
                info.exited = true;
                finished_.push_back(std::move(info));
                drain_cache_.erase(buffer.get());
                registry_->remove(buffer.get());
            }
        }
        buffers.clear();
        return pass;
    }

    void deliver(ThreadBuffer& buffer, Event* events, std::size_t count) {
        buffer.delivered += count;
        ThreadInfo& info = drain_cache_[&buffer];
        info.index = buffer.index;
        info.os_tid = buffer.os_tid;
        info.name = registry_->name_of(buffer);
        info.events = buffer.delivered;
        info.lost = buffer.ring.lost();
        if (any_recorded_sink_) {
            feed_sinks(info, events, count, true);
        }
        for (std::size_t i = 0; i < processors_.size(); ++i) {
            if (processor_failed_[i]) {
                continue;
            }
            try {
                processors_[i]->process(info, events, count);
            } catch (const std::exception& e) {
                // The sinks still get the events, as they are.
                processor_failed_[i] = true;
                sink_errors_.push_back(processors_[i]->describe() + ": " + e.what());
            }
        }
        feed_sinks(info, events, count, false);
    }

    // The sinks that take recorded events (before the processors) or processed ones.
    void feed_sinks(const ThreadInfo& info, const Event* events, std::size_t count, bool recorded) {
        for (std::size_t i = 0; i < sinks_.size(); ++i) {
            if (sink_failed_[i] || sink_recorded_[i] != recorded) {
                continue;
            }
            try {
                sinks_[i]->consume(info, events, count);
            } catch (const std::exception& e) {
                // One broken sink must not cost the others their data.
                sink_failed_[i] = true;
                sink_errors_.push_back(sinks_[i]->describe() + ": " + e.what());
                sinks_[i]->abort();
            } catch (...) {
                sink_failed_[i] = true;
                sink_errors_.push_back(sinks_[i]->describe() + ": unknown exception");
                sinks_[i]->abort();
            }
        }
    }

    Config config_;
    std::vector<std::shared_ptr<Sink>> sinks_;
    std::vector<bool> sink_failed_;
    std::vector<bool> sink_recorded_; // consumes_recorded_events(), asked at start()
    bool any_recorded_sink_ = false;
    std::vector<std::shared_ptr<EventProcessor>> processors_;
    std::vector<bool> processor_failed_;
    std::vector<std::string> sink_errors_;
    SessionInfo info_;
    SessionSummary summary_;
    bool running_ = false;
    std::uint64_t owner_pid_ = 0;
    std::uint64_t epoch_ = 0;
    std::unique_ptr<detail::ThreadRegistry> registry_;
    std::vector<ThreadInfo> finished_;
    std::unordered_map<const ThreadBuffer*, ThreadInfo> drain_cache_;
    std::thread drain_thread_;
    std::mutex wake_mutex_;
    std::condition_variable wake_;
    bool stop_requested_ = false;
    std::atomic<bool> producer_waiting_{false};
};

} // namespace pycroscope
