#pragma once
// CRC-32 (IEEE 802.3, the zlib polynomial), slicing by 8: every capture block
// carries one, so a reader tells a damaged block from a good one.

#include <array>
#include <cstddef>
#include <cstdint>

namespace pycroscope {
namespace capture {
namespace detail {

using Crc32Tables = std::array<std::array<std::uint32_t, 256>, 8>;

inline const Crc32Tables& crc32_tables() noexcept {
    static const Crc32Tables tables = [] {
        Crc32Tables t{};
        for (std::uint32_t i = 0; i < 256; ++i) {
            std::uint32_t c = i;
            for (int k = 0; k < 8; ++k) {
                c = (c & 1u) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            }
            t[0][i] = c;
        }
        for (std::uint32_t i = 0; i < 256; ++i) {
            for (std::size_t s = 1; s < 8; ++s) {
                t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFFu];
            }
        }
        return t;
    }();
    return tables;
}

} // namespace detail

// Continues a CRC: crc32(data, n) == crc32(second, n2, crc32(first, n1)) for
// data = first + second.
inline std::uint32_t crc32(const void* data, std::size_t size, std::uint32_t crc = 0) noexcept {
    const auto& t = detail::crc32_tables();
    const auto* p = static_cast<const unsigned char*>(data);
    std::uint32_t c = ~crc;
    while (size >= 8) {
        const std::uint32_t lo = c ^ (static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
                                      static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24);
        c = t[7][lo & 0xFFu] ^ t[6][(lo >> 8) & 0xFFu] ^ t[5][(lo >> 16) & 0xFFu] ^ t[4][lo >> 24] ^ t[3][p[4]] ^
            t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
        p += 8;
        size -= 8;
    }
    while (size-- > 0) {
        c = t[0][(c ^ *p++) & 0xFFu] ^ (c >> 8);
    }
    return ~c;
}

} // namespace capture
} // namespace pycroscope
