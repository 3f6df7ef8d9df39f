#pragma once
// gzip (RFC 1952) around a small DEFLATE encoder (RFC 1951), so that the pprof
// exporter writes the compressed files pprof expects without linking zlib.
// The encoder finds repeats with LZ77 over a 32 KiB window (a hash of the
// next three bytes, chained to earlier positions with the same hash) and
// codes literals, lengths and distances with the fixed Huffman code of the
// RFC. Dynamic Huffman tables would gain a little more; profiles are made of
// repeated ids and names, which the matches already catch.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pycroscope {
namespace sinks {
namespace gzip {

inline std::uint32_t crc32_update(std::uint32_t crc, std::string_view data) noexcept {
    struct Table {
        std::array<std::uint32_t, 256> entries{};
        Table() {
            for (std::uint32_t n = 0; n < 256; ++n) {
                std::uint32_t c = n;
                for (int k = 0; k < 8; ++k) {
                    c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
                }
                entries[n] = c;
            }
        }
    };
    static const Table table;
    crc = ~crc;
    for (const char ch : data) {
        crc = table.entries[(crc ^ static_cast<std::uint8_t>(ch)) & 0xFF] ^ (crc >> 8);
    }
    return ~crc;
}

inline std::uint32_t crc32(std::string_view data) noexcept { return crc32_update(0, data); }

// Bits in the order DEFLATE packs them: the first bit in the lowest bit of a byte.
class BitWriter {
public:
    explicit BitWriter(std::string& out) : out_(&out) {}

    void bits(std::uint32_t value, unsigned count) {
        buffer_ |= static_cast<std::uint64_t>(value) << used_;
        used_ += count;
        while (used_ >= 8) {
            out_->push_back(static_cast<char>(static_cast<std::uint8_t>(buffer_)));
            buffer_ >>= 8;
            used_ -= 8;
        }
    }
    void flush() {
        if (used_ > 0) {
            out_->push_back(static_cast<char>(static_cast<std::uint8_t>(buffer_)));
        }
        buffer_ = 0;
        used_ = 0;
    }

private:
    std::string* out_;
    std::uint64_t buffer_ = 0;
    unsigned used_ = 0;
};

struct DeflateOptions {
    // Earlier positions tried per match: more compresses better and slower.
    unsigned max_chain = 32;
    // A match this long is taken without looking further.
    unsigned nice_length = 128;
};

class DeflateEncoder {
public:
    static constexpr std::size_t window = 32768;
    static constexpr unsigned min_match = 3;
    static constexpr unsigned max_match = 258;

    explicit DeflateEncoder(DeflateOptions options = {}) : options_(options) {
        // Fixed literal/length code (RFC 1951 3.2.6), stored bit-reversed
        // because Huffman codes are packed starting from their top bit.
        for (unsigned symbol = 0; symbol < 288; ++symbol) {
            unsigned code, length;
            if (symbol < 144) {
                code = 0x30 + symbol, length = 8;
            } else if (symbol < 256) {
                code = 0x190 + symbol - 144, length = 9;
            } else if (symbol < 280) {
                code = symbol - 256, length = 7;
            } else {
                code = 0xC0 + symbol - 280, length = 8;
            }
            literal_code_[symbol] = static_cast<std::uint16_t>(reverse(code, length));
            literal_bits_[symbol] = static_cast<std::uint8_t>(length);
        }
        for (unsigned d = 0; d < 30; ++d) {
            distance_code_[d] = static_cast<std::uint8_t>(reverse(d, 5));
        }
        unsigned code = 0;
        for (unsigned length = min_match; length <= max_match; ++length) {
            while (code + 1 < 29 && length >= length_base[code + 1]) {
                ++code;
            }
            length_symbol_[length] = static_cast<std::uint8_t>(code);
        }
    }

