#pragma once
// A flat open-addressing hash map from block address to a small value, for
// the memory model's millions of inserts and erases per second: linear
// probing in one array, backward-shift deletion (no tombstones), power-of-two
// capacity kept at most 5/8 full. Address 0 marks an empty slot.

#include "pycroscope/core/compiler.hpp"

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace pycroscope {
namespace model {

template <class Value>
class AddressMap {
public:
    explicit AddressMap(std::size_t initial_capacity = 1024) { rehash(round_up(initial_capacity)); }

    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }

    // Starts loading address's home slot into the cache: the map is far larger
    // than the cache, so callers that know their next keys hide the miss.
    // Forced inline: GCC deems an out-of-line prefetch pure and drops the call.
    PYCROSCOPE_FORCE_INLINE void prefetch(std::uint64_t address) const noexcept {
#if defined(__GNUC__) || defined(__clang__)
        __builtin_prefetch(slots_.data() + slot_of(address));
#else
        (void)address;
#endif
    }

    // Null when absent. Valid until the next insert or erase.
    Value* find(std::uint64_t address) noexcept {
        for (std::size_t i = slot_of(address);; i = (i + 1) & mask_) {
            Slot& slot = slots_[i];
            if (slot.address == address) {
                return &slot.value;
            }
            if (slot.address == 0) {
                return nullptr;
            }
        }
    }

    // Inserts or overwrites. address must not be 0.
    void put(std::uint64_t address, const Value& value) {
        if ((size_ + 1) * 8 > slots_.size() * 5) {
            rehash(slots_.size() * 2);
        }
        for (std::size_t i = slot_of(address);; i = (i + 1) & mask_) {
            Slot& slot = slots_[i];
            if (slot.address == address) {
                slot.value = value;
                return;
            }
            if (slot.address == 0) {
                slot.address = address;
                slot.value = value;
                ++size_;
                return;
            }
        }
    }

    // Removes address; returns whether it was there.
    bool erase(std::uint64_t address) noexcept {
        std::size_t i = slot_of(address);
        for (;; i = (i + 1) & mask_) {
            if (slots_[i].address == address) {
                break;
            }
            if (slots_[i].address == 0) {
                return false;
            }
        }
        // Backward shift: move later entries of the probe run into the hole
        // when their home slot does not lie (cyclically) between hole and them.
        std::size_t hole = i;
        for (std::size_t j = (hole + 1) & mask_; slots_[j].address != 0; j = (j + 1) & mask_) {
            const std::size_t home = slot_of(slots_[j].address);
            const bool movable = ((j - home) & mask_) >= ((j - hole) & mask_);
            if (movable) {
                slots_[hole] = slots_[j];
                hole = j;
            }
        }
        slots_[hole].address = 0;
        --size_;
        return true;
    }

    // f(address, value&) for every entry, in no particular order.
    template <class F>
    void for_each(F&& f) {
        for (Slot& slot : slots_) {
            if (slot.address != 0) {
                f(slot.address, slot.value);
            }
        }
    }

    void clear() {
        for (Slot& slot : slots_) {
            slot.address = 0;
        }
        size_ = 0;
    }

private:
    struct Slot {
        std::uint64_t address;
        Value value;
    };

    static std::size_t round_up(std::size_t n) {
        std::size_t capacity = 16;
        while (capacity < n) {
            capacity *= 2;
        }
        return capacity;
    }

    std::size_t slot_of(std::uint64_t address) const noexcept {
        return static_cast<std::size_t>(((address >> 4) * 0x9E3779B97F4A7C15ull) >> shift_);
    }

    void rehash(std::size_t capacity) {
        std::vector<Slot> old = std::move(slots_);
        slots_.assign(capacity, Slot{0, Value{}});
        mask_ = capacity - 1;
        shift_ = 64;
        for (std::size_t c = capacity; c > 1; c >>= 1) {
            --shift_;
        }
        size_ = 0;
        for (const Slot& slot : old) {
            if (slot.address != 0) {
                put(slot.address, slot.value);
            }
        }
    }

    std::vector<Slot> slots_;
    std::size_t mask_ = 0;
    unsigned shift_ = 64;
    std::size_t size_ = 0;
};

} // namespace model
} // namespace pycroscope
