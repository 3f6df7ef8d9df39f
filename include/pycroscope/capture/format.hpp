#pragma once
// The capture file format (docs/capture-format.md is its full description):
// constants, the block frame, the event codes and the codec state that the
// writer (capture_sink.hpp) and the reader (capture_reader.hpp) keep in step.
//
//   file    = magic (8) | version (u32) | HEAD block | CHNK block* | TAIL block
//   block   = tag (u32) | length (u32) | crc32(tag, length) (u32) | crc32(body) (u32) | body
//
// A chunk is self-contained but for its dictionary: it defines the source
// locations first used in it, and every per-thread and predictive state of the
// event codec starts afresh in it. A file without its TAIL block was cut.

#include "pycroscope/capture/byte_codec.hpp"
#include "pycroscope/core/event.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace pycroscope {
namespace capture {

constexpr unsigned char file_magic[8] = {0x89, 'P', 'Y', 'C', 'R', 'O', '\r', '\n'};
constexpr std::uint32_t format_version = 1;

constexpr std::uint32_t fourcc(char a, char b, char c, char d) noexcept {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(a)) |
           static_cast<std::uint32_t>(static_cast<unsigned char>(b)) << 8 |
           static_cast<std::uint32_t>(static_cast<unsigned char>(c)) << 16 |
           static_cast<std::uint32_t>(static_cast<unsigned char>(d)) << 24;
}
constexpr std::uint32_t header_tag = fourcc('H', 'E', 'A', 'D');
constexpr std::uint32_t chunk_tag = fourcc('C', 'H', 'N', 'K');
constexpr std::uint32_t trailer_tag = fourcc('T', 'A', 'I', 'L');

constexpr std::size_t file_prefix_bytes = 12; // magic + version
constexpr std::size_t block_frame_bytes = 16;

// Limits a reader enforces whatever a file claims, so that its allocations
// stay bounded; the writer stays well inside them.
constexpr std::uint32_t max_block_bytes = 64u << 20;
constexpr std::uint32_t max_batch_events = 1u << 16;
constexpr std::size_t max_span_stack = 4096; // deeper opens are not pushed
constexpr std::size_t close_search_depth = 64; // frames an explicit close looks through
constexpr std::uint32_t recent_addresses = 16;  // a power of two

// The first byte of an event: code (bits 0..4) and three modifiers.
namespace tag_bits {
constexpr std::uint8_t code_mask = 0x1F;
constexpr std::uint8_t flags = 0x20; // a flags byte follows the timestamp
constexpr std::uint8_t a = 0x40;     // kind-specific, see Code
constexpr std::uint8_t b = 0x80;     // kind-specific, see Code
} // namespace tag_bits

// Event codes. Per code, what follows the tag and the timestamp delta ("loc":
// a location index varint, 0 = null):
//   raw            kind byte, flags byte, id, payload (varints), extras;
//                  any kind this version does not know. Never has a, b or flags.
// "extras": one varint, aux | reserved << 32.
//   open (zone_begin, py_call, c_call, py_resume)
//                  a: id = the child last opened under the current top
//                     (ChunkTables::children; loc otherwise); b: payload
//                     varint, extras.
//   close (zone_end, py_return, c_return)
//                  a: explicit loc (otherwise the stack top); b: payload
//                  varint, extras.
//   py_line        a: explicit loc (otherwise the stack top); payload as a
//                  zigzag delta from the thread's last line; b: extras.
//   mem_alloc      the flags bit: a flags byte follows, else the thread's last
//                  memory flags; a: loc follows (otherwise the site that
//                  followed the thread's last site before, or that site:
//                  ChunkTables::predicted_site); address
//                  (ThreadCodecState::address_code); b: bytes as last
//                  allocated at the site in the chunk, else varint bytes.
//   mem_free       flags as mem_alloc; a: loc follows (otherwise 0); address;
//                  b: varint bytes (otherwise 0).
//   counter        loc; payload 8 bytes little-endian; b: extras.
//   sample         id varint (os_tid); payload loc; b: extras.
//   plain (instant, frame_mark, py_exception, io_call, exception_info,
//          sample_frame)
//                  loc; a: payload varint (otherwise 0); b: extras.
//   time_back      not an event: varint n, the thread's clock steps back n
//                  ticks before the next event (whose delta is unsigned).
enum class Code : std::uint8_t {
    raw = 0,
    zone_begin = 1,
    zone_end = 2,
    instant = 3,
    counter = 4,
    frame_mark = 5,
    py_call = 6,
    py_return = 7,
    c_call = 8,
    c_return = 9,
    py_line = 10,
    py_exception = 11,
    py_resume = 12,
    mem_alloc = 13,
    mem_free = 14,
    io_call = 15,
    exception_info = 16,
    sample = 17,
    sample_frame = 18,
    time_back = 31,
};
constexpr std::uint8_t code_count = 19; // codes 19..30 are rejected

