#pragma once
// Test helper: a sink that keeps every event it consumes, per thread index, in
// the order the session delivered them, plus what open() and close() were
// given. Every accessor takes the lock and returns a copy, so a test can poll
// it while the drain thread is still delivering.

#include "pycroscope/core/event.hpp"
#include "pycroscope/core/session_info.hpp"
#include "pycroscope/core/sink.hpp"
#include "pycroscope/core/source_location.hpp"
#include "pycroscope/core/thread_info.hpp"

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace pycroscope_test {

class RecordingSink : public pycroscope::Sink {
public:
    explicit RecordingSink(std::string label = "recording sink") : label_(std::move(label)) {}

    std::string describe() const override { return label_; }

    // A new run starts from nothing: a restarted session sees only its own events.
    void open(const pycroscope::SessionInfo& info) override {
        std::lock_guard<std::mutex> lock(mutex_);
        ++opens_;
        info_ = info;
        events_.clear();
        threads_.clear();
        summary_.reset();
        consume_calls_ = 0;
    }

    void consume(const pycroscope::ThreadInfo& thread, const pycroscope::Event* events, std::size_t count) override {
        std::lock_guard<std::mutex> lock(mutex_);
        ++consume_calls_;
        auto& list = events_[thread.index];
        list.insert(list.end(), events, events + count);
        threads_[thread.index] = thread;
        changed_.notify_all();
    }

    void close(const pycroscope::SessionSummary& summary) override {
        std::lock_guard<std::mutex> lock(mutex_);
        ++closes_;
        summary_ = summary;
    }

    void abort() noexcept override {
        std::lock_guard<std::mutex> lock(mutex_);
        ++aborts_;
    }

    // --- what the sink saw -------------------------------------------------

    std::map<std::uint32_t, std::vector<pycroscope::Event>> events_by_thread() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return events_;
    }

    std::vector<pycroscope::Event> events_of(std::uint32_t thread_index) const {
        std::lock_guard<std::mutex> lock(mutex_);
        const auto found = events_.find(thread_index);
        return found == events_.end() ? std::vector<pycroscope::Event>{} : found->second;
    }

    // Every event of every thread, thread by thread in index order.
    std::vector<pycroscope::Event> all_events() const {
        std::lock_guard<std::mutex> lock(mutex_);
        std::vector<pycroscope::Event> out;
        for (const auto& entry : events_) {
            out.insert(out.end(), entry.second.begin(), entry.second.end());
        }
        return out;
    }

    std::size_t event_count() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return count_locked();
    }

    std::size_t count_kind(pycroscope::EventKind kind) const {
        std::lock_guard<std::mutex> lock(mutex_);
        std::size_t n = 0;
        for (const auto& entry : events_) {
            for (const auto& e : entry.second) {
                n += e.kind == kind ? 1 : 0;
            }
        }
        return n;
    }

    std::size_t thread_count() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return events_.size();
    }

    // The ThreadInfo passed with the latest consume() of each thread.
    std::map<std::uint32_t, pycroscope::ThreadInfo> threads() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return threads_;
    }

    pycroscope::SessionInfo info() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return info_;
    }

    std::optional<pycroscope::SessionSummary> summary() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return summary_;
    }

    int opens() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return opens_;
    }
    int closes() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return closes_;
    }
    int aborts() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return aborts_;
    }
    std::size_t consume_calls() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return consume_calls_;
    }

    // Waits until at least count events arrived (the drain thread delivers
    // asynchronously); false on timeout, so a test fails instead of hanging.
    bool wait_for_events(std::size_t count, std::chrono::milliseconds timeout = std::chrono::seconds(20)) const {
        std::unique_lock<std::mutex> lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return count_locked() >= count; });
    }

private:
    std::size_t count_locked() const {
        std::size_t n = 0;
        for (const auto& entry : events_) {
            n += entry.second.size();
        }
        return n;
    }

    std::string label_;
    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    pycroscope::SessionInfo info_;
    std::map<std::uint32_t, std::vector<pycroscope::Event>> events_;
    std::map<std::uint32_t, pycroscope::ThreadInfo> threads_;
    std::optional<pycroscope::SessionSummary> summary_;
    int opens_ = 0;
    int closes_ = 0;
    int aborts_ = 0;
    std::size_t consume_calls_ = 0;
};

// A RecordingSink whose first consume() waits until release(): the drain
// thread stalls with exactly the events of that first batch taken from the
// ring, so a test can fill a buffer deterministically behind it.
class StallingSink : public RecordingSink {
public:
    using RecordingSink::RecordingSink;

    void consume(const pycroscope::ThreadInfo& thread, const pycroscope::Event* events, std::size_t count) override {
        {
            std::unique_lock<std::mutex> lock(gate_mutex_);
            if (!passed_first_) {
                passed_first_ = true;
                entered_ = true;
                gate_.notify_all();
                // Bounded, so a failed test cannot hang the drain thread forever.
                gate_.wait_for(lock, std::chrono::seconds(60), [this] { return released_; });
            }
        }
        RecordingSink::consume(thread, events, count);
    }

    // True once the drain thread is parked inside the first consume().
    bool wait_until_stalled(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
        std::unique_lock<std::mutex> lock(gate_mutex_);
        return gate_.wait_for(lock, timeout, [this] { return entered_; });
    }

    void release() {
        std::lock_guard<std::mutex> lock(gate_mutex_);
        released_ = true;
        gate_.notify_all();
    }

    // Releases the sink when a test leaves its scope early (a failed ASSERT),
    // so the session's stop() is not left waiting for the drain thread.
    struct ReleaseOnExit {
        StallingSink& sink;
        ~ReleaseOnExit() { sink.release(); }
    };

private:
    std::mutex gate_mutex_;
    std::condition_variable gate_;
    bool passed_first_ = false;
    bool entered_ = false;
    bool released_ = false;
};

} // namespace pycroscope_test
