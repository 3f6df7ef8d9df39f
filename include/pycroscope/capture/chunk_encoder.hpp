#pragma once
// Turns batches of events into the body of one capture chunk (format.hpp):
// the locations the chunk uses for the first time in the file, then one
// record per batch. Runs on the drain thread; in steady state (no new
// location, buffers grown) it allocates nothing.

#include "pycroscope/capture/byte_codec.hpp"
#include "pycroscope/capture/format.hpp"
#include "pycroscope/core/event.hpp"
#include "pycroscope/core/source_location.hpp"
#include "pycroscope/core/thread_info.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace pycroscope {
namespace capture {
namespace detail {

// SourceLocation* -> index (1-based, in order of first use): open addressing,
// so the lookup every event makes is a multiply and a probe or two.
class LocationIndex {
public:
    LocationIndex() { slots_.assign(1024, Slot{}); }

    // 0 for null; else the index, with is_new set when it was just assigned.
    std::uint32_t find_or_add(const SourceLocation* location, bool& is_new) {
        is_new = false;
        if (location == nullptr) {
            return 0;
        }
        std::size_t i = hash(location) & (slots_.size() - 1);
        for (;;) {
            Slot& slot = slots_[i];
            if (slot.location == location) {
                return slot.index;
            }
            if (slot.location == nullptr) {
                slot.location = location;
                slot.index = ++count_;
                is_new = true;
                const std::uint32_t index = slot.index;
                if (count_ * 2 > slots_.size()) {
                    grow();
                }
                return index;
            }
            i = (i + 1) & (slots_.size() - 1);
        }
    }
    std::uint32_t size() const noexcept { return count_; }

private:
    struct Slot {
        const SourceLocation* location = nullptr;
        std::uint32_t index = 0;
    };
    static std::size_t hash(const SourceLocation* location) noexcept {
        const auto bits = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(location));
        return static_cast<std::size_t>((bits * 0x9E3779B97F4A7C15ull) >> 32);
    }
    void grow() {
        std::vector<Slot> old(slots_.size() * 2);
        old.swap(slots_);
        for (const Slot& slot : old) {
            if (slot.location == nullptr) {
                continue;
            }
            std::size_t i = hash(slot.location) & (slots_.size() - 1);
            while (slots_[i].location != nullptr) {
                i = (i + 1) & (slots_.size() - 1);
            }
            slots_[i] = slot;
        }
    }
    std::vector<Slot> slots_;
    std::uint32_t count_ = 0;
};

} // namespace detail

class ChunkEncoder {
public:
    // Worst case of one event: time_back (11) + raw event (1 + 2 + 10 * 5).
    static constexpr std::size_t max_event_bytes = 64;

    // Bytes of the chunk so far (definitions + batches).
    std::size_t size() const noexcept { return definitions_.size() + batches_.size(); }
    std::uint64_t events() const noexcept { return events_; }
    bool empty() const noexcept { return events_ == 0; }
    const ByteBuffer& definitions() const noexcept { return definitions_; }
    const ByteBuffer& batches() const noexcept { return batches_; }
    std::uint32_t new_locations() const noexcept { return new_locations_; }

    // Forgets everything, the dictionary included: the next chunk starts a file.
    void reset_file() {
        locations_ = detail::LocationIndex();
        threads_.clear();
        start_chunk();
    }

    // Starts the next chunk of the same file.
    void start_chunk() {
        definitions_.clear();
        batches_.clear();
        events_ = 0;
        new_locations_ = 0;
        children_.clear();
        for (auto& entry : threads_) {
            entry.second.codec.reset();
        }
    }

