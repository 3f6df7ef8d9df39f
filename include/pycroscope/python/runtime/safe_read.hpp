#pragma once
// Reading memory of this process that may have been freed since its address
// was taken, without crashing: process_vm_readv on our own pid copies what is
// mapped and fails with EFAULT where a plain load would fault. It is one
// system call, async-signal-safe, and needs no ptrace permission for the
// caller's own process. Used by the wall-clock sampler (frame chains of
// threads that run meanwhile) and by the drain side to check a sampled code
// object before touching it.
//
// The bytes read may be stale or torn (the owner writes them meanwhile):
// callers validate what they read (type checks, depth limits, cycle checks).

#include <cstddef>
#include <cstring>

#if defined(__linux__)
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>
#endif

namespace pycroscope {
namespace python {
namespace safe_read {

// True when safe reads work here (Linux, process_vm_readv not forbidden by a
// seccomp profile). Checked once.
inline bool available() noexcept {
#if defined(__linux__)
    static const bool works = [] {
        const int probe = 42;
        int copy = 0;
        iovec local{&copy, sizeof copy};
        iovec remote{const_cast<int*>(&probe), sizeof probe};
        return ::process_vm_readv(::getpid(), &local, 1, &remote, 1, 0) == static_cast<ssize_t>(sizeof probe) &&
               copy == probe;
    }();
    return works;
#else
    return false;
#endif
}

// Copies size bytes at address into out; false when any of them is unmapped.
inline bool read(const void* address, void* out, std::size_t size) noexcept {
#if defined(__linux__)
    if (address == nullptr) {
        return false;
    }
    iovec local{out, size};
    iovec remote{const_cast<void*>(address), size};
    const ssize_t got = ::process_vm_readv(::getpid(), &local, 1, &remote, 1, 0); // getpid: right after fork too
    return got == static_cast<ssize_t>(size);
#else
    (void)address;
    (void)out;
    (void)size;
    return false;
#endif
}

template <class T>
inline bool read(const void* address, T& out) noexcept {
    return read(address, &out, sizeof(T));
}

// Reads through safe_read::read (other threads' memory, maybe freed).
struct CheckedReader {
    bool operator()(const void* address, void* out, std::size_t size) const noexcept {
        return read(address, out, size);
    }
};

// Plain loads, for a thread reading its own frame chain (signal handler):
// every frame on the chain is alive while the thread is stopped in it.
struct DirectReader {
    bool operator()(const void* address, void* out, std::size_t size) const noexcept {
        if (address == nullptr) {
            return false;
        }
        std::memcpy(out, address, size);
        return true;
    }
};

} // namespace safe_read
} // namespace python
} // namespace pycroscope
