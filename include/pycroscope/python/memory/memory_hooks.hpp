#pragma once
// Allocator hooks on the three PyMem domains (RAW, MEM, OBJ). Each wraps the
// allocator that was installed before it and records mem_alloc / mem_free
// events (layout in core/event.hpp) while a MemoryCollector records.
//
// Install once per process with install_memory_hooks():
//  - full mode: after Py_PreInitialize() and before Py_Initialize*(). That
//    order survives every PYTHONMALLOC setting; every block the interpreter
//    ever allocates goes through the hooks.
//  - degraded mode: after Py_Initialize(), with the GIL held (what
//    MemoryCollector::start() does when nobody installed them). Blocks
//    allocated before are unknown: their frees are flagged and ignored, and
//    the peak counts from the install.
// The hooks are never removed (a block must be freed by the allocator that
// allocated it, and another tool may have wrapped ours): while no session
// records they only pass through, at the cost of one well-predicted branch.
//
// The hook path: no GIL, no lock, no heap allocation, no virtual call, no
// system call, except on a thread's first event of a session (attach) and
// the first allocation in a code object (its line table is built). RAW is
// called without the GIL: allocations are attributed to the calling thread's
// own innermost frame through its own thread state
// (PyGILState_GetThisThreadState), never the GIL holder's. A thread-local
// guard (busy) makes nested calls pass through: pymalloc falls back to
// PyMem_RawMalloc for large blocks, and attaching a line table allocates.
//
// The invariant. A hook runs in the middle of whatever CPython call
// allocates, so it calls nothing that could touch state that call may hold
// half-changed: no Python code, no GC, no exception, no PyUnicode_AsUTF8 (it
// caches into the str), no _PyCode_SetExtra (its realloc leaves co_extra
// pointing at the freed block, then it reads the slot count again). What a
// hook may do:
//  - read the calling thread's frame and code object, co_extra and str data
//    (current_frame.hpp, code_extra.hpp, code_registry.hpp's utf8), and
//    intern names (C++ heap, not PyMem);
//  - MEM and OBJ only (GIL held): build a line table and attach it with
//    attach_code_extra(), whose one PyMem allocation passes through the
//    guard; request the slot index from malloc and calloc only;
//  - a realloc does not read co_extra when it is the block being moved.
// The tracer's own co_extra writes use attach_code_extra() too, so a hook
// that interrupts them finds co_extra whole, and they re-read it afterwards.
//
// The allocation path (hook_calloc alike):
//   hook_malloc                 inline. No session: tail call to the wrapped
//   |                           allocator. Sampling mode, unsampled block:
//   |                           counted down, tail call; above 448 bytes
//   |                           allocate_busy (pymalloc hands it to RAW,
//   |                           whose hook must not count it again).
//   +- allocate_recorded        inline: picks the mode
//      +- allocate_every        out of line, full mode  } busy, the wrapped
//      +- allocate_sampled      out of line, sampling   } allocator, then
//         +- record_alloc       inlined into both       } record, still busy
//            +- allocation_site        thread -> frame -> code -> line table
//            |  +- build_line_table    a code object's first allocation
//            |     +- attach_code_extra  one PyMem_Malloc (passes through)
//            +- push_event             the thread's ring (core/recorder.hpp)
//   hook_free: the filter test inline, free_every / free_maybe_sampled out
//   of line. hook_realloc: one path, a free and an allocation.
// Why the split: the inline parts are what every allocation pays (a branch
// while no session records); whatever records lives out of line, or the
// compiler saves registers on entry to every hook for it.

