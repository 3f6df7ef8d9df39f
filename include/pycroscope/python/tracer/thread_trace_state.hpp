#pragma once
// Per-thread Python tracing state: which session it belongs to, and the
// shadow stack of Python frames the hooks maintain (the resource collectors
// attribute allocations to its top). Trivially initialised thread_local, so
// reading it on the hot path costs no TLS wrapper.

#include "pycroscope/core/source_location.hpp"

#include <cstdint>

namespace pycroscope {
namespace python {

struct ThreadTraceState {
    static constexpr std::uint32_t max_depth = 512;

    std::uint64_t epoch;  // session this state was synced for
    std::uint32_t depth;  // true depth; entries above max_depth are not stored
    const void* exception_frame; // frame an exception passed through, until handled or left
    // 3.12: the frame an exception is propagating in (sys.monitoring RAISE or
    // RERAISE, until EXCEPTION_HANDLED), so that its return with arg None is
    // told apart from returning None.
    const void* raising_frame;
    // eval_frame backend: the bottom `synthetic` entries of the stack are
    // frames that were running at sync, identified by synthetic_frames. The
    // hook never sees them return, so it closes them once they stop running.
    std::uint32_t synthetic;
    const SourceLocation* stack[max_depth];
    const void* synthetic_frames[max_depth];

    void push(const SourceLocation* location) noexcept {
        if (depth < max_depth) {
            stack[depth] = location;
        }
        ++depth;
    }
    void pop() noexcept {
        if (depth > 0) {
            --depth;
        }
    }
    const SourceLocation* top() const noexcept {
        return depth == 0 ? nullptr : depth <= max_depth ? stack[depth - 1] : stack[max_depth - 1];
    }
};

inline thread_local ThreadTraceState tls_trace{};

} // namespace python
} // namespace pycroscope