    // One batch of one thread; count <= max_batch_events.
    void add_batch(const ThreadInfo& thread, const Event* events, std::size_t count) {
        ThreadState& t = threads_[thread.index];
        std::uint8_t bits = 0;
        if (!t.known || t.name != thread.name) {
            bits |= batch_bits::name;
        }
        if (!t.known || t.os_tid != thread.os_tid) {
            bits |= batch_bits::os_tid;
        }
        if (!t.known || t.lost != thread.lost) {
            bits |= batch_bits::lost;
        }
        batches_.varint(thread.index);
        batches_.byte(bits);
        if ((bits & batch_bits::name) != 0) {
            batches_.string(thread.name);
            t.name = thread.name;
        }
        if ((bits & batch_bits::os_tid) != 0) {
            batches_.varint(thread.os_tid);
            t.os_tid = thread.os_tid;
        }
        if ((bits & batch_bits::lost) != 0) {
            batches_.varint(thread.lost);
            t.lost = thread.lost;
        }
        t.known = true;
        batches_.varint(count);
        batches_.ensure(count * max_event_bytes);
        ThreadCodecState& codec = t.codec;
        for (std::size_t i = 0; i < count; ++i) {
            encode(codec, events[i]);
        }
        events_ += count;
    }

private:
    struct ThreadState {
        bool known = false;
        std::string name;
        std::uint64_t os_tid = 0;
        std::uint64_t lost = 0;
        ThreadCodecState codec;
    };

    std::uint32_t location_index(std::uint64_t id) {
        const auto* location = reinterpret_cast<const SourceLocation*>(static_cast<std::uintptr_t>(id));
        bool is_new = false;
        const std::uint32_t index = locations_.find_or_add(location, is_new);
        if (is_new) {
            define(*location);
        }
        return index;
    }

    void define(const SourceLocation& location) {
        definitions_.varint(static_cast<std::uint32_t>(location.kind));
        definitions_.varint(location.line);
        definitions_.nullable_string(location.name);
        definitions_.nullable_string(location.function);
        definitions_.nullable_string(location.file);
        ++new_locations_;
    }

    void put_extras(const Event& e) noexcept {
        batches_.put_varint(e.aux);
        batches_.put_varint(e.aux_high);
    }