#include "pycroscope/core/clock.hpp"
#include "pycroscope/core/compiler.hpp"
#include "pycroscope/core/event.hpp"
#include "pycroscope/core/recorder.hpp"
#include "pycroscope/python/runtime/code_lines.hpp"
#include "pycroscope/python/runtime/cpython.hpp"
#include "pycroscope/python/runtime/current_frame.hpp"

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace pycroscope {
namespace python {

enum class MemoryHooksState : std::uint8_t {
    none,         // not installed
    before_init,  // installed before Py_Initialize: every block is known
    after_init,   // degraded: installed on a running interpreter
};

namespace detail {

struct MemoryDomainHook {
    PyMemAllocatorEx original;
    // The largest unsampled block the wrapped allocator makes without calling
    // another hooked one. pymalloc (MEM, OBJ) hands requests above 512 bytes
    // (SMALL_REQUEST_THRESHOLD, 3.8 on) to PyMem_RawMalloc; the margin covers
    // the debug hooks' header and trailer. Below it, RAW is called only when
    // pymalloc grows its own bookkeeping (rare, and a real RAW block). RAW's
    // allocator never calls back.
    std::size_t unguarded_max;
    std::uint8_t domain; // 0 raw, 1 mem, 2 obj
};

// Constant-initialised: read by the hooks without a guard.
inline MemoryDomainHook memory_domains[3]{};
inline std::atomic<MemoryHooksState> memory_hooks_state{MemoryHooksState::none};

// Equal to the session epoch while a MemoryCollector records, else zero.
inline std::atomic<std::uint64_t> memory_epoch{0};
// Written by the collector before memory_epoch is published (atomics only
// because RAW hooks on other threads may read them meanwhile).
// 0: every allocation; else about one record per memory_sample_bytes.
inline std::atomic<std::uint64_t> memory_sample_bytes{0};
// Resolve the Python line of each allocation.
inline std::atomic<bool> memory_attribution{true};

// Sampling mode records the frees of sampled blocks only, and must record
// each of them: a sampled block whose free goes unrecorded stays live in the
// model for good. Two structures, indexed by the same address hash:
//  - a bit filter, read by every free: 32 Ki bits (4 KiB), so it stays in
//    L1. A bit is set while its bucket holds a block;
//  - a bucket of sampled_bucket_slots addresses per bit, read only when the
//    bit is set, which decides exactly. A free of an unsampled block that
//    shares the bit (about live samples / 32 Ki of all frees) is not
//    recorded and does not disturb the sampled block's entry.
// Lock-free (RAW frees run without the GIL on any thread). A sample whose
// bucket is full is not taken (counted in sampled_unrecorded).
constexpr std::size_t sampled_filter_bits_log2 = 15;
constexpr std::size_t sampled_filter_bits = std::size_t{1} << sampled_filter_bits_log2;
constexpr std::size_t sampled_filter_words = sampled_filter_bits / 64;
constexpr std::size_t sampled_bucket_slots = 4;
inline std::atomic<std::uint64_t> sampled_filter[sampled_filter_words]{};
struct SampledBucket {
    std::atomic<std::uintptr_t> addresses[sampled_bucket_slots];
};
// 1 MiB of zeroed memory; a page is touched only when a sample lands in it.
inline SampledBucket sampled_buckets[sampled_filter_bits]{};
inline std::atomic<std::uint64_t> sampled_unrecorded{0};

// The address's bits above the 16-byte alignment: no multiply on the free
// path. Blocks collide when they sit a multiple of 512 KiB apart, as likely
// for any pair as with a mixing hash (the buckets keep it exact either way).
inline std::size_t sampled_bit(const void* address) noexcept {
    const auto bits = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(address));
    return static_cast<std::size_t>((bits >> 4) & (sampled_filter_bits - 1));
}
inline std::uint64_t sampled_mask(std::size_t bit) noexcept { return std::uint64_t{1} << (bit & 63); }
PYCROSCOPE_FORCE_INLINE bool sampled_filter_has(std::size_t bit,
                                                const std::atomic<std::uint64_t>* filter = sampled_filter) noexcept {
    return (filter[bit >> 6].load(std::memory_order_relaxed) & sampled_mask(bit)) != 0;
}

// Between sessions (no hook records): forgets every block still remembered.
inline void clear_sampled_filter() noexcept {
    for (std::size_t word = 0; word < sampled_filter_words; ++word) {
        std::uint64_t bits = sampled_filter[word].exchange(0);
        for (std::size_t bit = word * 64; bits != 0; ++bit, bits >>= 1) {
            if ((bits & 1) != 0) {
                for (auto& slot : sampled_buckets[bit].addresses) {
                    slot.store(0, std::memory_order_relaxed);
                }
            }
        }
    }
    sampled_unrecorded.store(0, std::memory_order_relaxed);
}

// Remembers a sampled block (entry first, then its bit, so a free that sees
// the bit finds the entry). False when its bucket is full.
inline bool remember_sampled(const void* address) noexcept {
    const std::size_t bit = sampled_bit(address);
    const auto key = reinterpret_cast<std::uintptr_t>(address);
    for (auto& slot : sampled_buckets[bit].addresses) {
        std::uintptr_t empty = 0;
        if (slot.load(std::memory_order_relaxed) == 0 && slot.compare_exchange_strong(empty, key)) {
            sampled_filter[bit >> 6].fetch_or(sampled_mask(bit));
            return true;
        }
    }
    sampled_unrecorded.fetch_add(1, std::memory_order_relaxed);
    return false;
}

// What a free tests first, one load for the common case: null while no
// session records; in sampling mode the filter of sampled blocks (a clear
// bit passes at once); in full mode a filter with every bit set, so every
// free goes on to be recorded.
inline std::atomic<const std::atomic<std::uint64_t>*> free_filter{nullptr};
inline std::atomic<std::uint64_t> every_block_filter[sampled_filter_words]{};

inline bool sampled_bucket_empty(const SampledBucket& bucket) noexcept {
    for (const auto& slot : bucket.addresses) {
        if (slot.load() != 0) {
            return false;
        }
    }
    return true;
}

// A free whose bit is set: true, and the block forgotten, when it is a
// remembered sampled block. The last entry of a bucket clears the bit; a
// block remembered meanwhile by another thread sets it again.
PYCROSCOPE_NOINLINE inline bool forget_sampled(const void* address, std::size_t bit) noexcept {
    const auto key = reinterpret_cast<std::uintptr_t>(address);
    SampledBucket& bucket = sampled_buckets[bit];
    for (auto& slot : bucket.addresses) {
        std::uintptr_t expected = key;
        if (slot.load(std::memory_order_relaxed) == key && slot.compare_exchange_strong(expected, 0)) {
            if (sampled_bucket_empty(bucket)) {
                sampled_filter[bit >> 6].fetch_and(~sampled_mask(bit));
                if (!sampled_bucket_empty(bucket)) {
                    sampled_filter[bit >> 6].fetch_or(sampled_mask(bit));
                }
            }
            return true;
        }
    }
    return false;
}

struct ThreadMemoryState {
    std::uint64_t epoch;        // session the sampling state below belongs to
    // Bytes left before the next sample. Zero while busy, so that sampling
    // mode's inline countdown (size < until_sample) fails for nested calls
    // without a test of its own; the value waits in until_while_busy.
    std::uint64_t until_sample;
    std::uint64_t until_while_busy;
    std::uint64_t rng;          // xorshift64* state
    bool busy;                  // inside a hook: nested calls pass through
};
inline thread_local ThreadMemoryState tls_memory{};

// Distance to the next sample: exponential with mean sample_bytes, so every
// byte has the same chance to be sampled whatever the allocation pattern.
inline std::uint64_t next_sample_distance(ThreadMemoryState& state, std::uint64_t sample_bytes) noexcept {
    if (state.rng == 0) {
        state.rng = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(&state)) ^ 0x2545F4914F6CDD1Dull;
    }
    state.rng ^= state.rng >> 12;
    state.rng ^= state.rng << 25;
    state.rng ^= state.rng >> 27;
    const std::uint64_t draw = state.rng * 0x2545F4914F6CDD1Dull;
    const double uniform = (static_cast<double>(draw >> 11) + 1.0) * (1.0 / 9007199254740992.0); // (0, 1]
    const double distance = -std::log(uniform) * static_cast<double>(sample_bytes);
    return static_cast<std::uint64_t>(distance) + 1;
}

// Busy around the wrapped allocator (and around recording): nested calls
// pass through, and sampling mode's countdown waits.
PYCROSCOPE_FORCE_INLINE void enter_busy(ThreadMemoryState& state) noexcept {
    state.until_while_busy = state.until_sample;
    state.until_sample = 0;
    state.busy = true;
}
PYCROSCOPE_FORCE_INLINE void leave_busy(ThreadMemoryState& state) noexcept {
    state.busy = false;
    state.until_sample = state.until_while_busy;
}

// Who calls allocation_site(), and so what it may do (the invariant at the top).
enum class SiteAccess : std::uint8_t {
    raw,     // RAW, maybe without the GIL: reads only
    realloc, // MEM or OBJ realloc: may build a line table, not request the slot
    build,   // MEM or OBJ malloc and calloc: may build a line table and request its slot
};

// The innermost Python line of the calling thread, or null. moving: the
// block a realloc just moved, or null. When it is the co_extra block of the
// thread's own code object, a _PyCode_SetExtra up the stack has freed it and
// not yet stored the new one: co_extra is not read at all.
PYCROSCOPE_FORCE_INLINE const SourceLocation* allocation_site(SiteAccess access, const void* moving) noexcept {
    // With the GIL held (MEM, OBJ) the current thread state is this thread's,
    // one load away; RAW runs without it and needs the thread's own (TSS).
    PyThreadState* tstate = access != SiteAccess::raw     ? compat::current_thread_state()
                            : compat::interpreter_finalizing() ? nullptr
                                                             : PyGILState_GetThisThreadState();
    if (tstate == nullptr) {
        return nullptr;
    }
    const compat::FramePosition position = compat::current_position(tstate);
    if (position.code == nullptr || (moving != nullptr && position.code->co_extra == moving)) {
        return nullptr;
    }
    const CodeLineTable* table = peek_line_table(position.code);
    if (PYCROSCOPE_UNLIKELY(table == nullptr)) {
        if (access == SiteAccess::raw) {
            return nullptr;
        }
        // _PyCode_SetExtra reads the slot count again after its realloc.
        const bool may_request = access == SiteAccess::build;
        table = build_line_table(position.code, line_table_index(tstate->interp, may_request));
        if (table == nullptr) {
            return nullptr;
        }
    }
    return line_location(*table, position.unit);
}

// Sampling mode's common case, counted down inline: true when this
// allocation is not sampled. False leaves the decision to sample_weight(),
// and so do a busy thread (until_sample is 0) and a thread's first
// allocation of a session (its countdown may belong to an earlier one).
// Only sample_weight() in sampling mode sets state.epoch, and epochs are
// never reused: a thread whose state.epoch is this session's is sampling.
PYCROSCOPE_FORCE_INLINE bool skip_unsampled(ThreadMemoryState& state, std::uint64_t epoch, std::size_t size) noexcept {
    if (state.epoch != epoch || size >= state.until_sample) {
        return false;
    }
    state.until_sample -= size;
    return true;
}

constexpr std::uint64_t not_sampled = ~std::uint64_t{0};

// What an allocation that skip_unsampled() did not skip is recorded as: its
// size in full mode; in sampling mode sample_bytes per sampling point it
// covers, or not_sampled (a thread's first allocation of the session that
// reaches no point).
inline std::uint64_t sample_weight(ThreadMemoryState& state, std::uint64_t epoch, std::size_t size) noexcept {
    const std::uint64_t sample_bytes = memory_sample_bytes.load(std::memory_order_relaxed);
    if (sample_bytes == 0) {
        return size;
    }
    if (state.epoch != epoch) {
        state.epoch = epoch;
        state.until_sample = next_sample_distance(state, sample_bytes);
    }
    if (size < state.until_sample) {
        state.until_sample -= size;
        return not_sampled;
    }
    // The block covers the next point and maybe more: count them, and start
    // the countdown from the last one.
    std::uint64_t beyond = size - state.until_sample;
    std::uint64_t points = 1;
    for (;;) {
        const std::uint64_t distance = next_sample_distance(state, sample_bytes);
        if (beyond < distance) {
            state.until_sample = distance - beyond;
            break;
        }
        beyond -= distance;
        ++points;
    }
    return points * sample_bytes;
}

// bytes: sample_weight()'s answer. sampled: the session samples (the
// caller has read memory_sample_bytes already).
// moving: a realloc's old block, else null (then MEM and OBJ may build).
PYCROSCOPE_FORCE_INLINE void record_alloc(std::uint64_t epoch, std::uint8_t domain, void* address,
                                          std::uint64_t bytes, bool sampled, const void* moving = nullptr,
                                          bool from_realloc = false) noexcept {
    std::uint8_t flags = domain;
    if (sampled) {
        if (!remember_sampled(address)) {
            return;
        }
        flags |= memory_flags::sampled;
    }
    const SiteAccess access = domain == 0 ? SiteAccess::raw : from_realloc ? SiteAccess::realloc : SiteAccess::build;
    const SourceLocation* site =
        memory_attribution.load(std::memory_order_relaxed) ? allocation_site(access, moving) : nullptr;
    Event event{clock::now(), location_id(site), static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(address)),
                0, EventKind::mem_alloc, flags, 0};
    set_memory_bytes(event, bytes);
    pycroscope::detail::push_event(epoch, event);
}

