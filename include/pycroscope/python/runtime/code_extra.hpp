#pragma once
// Pycroscope's writes to a code object's co_extra slots (PEP 523), without
// _PyCode_SetExtra. That call reallocs the code's co_extra block through
// PyMem_Realloc and only then points co_extra at the new block, then reads
// the interpreter's user count to clear the new slots: an allocation hook
// that runs inside that realloc and reads co_extra, writes it, or requests a
// slot index, reads freed memory or writes past the new block. And a thread
// in the RAW hook without the GIL reads co_extra at any time.
//
// attach_code_extra() keeps both safe for Pycroscope's own writes:
//  - a block Pycroscope publishes is never moved nor freed until the code
//    object dies: it is made with spare slots (spare_code_extra_slots), so
//    that later users below that index write in place too;
//  - a new block is filled in before co_extra points to it (release store);
//  - its one allocation may re-enter the allocation hooks, which may attach
//    to the same code object meanwhile: co_extra is read again afterwards.
// A block attached by another co_extra user that is too small for our index
// is replaced and kept, not freed (a RAW hook may be reading it): a few bytes,
// once per code object, and only next to such a user.

#include "pycroscope/python/runtime/cpython.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>

namespace pycroscope {
namespace python {
namespace compat {

// Slots a block published by Pycroscope holds at least (3.11 allows 255
// users; the tracer's slot and the line tables' come from the first few).
constexpr Py_ssize_t spare_code_extra_slots = 8;

// The value in slot index of code (GIL held, any time, even inside an
// allocation hook), or null. Written only while empty.
inline void* load_code_extra(PyCodeObject* code, Py_ssize_t index) noexcept {
    const auto* extra = static_cast<const CodeExtraMirror*>(__atomic_load_n(&code->co_extra, __ATOMIC_ACQUIRE));
    return extra != nullptr && index < extra->ce_size ? __atomic_load_n(&extra->ce_extras[index], __ATOMIC_ACQUIRE)
                                                      : nullptr;
}

// Puts value in the empty slot index of code (GIL held). False when the slot
// is taken (a nested call attached first: the caller keeps what is there),
// index is negative, or no memory is left. Calls no Python code, sets no
// exception; may allocate through PyMem_Malloc, so may re-enter the hooks.
inline bool attach_code_extra(PyCodeObject* code, Py_ssize_t index, void* value) noexcept {
    if (index < 0) {
        return false;
    }
    auto* extra = static_cast<CodeExtraMirror*>(code->co_extra);
    if (extra == nullptr || extra->ce_size <= index) {
        const Py_ssize_t old_size = extra != nullptr ? extra->ce_size : 0;
        const Py_ssize_t size = std::max({index + 1, spare_code_extra_slots, old_size});
        auto* block = static_cast<CodeExtraMirror*>(
            PyMem_Malloc(offsetof(CodeExtraMirror, ce_extras) + static_cast<std::size_t>(size) * sizeof(void*)));
        if (block == nullptr) {
            return false;
        }
        // The allocation may have attached a block to this code (nested).
        extra = static_cast<CodeExtraMirror*>(code->co_extra);
        if (extra == nullptr || extra->ce_size <= index) {
            block->ce_size = size;
            const Py_ssize_t kept = extra != nullptr ? extra->ce_size : 0;
            for (Py_ssize_t i = 0; i < size; ++i) {
                block->ce_extras[i] = i < kept ? extra->ce_extras[i] : nullptr;
            }
            __atomic_store_n(&code->co_extra, static_cast<void*>(block), __ATOMIC_RELEASE);
            extra = block; // a too-small block of another user stays allocated: see above
        } else {
            PyMem_Free(block);
        }
    }
    if (extra->ce_extras[index] != nullptr) {
        return false;
    }
    __atomic_store_n(&extra->ce_extras[index], value, __ATOMIC_RELEASE);
    return true;
}

} // namespace compat
} // namespace python
} // namespace pycroscope