    // The DEFLATE stream of data: one final fixed-Huffman block.
    void compress(std::string_view data, std::string& out) {
        BitWriter bits(out);
        bits.bits(1, 1); // BFINAL
        bits.bits(1, 2); // BTYPE 01: fixed Huffman
        head_.assign(std::size_t{1} << hash_bits, 0);
        previous_.assign(window, 0);
        const auto* bytes = reinterpret_cast<const std::uint8_t*>(data.data());
        const std::size_t size = data.size();
        std::size_t pos = 0;
        while (pos < size) {
            unsigned best_length = 0;
            std::size_t best_distance = 0;
            if (pos + min_match <= size) {
                const std::uint32_t hash = hash_at(bytes + pos);
                std::uint32_t candidate = head_[hash]; // position + 1, 0: none
                const std::size_t limit = std::min<std::size_t>(max_match, size - pos);
                unsigned chain = options_.max_chain;
                while (candidate != 0 && chain-- > 0) {
                    const std::size_t from = candidate - 1;
                    if (pos - from > window) {
                        break;
                    }
                    if (bytes[from + best_length] == bytes[pos + best_length]) {
                        unsigned length = 0;
                        while (length < limit && bytes[from + length] == bytes[pos + length]) {
                            ++length;
                        }
                        if (length > best_length) {
                            best_length = length;
                            best_distance = pos - from;
                            if (length >= options_.nice_length || length == limit) {
                                break;
                            }
                        }
                    }
                    const std::uint32_t next = previous_[from % window];
                    if (next >= candidate) {
                        break; // the slot was reused by a newer position
                    }
                    candidate = next;
                }
            }
            if (best_length >= min_match) {
                write_match(bits, best_length, best_distance);
                const std::size_t end = pos + best_length;
                for (; pos < end; ++pos) {
                    insert(bytes, size, pos);
                }
            } else {
                write_symbol(bits, bytes[pos]);
                insert(bytes, size, pos);
                ++pos;
            }
        }
        write_symbol(bits, 256); // end of block
        bits.flush();
    }

private:
    static constexpr unsigned hash_bits = 15;
    static constexpr std::uint16_t length_base[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                                      31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
    static constexpr std::uint8_t length_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                                      2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
    static constexpr std::uint16_t distance_base[30] = {1,    2,    3,    4,    5,    7,     9,     13,    17,  25,
                                                        33,   49,   65,   97,   129,  193,   257,   385,   513, 769,
                                                        1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
    static constexpr std::uint8_t distance_extra[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                                        6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

    static unsigned reverse(unsigned code, unsigned length) noexcept {
        unsigned out = 0;
        for (unsigned i = 0; i < length; ++i) {
            out = (out << 1) | ((code >> i) & 1);
        }
        return out;
    }

    static std::uint32_t hash_at(const std::uint8_t* p) noexcept {
        const std::uint32_t v = static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
                                (static_cast<std::uint32_t>(p[2]) << 16);
        return (v * 2654435761u) >> (32 - hash_bits);
    }

    void insert(const std::uint8_t* bytes, std::size_t size, std::size_t pos) {
        if (pos + min_match > size) {
            return;
        }
        const std::uint32_t hash = hash_at(bytes + pos);
        previous_[pos % window] = head_[hash];
        head_[hash] = static_cast<std::uint32_t>(pos + 1);
    }

    void write_symbol(BitWriter& bits, unsigned symbol) { bits.bits(literal_code_[symbol], literal_bits_[symbol]); }

    void write_match(BitWriter& bits, unsigned length, std::size_t distance) {
        const unsigned code = length_symbol_[length];
        write_symbol(bits, 257 + code);
        if (length_extra[code] > 0) {
            bits.bits(length - length_base[code], length_extra[code]);
        }
        unsigned d = 0;
        while (d + 1 < 30 && distance >= distance_base[d + 1]) {
            ++d;
        }
        bits.bits(distance_code_[d], 5);
        if (distance_extra[d] > 0) {
            bits.bits(static_cast<std::uint32_t>(distance - distance_base[d]), distance_extra[d]);
        }
    }

    DeflateOptions options_;
    std::array<std::uint16_t, 288> literal_code_{};
    std::array<std::uint8_t, 288> literal_bits_{};
    std::array<std::uint8_t, 30> distance_code_{};
    std::array<std::uint8_t, max_match + 1> length_symbol_{};
    std::vector<std::uint32_t> head_;
    std::vector<std::uint32_t> previous_;
};

// The raw DEFLATE stream of data.
inline std::string deflate(std::string_view data, DeflateOptions options = {}) {
    std::string out;
    DeflateEncoder(options).compress(data, out);
    return out;
}

// A complete .gz member: header, DEFLATE stream, CRC-32 and size of data.
inline std::string compress(std::string_view data, DeflateOptions options = {}) {
    std::string out("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", 10); // no name, no mtime, OS unknown
    out.reserve(data.size() / 3 + 64);
    DeflateEncoder(options).compress(data, out);
    const std::uint32_t crc = crc32(data);
    const auto size = static_cast<std::uint32_t>(data.size()); // ISIZE is the size modulo 2^32
    for (const std::uint32_t word : {crc, size}) {
        for (int i = 0; i < 4; ++i) {
            out.push_back(static_cast<char>(static_cast<std::uint8_t>(word >> (8 * i))));
        }
    }
    return out;
}

} // namespace gzip
} // namespace sinks
} // namespace pycroscope