// Whether a free is recorded, decided by free_filter as in hook_free():
// full mode records every free; sampling mode the frees of remembered
// sampled blocks only (a set bit, then the exact bucket).
PYCROSCOPE_FORCE_INLINE bool wants_free(void* address) noexcept {
    const std::atomic<std::uint64_t>* filter = free_filter.load(std::memory_order_relaxed);
    if (filter == nullptr) {
        return false; // stopped meanwhile
    }
    const std::size_t bit = sampled_bit(address);
    if (PYCROSCOPE_LIKELY(!sampled_filter_has(bit, filter))) {
        return false;
    }
    return filter == every_block_filter || forget_sampled(address, bit);
}

// timestamp: taken before the block went back to the allocator, so it
// precedes any reuse of the address by another thread.
PYCROSCOPE_FORCE_INLINE void record_free(std::uint64_t epoch, std::uint8_t domain, void* address,
                                         std::uint64_t timestamp) noexcept {
    pycroscope::detail::push_event(
        epoch, Event{timestamp, 0, static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(address)), 0,
                     EventKind::mem_free, domain, 0});
}

// The hooks keep their common paths (no session; sampling mode's unsampled
// blocks) free of saved registers: whatever records goes out of line, or
// the compiler saves registers on entry to every hook for it.

// The wrapped allocator: calloc(count, size) when zeroed, else malloc(size).
// Scalars, not a struct: allocate_recorded() gets them all in registers.
PYCROSCOPE_FORCE_INLINE void* allocate_original(const MemoryDomainHook& hook, bool zeroed, std::size_t count,
                                                std::size_t size) noexcept {
    return zeroed ? hook.original.calloc(hook.original.ctx, count, size) : hook.original.malloc(hook.original.ctx, size);
}

