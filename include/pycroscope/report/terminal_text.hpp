#pragma once
// Names as a terminal may show them. Python names and paths may hold any
// character: a newline, a carriage return or an escape sequence written raw
// would rewrite the report on screen, and bidi controls reorder what follows.
// terminal_text() keeps printable UTF-8 as it is and writes the rest visibly:
// C0/C1 controls and DEL as \xNN (\n, \r, \t, \0 by name), bidi and other
// invisible format characters as \u{XXXX}, and bytes that are not UTF-8 as \xNN.

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace pycroscope {
namespace report {

namespace detail {

// Format characters that reorder or hide text: the bidi embeddings,
// overrides and isolates, the marks, zero-width characters, and the line
// and paragraph separators some terminals break lines at.
inline bool invisible_format(std::uint32_t c) noexcept {
    return c == 0x061C || c == 0x200B || c == 0x200C || c == 0x200D || c == 0x200E || c == 0x200F ||
           c == 0x2028 || c == 0x2029 || (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069) || c == 0xFEFF;
}

// The code point of a well-formed UTF-8 sequence at text[i], and its length; 0 when malformed.
inline std::size_t decode_utf8(std::string_view text, std::size_t i, std::uint32_t& c) noexcept {
    const auto b0 = static_cast<unsigned char>(text[i]);
    std::size_t n = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > text.size()) {
        return 0;
    }
    c = n == 1 ? b0 : n == 2 ? (b0 & 0x1Fu) : n == 3 ? (b0 & 0x0Fu) : (b0 & 0x07u);
    for (std::size_t k = 1; k < n; ++k) {
        const auto b = static_cast<unsigned char>(text[i + k]);
        if ((b >> 6) != 0x2) {
            return 0;
        }
        c = (c << 6) | (b & 0x3Fu);
    }
    const bool overlong = (n == 2 && c < 0x80) || (n == 3 && c < 0x800) || (n == 4 && c < 0x10000);
    if (overlong || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
        return 0;
    }
    return n;
}

} // namespace detail

inline std::string terminal_text(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    char buffer[16];
    for (std::size_t i = 0; i < text.size();) {
        std::uint32_t c = 0;
        const std::size_t n = detail::decode_utf8(text, i, c);
        if (n == 0) {
            std::snprintf(buffer, sizeof buffer, "\\x%02x", static_cast<unsigned char>(text[i]));
            out += buffer;
            ++i;
            continue;
        }
        if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c == 0) {
            out += "\\0";
        } else if (c < 0x20 || c == 0x7F || (c >= 0x80 && c < 0xA0)) {
            std::snprintf(buffer, sizeof buffer, "\\x%02x", static_cast<unsigned>(c));
            out += buffer;
        } else if (detail::invisible_format(c)) {
            std::snprintf(buffer, sizeof buffer, "\\u{%04x}", static_cast<unsigned>(c));
            out += buffer;
        } else {
            out.append(text.data() + i, n);
        }
        i += n;
    }
    return out;
}

} // namespace report
} // namespace pycroscope