// Each code's EventKind (raw and time_back: none).
constexpr EventKind code_kinds[code_count] = {
    EventKind::none,         EventKind::zone_begin,  EventKind::zone_end,    EventKind::instant,
    EventKind::counter,      EventKind::frame_mark,  EventKind::py_call,     EventKind::py_return,
    EventKind::c_call,       EventKind::c_return,    EventKind::py_line,     EventKind::py_exception,
    EventKind::py_resume,    EventKind::mem_alloc,   EventKind::mem_free,    EventKind::io_call,
    EventKind::exception_info, EventKind::sample,    EventKind::sample_frame,
};

// EventKind -> Code; raw for kinds without a code of their own.
struct CodeTable {
    std::array<Code, 256> codes{};
    constexpr CodeTable() {
        for (std::uint8_t c = 1; c < code_count; ++c) {
            codes[static_cast<std::uint8_t>(code_kinds[c])] = static_cast<Code>(c);
        }
    }
};
inline constexpr CodeTable code_table{};
constexpr Code code_of(EventKind kind) noexcept { return code_table.codes[static_cast<std::uint8_t>(kind)]; }

enum class CodeClass : std::uint8_t { raw, open, close, line, alloc, free, counter, sample, plain, invalid };

constexpr CodeClass class_of(std::uint8_t code) noexcept {
    switch (static_cast<Code>(code)) {
        case Code::raw: return CodeClass::raw;
        case Code::zone_begin:
        case Code::py_call:
        case Code::c_call:
        case Code::py_resume: return CodeClass::open;
        case Code::zone_end:
        case Code::py_return:
        case Code::c_return: return CodeClass::close;
        case Code::py_line: return CodeClass::line;
        case Code::mem_alloc: return CodeClass::alloc;
        case Code::mem_free: return CodeClass::free;
        case Code::counter: return CodeClass::counter;
        case Code::sample: return CodeClass::sample;
        case Code::instant:
        case Code::frame_mark:
        case Code::py_exception:
        case Code::io_call:
        case Code::exception_info:
        case Code::sample_frame: return CodeClass::plain;
        default: return CodeClass::invalid;
    }
}

// One thread's codec state inside one chunk. Writer and reader update it in
// the same way after every event, so predictions agree.
struct ThreadCodecState {
    std::uint64_t last_ts = 0;
    std::uint64_t last_line = 0;
    std::uint64_t last_address = 0;
    std::uint32_t last_site = 0;
    std::uint8_t last_memory_flags = 0;
    std::uint32_t recent_head = 0;
    std::uint64_t recent[recent_addresses] = {}; // the last block addresses allocated or freed
    std::vector<std::uint32_t> stack;             // location indices of open spans

    void reset() noexcept {
        last_ts = 0;
        last_line = 0;
        last_address = 0;
        last_site = 0;
        last_memory_flags = 0;
        recent_head = 0;
        for (auto& a : recent) {
            a = 0;
        }
        stack.clear();
    }