// An unsampled block above hook.unguarded_max: busy around the wrapped
// allocator, as pymalloc passes it on to RAW, whose hook must not count it again.
PYCROSCOPE_NOINLINE inline void* allocate_busy(const MemoryDomainHook& hook, ThreadMemoryState& state, bool zeroed,
                                               std::size_t count, std::size_t size) noexcept {
    enter_busy(state);
    void* block = allocate_original(hook, zeroed, count, size);
    leave_busy(state);
    return block;
}

// Sampling mode, an allocation skip_unsampled() did not skip: weighed, made,
// then recorded while still busy (attribution may build a line table, which
// allocates). Plain arguments, no lambdas: at -O2 GCC kept a lambda here out
// of line, which cost a call and a closure per recorded allocation.
PYCROSCOPE_NOINLINE inline void* allocate_sampled(const MemoryDomainHook& hook, ThreadMemoryState& state,
                                                  std::uint64_t epoch, bool zeroed, std::size_t count,
                                                  std::size_t size) {
    // count * size may wrap: the allocator then fails, and nothing is recorded.
    const std::uint64_t bytes = sample_weight(state, epoch, zeroed ? count * size : size);
    enter_busy(state);
    void* block = allocate_original(hook, zeroed, count, size);
    if (block != nullptr && bytes != not_sampled) {
        record_alloc(epoch, hook.domain, block, bytes, true);
    }
    leave_busy(state);
    return block;
}

