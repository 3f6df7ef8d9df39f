#pragma once
// Which threads record into the running session, and how a thread finds its
// own buffer. The hot path reads one thread_local pair (buffer, epoch); a
// thread attaches on its first event of a session (the only allocation a
// thread ever makes on the recording side) and detaches when it exits.

#include "pycroscope/core/config.hpp"
#include "pycroscope/core/thread_buffer.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace pycroscope {
namespace detail {

inline std::uint64_t current_os_tid() noexcept {
#if defined(__linux__)
    return static_cast<std::uint64_t>(::syscall(SYS_gettid));
#else
    return 0;
#endif
}

// Trivially initialised, so reading it costs no TLS wrapper call.
struct ThreadSlot {
    ThreadBuffer* buffer;
    std::uint64_t epoch;
};
inline thread_local ThreadSlot tls_slot{nullptr, 0};
// Name given by set_thread_name(), kept for sessions that start later.
inline thread_local char tls_thread_name[64] = {};
// Set once this thread's exit handler ran: a later event must not re-attach.
inline thread_local bool tls_thread_exiting = false;

// Nonzero while a session records; each session gets a new value, so a
// thread's slot from an older session never matches.
inline std::atomic<std::uint64_t> session_epoch{0};

class ThreadRegistry {
public:
    ThreadRegistry(std::size_t capacity, OverflowPolicy policy, std::uint64_t epoch,
                   void (*waker)(void*) = nullptr, void* waker_context = nullptr, bool prefault = false)
        : capacity_(capacity), policy_(policy), epoch_(epoch), waker_(waker), waker_context_(waker_context),
          prefault_(prefault) {}

    std::uint64_t epoch() const noexcept { return epoch_; }

    std::shared_ptr<ThreadBuffer> attach(std::uint64_t os_tid, std::string name) {
        std::lock_guard<std::mutex> lock(mutex_);
        const std::uint32_t index = ++last_index_;
        if (name.empty()) {
            name = "thread-" + std::to_string(index);
        }
        auto buffer = std::make_shared<ThreadBuffer>(capacity_, policy_, index, os_tid, std::move(name), prefault_);
        buffer->ring.set_waker(waker_, waker_context_);
        live_.push_back(buffer);
        return buffer;
    }

    void rename(const ThreadBuffer* buffer, std::string_view name) {
        std::lock_guard<std::mutex> lock(mutex_);
        for (auto& live : live_) {
            if (live.get() == buffer) {
                live->name.assign(name.data(), name.size());
            }
        }
    }

    std::string name_of(const ThreadBuffer& buffer) const {
        std::lock_guard<std::mutex> lock(mutex_);
        return buffer.name;
    }

    // Copies the live buffers into out (reusing its storage).
    void snapshot(std::vector<std::shared_ptr<ThreadBuffer>>& out) const {
        std::lock_guard<std::mutex> lock(mutex_);
        out.assign(live_.begin(), live_.end());
    }

    void remove(const ThreadBuffer* buffer) {
        std::lock_guard<std::mutex> lock(mutex_);
        live_.erase(std::remove_if(live_.begin(), live_.end(),
                                   [buffer](const std::shared_ptr<ThreadBuffer>& b) { return b.get() == buffer; }),
                    live_.end());
    }

    // A blocked producer must not wait for a drain thread that is stopping.
    void close_all() {
        std::lock_guard<std::mutex> lock(mutex_);
        for (auto& buffer : live_) {
            buffer->ring.close();
        }
    }

private:
    const std::size_t capacity_;
    const OverflowPolicy policy_;
    const std::uint64_t epoch_;
    void (*const waker_)(void*);
    void* const waker_context_;
    const bool prefault_;
    mutable std::mutex mutex_;
    std::uint32_t last_index_ = 0;
    std::vector<std::shared_ptr<ThreadBuffer>> live_;
};

// The registry of the recording session, if any.
inline std::mutex& active_registry_mutex() {
    static std::mutex mutex;
    return mutex;
}
inline ThreadRegistry*& active_registry() {
    static ThreadRegistry* registry = nullptr;
    return registry;
}

// Keeps this thread's buffer alive and tells the drain thread when the thread
// exits. Only touched on the attach path, so its TLS wrapper stays off the hot path.
struct ThreadExitGuard {
    std::shared_ptr<ThreadBuffer> buffer;
    ~ThreadExitGuard() {
        tls_thread_exiting = true;
        tls_slot = ThreadSlot{nullptr, 0};
        if (buffer) {
            buffer->exited.store(true, std::memory_order_release);
        }
    }
};
inline ThreadExitGuard& thread_exit_guard() {
    static thread_local ThreadExitGuard guard;
    return guard;
}

// Slow path of every record: the first event of this thread in this session.
inline ThreadBuffer* attach_current_thread(std::uint64_t epoch) noexcept {
    if (tls_thread_exiting) {
        return nullptr;
    }
    try {
        std::lock_guard<std::mutex> lock(active_registry_mutex());
        ThreadRegistry* registry = active_registry();
        if (registry == nullptr || registry->epoch() != epoch) {
            return nullptr;
        }
        auto buffer = registry->attach(current_os_tid(), std::string(tls_thread_name));
        ThreadExitGuard& guard = thread_exit_guard();
        if (guard.buffer) {
            // The previous session's buffer: this thread no longer writes to it.
            guard.buffer->exited.store(true, std::memory_order_release);
        }
        guard.buffer = buffer;
        tls_slot = ThreadSlot{buffer.get(), epoch};
        return buffer.get();
    } catch (...) {
        return nullptr; // out of memory: this event is not recorded
    }
}

} // namespace detail

// Names the calling thread in every sink's output. Works before or during a session.
inline void set_thread_name(std::string_view name) {
    std::size_t n = std::min(name.size(), sizeof(detail::tls_thread_name) - 1);
    // Cut at a character boundary: never leave half a UTF-8 sequence.
    while (n < name.size() && n > 0 && (static_cast<unsigned char>(name[n]) & 0xc0) == 0x80) {
        --n;
    }
    std::memcpy(detail::tls_thread_name, name.data(), n);
    detail::tls_thread_name[n] = '\0';
    const detail::ThreadSlot slot = detail::tls_slot;
    if (slot.buffer != nullptr) {
        std::lock_guard<std::mutex> lock(detail::active_registry_mutex());
        if (detail::active_registry() != nullptr && detail::active_registry()->epoch() == slot.epoch) {
            detail::active_registry()->rename(slot.buffer, detail::tls_thread_name);
        }
    }
}

} // namespace pycroscope
