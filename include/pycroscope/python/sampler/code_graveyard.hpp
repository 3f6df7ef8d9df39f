#pragma once
// The names of code objects that died while the sampler ran.
//
// A raw sample (sample_slots.hpp) holds code object pointers taken without
// the GIL and resolved later on the drain side. Meanwhile a code object may
// die (a lambda, an exec'd module, a function redefined) and its memory may
// hold another code object by the time the drain reads it: the type check
// alone would then name the wrong function. So PyCode_Type.tp_dealloc is
// wrapped, once per process: while a sampler runs, each dying code object
// leaves its location and its time of death here. The drain consults this
// record first: a pointer that died AFTER the sample was taken gets the name
// it had then.
//
// Left: a pointer that died before the sample (only a frame being set up
// can hold one) and whose memory is now another live code object is named
// after the new one; a graveyard entry overwritten before the drain reads it
// (more than `capacity` code deaths within one drain period) falls back to
// the type check.
//
// Written and read with the GIL held (deallocation and the drain).

#include "pycroscope/core/clock.hpp"
#include "pycroscope/core/source_location.hpp"
#include "pycroscope/python/runtime/code_registry.hpp"
#include "pycroscope/python/runtime/cpython.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace pycroscope {
namespace python {
namespace detail {

class CodeGraveyard {
public:
    static constexpr std::size_t capacity = 8192;
    struct Entry {
        const void* code;
        std::uint64_t died; // clock::now() ticks
        const SourceLocation* location;
    };

    // GIL held.
    void bury(PyCodeObject* code) {
        const Py_ssize_t index = code_extra_slot_value.index;
        const SourceLocation* location = nullptr;
        if (index >= 0) {
            location = static_cast<const SourceLocation*>(compat::peek_code_extra(code, index));
        }
        if (location == nullptr) {
            PendingExceptionGuard guard; // a deallocation may happen with an exception set
            location = intern_code(code);
        }
        entries_[written_ % capacity] = Entry{code, clock::now(), location};
        ++written_;
    }

    // GIL held. Entries written since `since` (a count), oldest first; updates since.
    template <class F>
    void each_since(std::uint64_t& since, F&& f) const {
        if (written_ - since > capacity) {
            since = written_ - capacity;
        }
        for (; since < written_; ++since) {
            f(entries_[since % capacity]);
        }
    }
    std::uint64_t written() const noexcept { return written_; }

private:
    Entry entries_[capacity]{};
    std::uint64_t written_ = 0;
};

inline CodeGraveyard& code_graveyard() {
    static CodeGraveyard* graveyard = new CodeGraveyard(); // outlives every sampler and the wrapper
    return *graveyard;
}

inline std::atomic<int>& graveyard_users() {
    static std::atomic<int> users{0};
    return users;
}

inline destructor& original_code_dealloc() {
    static destructor original = nullptr;
    return original;
}

inline void code_dealloc_recording(PyObject* code) {
    if (graveyard_users().load(std::memory_order_relaxed) > 0) {
        code_graveyard().bury(reinterpret_cast<PyCodeObject*>(code));
    }
    original_code_dealloc()(code);
}

// GIL held. Installs the wrapper once (left in place: another wrapper may
// have been put over it since) and counts one more user.
inline void start_code_graveyard() {
    if (original_code_dealloc() == nullptr) {
        original_code_dealloc() = PyCode_Type.tp_dealloc;
        PyCode_Type.tp_dealloc = &code_dealloc_recording;
    }
    graveyard_users().fetch_add(1, std::memory_order_relaxed);
}

inline void stop_code_graveyard() noexcept { graveyard_users().fetch_sub(1, std::memory_order_relaxed); }

} // namespace detail
} // namespace python
} // namespace pycroscope