// Full mode: every allocation, nothing to weigh. Kept apart from the sampled
// path, whose countdown loop made GCC save six registers and spill the
// arguments on every call. The busy flag alone: full mode never matches
// skip_unsampled()'s epoch test, so its countdown need not be parked.
PYCROSCOPE_NOINLINE inline void* allocate_every(const MemoryDomainHook& hook, ThreadMemoryState& state,
                                                std::uint64_t epoch, bool zeroed, std::size_t count,
                                                std::size_t size) {
    state.busy = true;
    void* block = allocate_original(hook, zeroed, count, size);
    if (block != nullptr) {
        record_alloc(epoch, hook.domain, block, zeroed ? count * size : size, false);
    }
    state.busy = false;
    return block;
}

PYCROSCOPE_FORCE_INLINE void* allocate_recorded(const MemoryDomainHook& hook, ThreadMemoryState& state,
                                                std::uint64_t epoch, bool zeroed, std::size_t count,
                                                std::size_t size) {
    if (memory_sample_bytes.load(std::memory_order_relaxed) == 0) {
        return allocate_every(hook, state, epoch, zeroed, count, size);
    }
    return allocate_sampled(hook, state, epoch, zeroed, count, size);
}

// Sampling mode's unsampled blocks come first: counted down, then a tail
// call to the wrapped allocator, as a pass-through.
inline void* hook_malloc(void* context, std::size_t size) {
    const auto& hook = *static_cast<const MemoryDomainHook*>(context);
    const std::uint64_t epoch = memory_epoch.load(std::memory_order_relaxed);
    if (PYCROSCOPE_LIKELY(epoch == 0)) {
        return hook.original.malloc(hook.original.ctx, size);
    }
    ThreadMemoryState& state = tls_memory;
    if (skip_unsampled(state, epoch, size)) {
        if (PYCROSCOPE_LIKELY(size <= hook.unguarded_max)) {
            return hook.original.malloc(hook.original.ctx, size);
        }
        return allocate_busy(hook, state, false, 1, size);
    }
    if (state.busy) {
        return hook.original.malloc(hook.original.ctx, size);
    }
    return allocate_recorded(hook, state, epoch, false, 1, size);
}

