#pragma once
// A small streaming JSON writer into a std::string: enough for the session
// summary and the Chrome trace, with correct string escaping and no
// dependency. Commas are tracked per nesting level.

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#if !(defined(__cpp_lib_to_chars) && __cpp_lib_to_chars >= 201611L)
#include <locale>
#include <sstream>
#endif

namespace pycroscope {
namespace sinks {

// Length of the well-formed UTF-8 sequence at text[i], or 0 when it is not
// one (stray continuation byte, overlong form, surrogate, truncated).
inline std::size_t utf8_sequence_length(std::string_view text, std::size_t i) noexcept {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned char lead = byte(i);
    std::size_t length;
    std::uint32_t code;
    if (lead >= 0xc2 && lead <= 0xdf) {
        length = 2;
        code = lead & 0x1fu;
    } else if (lead >= 0xe0 && lead <= 0xef) {
        length = 3;
        code = lead & 0x0fu;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
        length = 4;
        code = lead & 0x07u;
    } else {
        return 0;
    }
    if (i + length > text.size()) {
        return 0;
    }
    for (std::size_t k = 1; k < length; ++k) {
        if ((byte(i + k) & 0xc0) != 0x80) {
            return 0;
        }
        code = (code << 6) | (byte(i + k) & 0x3fu);
    }
    const bool overlong = (length == 3 && code < 0x800) || (length == 4 && code < 0x10000);
    const bool surrogate = code >= 0xd800 && code <= 0xdfff;
    return (overlong || surrogate || code > 0x10ffff) ? 0 : length;
}

// Appends text as the inside of a JSON string (no quotes). Names come from
// hosts and scripts unchecked: bytes that are not UTF-8 become U+FFFD, so
// every file stays valid JSON for strict readers.
inline void append_json_escaped(std::string& out, std::string_view text) {
    static const char hex[] = "0123456789abcdef";
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        const auto u = static_cast<unsigned char>(c);
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
            if (u < 0x20) {
                out += "\\u00";
                out += hex[u >> 4];
                out += hex[u & 15];
            } else if (u < 0x80) {
                out += c;
            } else if (const std::size_t length = utf8_sequence_length(text, i)) {
                out.append(text.data() + i, length);
                i += length - 1;
            } else {
                out += "\\ufffd";
            }
        }
    }
}

inline void append_integer(std::string& out, std::int64_t value) {
    char buffer[24];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
    out.append(buffer, static_cast<std::size_t>(result.ptr - buffer));
}

inline void append_unsigned(std::string& out, std::uint64_t value) {
    char buffer[24];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
    out.append(buffer, static_cast<std::size_t>(result.ptr - buffer));
}

// JSON has no NaN or infinity: those become null. The text is "%.17g" in
// the C locale whatever LC_NUMERIC the host set (printf would write a decimal
// comma under de_DE, for example, and break the file).
inline void append_double(std::string& out, double value) {
    if (!std::isfinite(value)) {
        out += "null";
        return;
    }
#if defined(__cpp_lib_to_chars) && __cpp_lib_to_chars >= 201611L
    char buffer[32];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::general, 17);
    out.append(buffer, static_cast<std::size_t>(result.ptr - buffer));
#else
    std::ostringstream text;
    text.imbue(std::locale::classic());
    text.precision(17);
    text << value;
    out += text.str();
#endif
}

// Nanoseconds as microseconds with three decimals ("12.345"), the unit of
// the Chrome trace format, without going through floating point. Writes at
// most 25 characters at out and returns the end.
inline char* write_ns_as_us(char* out, std::int64_t ns) noexcept {
    // Unsigned magnitude: negating INT64_MIN would overflow.
    auto magnitude = static_cast<std::uint64_t>(ns);
    if (ns < 0) {
        *out++ = '-';
        magnitude = 0 - magnitude;
    }
    out = std::to_chars(out, out + 20, magnitude / 1000).ptr;
    const auto frac = static_cast<unsigned>(magnitude % 1000);
    out[0] = '.';
    out[1] = static_cast<char>('0' + frac / 100);
    out[2] = static_cast<char>('0' + (frac / 10) % 10);
    out[3] = static_cast<char>('0' + frac % 10);
    return out + 4;
}

inline void append_ns_as_us(std::string& out, std::int64_t ns) {
    char buffer[32];
    out.append(buffer, static_cast<std::size_t>(write_ns_as_us(buffer, ns) - buffer));
}

class JsonWriter {
public:
    explicit JsonWriter(std::string& out) : out_(out) {}

    JsonWriter& begin_object() {
        value_prefix();
        out_ += '{';
        first_.push_back(true);
        return *this;
    }
    JsonWriter& end_object() {
        first_.pop_back();
        out_ += '}';
        return *this;
    }
    JsonWriter& begin_array() {
        value_prefix();
        out_ += '[';
        first_.push_back(true);
        return *this;
    }
    JsonWriter& end_array() {
        first_.pop_back();
        out_ += ']';
        return *this;
    }
    JsonWriter& key(std::string_view name) {
        separator();
        out_ += '"';
        append_json_escaped(out_, name);
        out_ += "\":";
        after_key_ = true;
        return *this;
    }
    JsonWriter& value(std::string_view text) {
        value_prefix();
        out_ += '"';
        append_json_escaped(out_, text);
        out_ += '"';
        return *this;
    }
    JsonWriter& value(const char* text) {
        if (text == nullptr) {
            return null();
        }
        return value(std::string_view(text));
    }
    JsonWriter& value(const std::string& text) { return value(std::string_view(text)); }
    JsonWriter& value(bool flag) {
        value_prefix();
        out_ += flag ? "true" : "false";
        return *this;
    }
    JsonWriter& value(double number) {
        value_prefix();
        append_double(out_, number);
        return *this;
    }
    template <class Integer,
              typename std::enable_if<std::is_integral<Integer>::value && !std::is_same<Integer, bool>::value,
                                      int>::type = 0>
    JsonWriter& value(Integer number) {
        value_prefix();
        if (std::is_signed<Integer>::value) {
            append_integer(out_, static_cast<std::int64_t>(number));
        } else {
            append_unsigned(out_, static_cast<std::uint64_t>(number));
        }
        return *this;
    }
    JsonWriter& null() {
        value_prefix();
        out_ += "null";
        return *this;
    }
    template <class T>
    JsonWriter& field(std::string_view name, const T& v) {
        key(name);
        return value(v);
    }

    std::string& buffer() noexcept { return out_; }

private:
    void separator() {
        if (!first_.empty()) {
            if (!first_.back()) {
                out_ += ',';
            }
            first_.back() = false;
        }
    }
    void value_prefix() {
        if (after_key_) {
            after_key_ = false;
            return;
        }
        separator();
    }

    std::string& out_;
    std::vector<bool> first_;
    bool after_key_ = false;
};

} // namespace sinks
} // namespace pycroscope