    void encode(ThreadCodecState& st, const Event& e) {
        ByteBuffer& out = batches_;
        std::uint64_t ts = e.timestamp;
        if (ts < st.last_ts) {
            out.put_byte(static_cast<std::uint8_t>(Code::time_back));
            out.put_varint(st.last_ts - ts);
            st.last_ts = ts;
        }
        const std::uint64_t delta = ts - st.last_ts;
        st.last_ts = ts;
        const Code code = code_of(e.kind);
        std::uint8_t tag = static_cast<std::uint8_t>(code);
        if (e.flags != 0 && code != Code::raw) {
            tag |= tag_bits::flags;
        }
        const bool extras = e.aux != 0 || e.aux_high != 0;
        switch (class_of(static_cast<std::uint8_t>(code))) {
            case CodeClass::open: {
                const std::uint32_t id = location_index(e.id);
                const std::uint32_t top = st.top();
                const bool predicted = children_.get(top) == id;
                const bool more = e.payload != 0 || extras;
                tag |= (predicted ? tag_bits::a : 0) | (more ? tag_bits::b : 0);
                head(tag, delta, e.flags);
                if (!predicted) {
                    out.put_varint(id);
                    children_.set(top, id);
                }
                if (more) {
                    out.put_varint(e.payload);
                    put_extras(e);
                }
                st.open(id);
                break;
            }
            case CodeClass::close: {
                const std::uint32_t id = location_index(e.id);
                const bool implied = !st.stack.empty() && st.stack.back() == id;
                const bool more = e.payload != 0 || extras;
                tag |= (implied ? 0 : tag_bits::a) | (more ? tag_bits::b : 0);
                head(tag, delta, e.flags);
                if (implied) {
                    st.close_top();
                } else {
                    out.put_varint(id);
                    st.close_explicit(id);
                }
                if (more) {
                    out.put_varint(e.payload);
                    put_extras(e);
                }
                break;
            }
            case CodeClass::line: {
                const std::uint32_t id = location_index(e.id);
                const bool implied = !st.stack.empty() && st.stack.back() == id;
                tag |= (implied ? 0 : tag_bits::a) | (extras ? tag_bits::b : 0);
                head(tag, delta, e.flags);
                if (!implied) {
                    out.put_varint(id);
                }
                out.put_varint(zigzag(static_cast<std::int64_t>(e.payload - st.last_line)));
                st.last_line = e.payload;
                if (extras) {
                    put_extras(e);
                }
                break;
            }
            case CodeClass::alloc: {
                const std::uint32_t id = location_index(e.id);
                const std::uint64_t bytes = memory_bytes(e);
                const bool same_site = id == st.last_site;
                const bool same_bytes = bytes == st.last_alloc_bytes;
                tag |= (same_site ? 0 : tag_bits::a) | (same_bytes ? tag_bits::b : 0);
                head(tag, delta, e.flags);
                if (!same_site) {
                    out.put_varint(id);
                    st.last_site = id;
                }
                out.put_varint(zigzag(static_cast<std::int64_t>(e.payload - st.last_address)));
                st.last_address = e.payload;
                if (!same_bytes) {
                    out.put_varint(bytes);
                    st.last_alloc_bytes = bytes;
                }
                break;
            }
            case CodeClass::free: {
                const std::uint64_t bytes = memory_bytes(e);
                const std::uint32_t id = e.id != 0 ? location_index(e.id) : 0;
                tag |= (id != 0 ? tag_bits::a : 0) | (bytes != 0 ? tag_bits::b : 0);
                head(tag, delta, e.flags);
                if (id != 0) {
                    out.put_varint(id);
                }
                out.put_varint(zigzag(static_cast<std::int64_t>(e.payload - st.last_address)));
                st.last_address = e.payload;
                if (bytes != 0) {
                    out.put_varint(bytes);
                }
                break;
            }
            case CodeClass::counter: {
                const std::uint32_t id = location_index(e.id);
                tag |= extras ? tag_bits::b : 0;
                head(tag, delta, e.flags);
                out.put_varint(id);
                out.put_u64(e.payload);
                if (extras) {
                    put_extras(e);
                }
                break;
            }
            case CodeClass::sample: {
                const std::uint32_t name = location_index(e.payload);
                tag |= extras ? tag_bits::b : 0;
                head(tag, delta, e.flags);
                out.put_varint(e.id);
                out.put_varint(name);
                if (extras) {
                    put_extras(e);
                }
                break;
            }
            case CodeClass::plain: {
                const std::uint32_t id = location_index(e.id);
                tag |= (e.payload != 0 ? tag_bits::a : 0) | (extras ? tag_bits::b : 0);
                head(tag, delta, e.flags);
                out.put_varint(id);
                if (e.payload != 0) {
                    out.put_varint(e.payload);
                }
                if (extras) {
                    put_extras(e);
                }
                break;
            }
            default: { // raw: a kind without a code; its words are kept as numbers
                out.put_byte(tag);
                out.put_varint(delta);
                out.put_byte(static_cast<std::uint8_t>(e.kind));
                out.put_byte(e.flags);
                out.put_varint(e.id);
                out.put_varint(e.payload);
                put_extras(e);
                break;
            }
        }
    }

    void head(std::uint8_t tag, std::uint64_t delta, std::uint8_t flags) noexcept {
        batches_.put_byte(tag);
        batches_.put_varint(delta);
        if ((tag & tag_bits::flags) != 0) {
            batches_.put_byte(flags);
        }
    }

    detail::LocationIndex locations_;
    std::unordered_map<std::uint32_t, ThreadState> threads_;
    ChildCache children_;
    ByteBuffer definitions_;
    ByteBuffer batches_;
    std::uint64_t events_ = 0;
    std::uint32_t new_locations_ = 0;
};

} // namespace capture
} // namespace pycroscope