inline void* hook_calloc(void* context, std::size_t count, std::size_t size) {
    const auto& hook = *static_cast<const MemoryDomainHook*>(context);
    const std::uint64_t epoch = memory_epoch.load(std::memory_order_relaxed);
    if (PYCROSCOPE_LIKELY(epoch == 0)) {
        return hook.original.calloc(hook.original.ctx, count, size);
    }
    ThreadMemoryState& state = tls_memory;
    if (skip_unsampled(state, epoch, count * size)) {
        if (PYCROSCOPE_LIKELY(count * size <= hook.unguarded_max)) {
            return hook.original.calloc(hook.original.ctx, count, size);
        }
        return allocate_busy(hook, state, true, count, size);
    }
    if (state.busy) {
        return hook.original.calloc(hook.original.ctx, count, size);
    }
    return allocate_recorded(hook, state, epoch, true, count, size);
}

// A realloc is a free of the old block and an allocation of the new one.
inline void* hook_realloc(void* context, void* address, std::size_t size) {
    const auto& hook = *static_cast<const MemoryDomainHook*>(context);
    const std::uint64_t epoch = memory_epoch.load(std::memory_order_relaxed);
    if (PYCROSCOPE_LIKELY(epoch == 0)) {
        return hook.original.realloc(hook.original.ctx, address, size);
    }
    ThreadMemoryState& state = tls_memory;
    if (state.busy) {
        return hook.original.realloc(hook.original.ctx, address, size);
    }
    const std::uint64_t bytes = skip_unsampled(state, epoch, size) ? not_sampled : sample_weight(state, epoch, size);
    const bool alloc_wanted = bytes != not_sampled;
    const bool free_wanted = address != nullptr && wants_free(address);
    enter_busy(state); // as in allocate_busy()
    const std::uint64_t before = free_wanted ? clock::now() : 0;
    void* block = hook.original.realloc(hook.original.ctx, address, size);
    if (block == nullptr && free_wanted && size != 0) {
        remember_sampled(address); // failed: the old block lives on
    }
    if (block != nullptr) {
        if (free_wanted) {
            record_free(epoch, hook.domain, address, before);
        }
        if (alloc_wanted) {
            record_alloc(epoch, hook.domain, block, bytes, memory_sample_bytes.load(std::memory_order_relaxed) != 0,
                         address, true);
        }
    }
    leave_busy(state);
    return block;
}

PYCROSCOPE_NOINLINE inline void free_recorded(const MemoryDomainHook& hook, ThreadMemoryState& state,
                                              std::uint64_t epoch, void* address) {
    enter_busy(state);
    record_free(epoch, hook.domain, address, clock::now());
    hook.original.free(hook.original.ctx, address);
    leave_busy(state);
}

// Full mode's free: the busy flag alone, as in allocate_every().
PYCROSCOPE_NOINLINE inline void free_every(const MemoryDomainHook& hook, ThreadMemoryState& state,
                                           std::uint64_t epoch, void* address) {
    state.busy = true;
    record_free(epoch, hook.domain, address, clock::now());
    hook.original.free(hook.original.ctx, address);
    state.busy = false;
}