    // A memory event's address field: x < recent_addresses names the x-th
    // most recent address of the thread (a free of a block just allocated, an
    // allocation of a block just freed); otherwise y = x - recent_addresses
    // holds the change of the address's bits 4..63 as zigzag(delta) << 1,
    // and y & 1 says that a byte with its low 4 bits follows (most blocks
    // are 16-byte aligned).
    std::uint64_t address_code(std::uint64_t address, std::uint8_t& low) const noexcept {
        for (std::uint32_t k = 0; k < recent_addresses; ++k) {
            if (recent[(recent_head - 1 - k) & (recent_addresses - 1)] == address) {
                return k;
            }
        }
        const auto delta = static_cast<std::int64_t>(address >> 4) - static_cast<std::int64_t>(last_address >> 4);
        low = static_cast<std::uint8_t>(address & 15);
        return recent_addresses + ((zigzag(delta) << 1) | (low != 0 ? 1 : 0));
    }
    void remember_address(std::uint64_t address) noexcept {
        last_address = address;
        recent[recent_head++ & (recent_addresses - 1)] = address;
    }
    std::uint32_t top() const noexcept { return stack.empty() ? 0 : stack.back(); }
    void open(std::uint32_t location) {
        if (stack.size() < max_span_stack) {
            stack.push_back(location);
        }
    }
    // An implied close: the top was the location.
    void close_top() noexcept { stack.pop_back(); }
    // An explicit close: the innermost matching frame among the top
    // close_search_depth closes with every frame above it; no match, no change.
    void close_explicit(std::uint32_t location) noexcept {
        const std::size_t depth = stack.size();
        const std::size_t floor = depth > close_search_depth ? depth - close_search_depth : 0;
        for (std::size_t i = depth; i > floor; --i) {
            if (stack[i - 1] == location) {
                stack.resize(i - 1);
                return;
            }
        }
    }
};

// A value per location index, for one chunk: the child last opened under a
// location (index 0: at the bottom of a stack), the site that followed a site,
// the bytes last allocated at a site. clear() is O(1): entries carry the
// chunk's generation. Indices are bounded by the locations defined.
template <class T>
class ChunkTable {
public:
    bool get(std::uint32_t key, T& out) const noexcept {
        if (key < entries_.size() && entries_[key].generation == generation_) {
            out = entries_[key].value;
            return true;
        }
        return false;
    }
    void set(std::uint32_t key, T value) {
        if (key >= entries_.size()) {
            entries_.resize(static_cast<std::size_t>(key) + 1 + entries_.size() / 2);
        }
        entries_[key] = Entry{generation_, value};
    }
    void clear() noexcept { ++generation_; }

private:
    struct Entry {
        std::uint32_t generation = 0;
        T value{};
    };
    std::vector<Entry> entries_;
    std::uint32_t generation_ = 1;
};

// The tables every thread of a chunk shares.
struct ChunkTables {
    ChunkTable<std::uint32_t> children;   // open: child last opened under a location
    ChunkTable<std::uint32_t> next_site;  // mem_alloc: the site that followed a site
    ChunkTable<std::uint64_t> site_bytes; // mem_alloc: bytes last allocated at a site

    void clear() noexcept {
        children.clear();
        next_site.clear();
        site_bytes.clear();
    }
    // The site an allocation is predicted at, after one at `previous`.
    std::uint32_t predicted_site(std::uint32_t previous) const noexcept {
        std::uint32_t site = previous;
        next_site.get(previous, site);
        return site;
    }
};

// Bits of a batch record's thread byte.
namespace batch_bits {
constexpr std::uint8_t name = 1;   // the thread's name follows (first batch, or it changed)
constexpr std::uint8_t os_tid = 2; // its os_tid follows
constexpr std::uint8_t lost = 4;   // its lost count follows
constexpr std::uint8_t all = 7;
} // namespace batch_bits

} // namespace capture
} // namespace pycroscope