// Sampling mode, a free whose filter bit is set.
PYCROSCOPE_NOINLINE inline void free_maybe_sampled(const MemoryDomainHook& hook, ThreadMemoryState& state,
                                                   std::uint64_t epoch, void* address, std::size_t bit) {
    if (forget_sampled(address, bit)) {
        free_recorded(hook, state, epoch, address);
    } else {
        hook.original.free(hook.original.ctx, address);
    }
}

// wants_free()'s test, split so that every outcome is a tail call. An
// unsampled block passes before the busy test: either way it passes.
inline void hook_free(void* context, void* address) {
    const auto& hook = *static_cast<const MemoryDomainHook*>(context);
    const std::atomic<std::uint64_t>* filter = free_filter.load(std::memory_order_relaxed);
    if (PYCROSCOPE_LIKELY(filter == nullptr) || address == nullptr) {
        hook.original.free(hook.original.ctx, address);
        return;
    }
    const std::size_t bit = sampled_bit(address);
    if (PYCROSCOPE_LIKELY(!sampled_filter_has(bit, filter))) {
        hook.original.free(hook.original.ctx, address);
        return;
    }
    const std::uint64_t epoch = memory_epoch.load(std::memory_order_relaxed);
    ThreadMemoryState& state = tls_memory;
    // Stopped since the filter was read; or nested, and a nested free must
    // not forget a sampled block.
    if (epoch == 0 || state.busy) {
        hook.original.free(hook.original.ctx, address);
        return;
    }
    if (filter == every_block_filter) { // full mode
        free_every(hook, state, epoch, address);
        return;
    }
    free_maybe_sampled(hook, state, epoch, address, bit);
}

// A MemoryCollector's start: everything the hooks read, then the epoch and
// the free filter that make them record.
inline void start_recording(std::uint64_t epoch, std::uint64_t sample_bytes, bool attribution) noexcept {
    if (sample_bytes != 0) {
        clear_sampled_filter();
    } else {
        for (auto& word : every_block_filter) {
            word.store(~std::uint64_t{0}, std::memory_order_relaxed);
        }
    }
    memory_sample_bytes.store(sample_bytes, std::memory_order_relaxed);
    memory_attribution.store(attribution, std::memory_order_relaxed);
    memory_epoch.store(epoch, std::memory_order_release);
    free_filter.store(sample_bytes != 0 ? sampled_filter : every_block_filter, std::memory_order_release);
}

// Also what a forked child does (it has no drain thread).
inline void stop_recording() noexcept {
    free_filter.store(nullptr, std::memory_order_release);
    memory_epoch.store(0, std::memory_order_release);
}

} // namespace detail

inline MemoryHooksState memory_hooks_state() noexcept {
    return detail::memory_hooks_state.load(std::memory_order_acquire);
}

// Wraps RAW, MEM and OBJ (in that order) around the current allocators.
// Call once, after Py_PreInitialize() and before Py_Initialize*() for full
// mode; after Py_Initialize() (GIL held) it installs the degraded mode.
// Calling it again does nothing. Returns the mode in effect.
inline MemoryHooksState install_memory_hooks() noexcept {
    const MemoryHooksState current = memory_hooks_state();
    if (current != MemoryHooksState::none) {
        return current;
    }
    const PyMemAllocatorDomain domains[3] = {PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ};
    for (int i = 0; i < 3; ++i) {
        detail::MemoryDomainHook& hook = detail::memory_domains[i];
        PyMem_GetAllocator(domains[i], &hook.original);
        hook.domain = static_cast<std::uint8_t>(i);
        hook.unguarded_max = i == 0 ? SIZE_MAX : 512 - 64;
        PyMemAllocatorEx wrapper{&hook, &detail::hook_malloc, &detail::hook_calloc, &detail::hook_realloc,
                                 &detail::hook_free};
        PyMem_SetAllocator(domains[i], &wrapper);
    }
    const MemoryHooksState state = Py_IsInitialized() ? MemoryHooksState::after_init : MemoryHooksState::before_init;
    detail::memory_hooks_state.store(state, std::memory_order_release);
    return state;
}

inline const char* to_string(MemoryHooksState state) noexcept {
    switch (state) {
    case MemoryHooksState::none: return "none";
    case MemoryHooksState::before_init: return "full";
    case MemoryHooksState::after_init: return "degraded";
    }
    return "none";
}

} // namespace python
} // namespace pycroscope
