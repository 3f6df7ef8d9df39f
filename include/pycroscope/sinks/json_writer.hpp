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

// Appends text as the inside of a JSON string (no quotes).
inline void append_json_escaped(std::string& out, std::string_view text) {
    static const char hex[] = "0123456789abcdef";
    for (const char c : text) {
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
            } else {
                out += c;
            }
        }
    }
}

inline void append_integer(std::string& out, std::int64_t value) {
    char buffer[24];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
    out.append(buffer, result.ptr);
}

inline void append_unsigned(std::string& out, std::uint64_t value) {
    char buffer[24];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
    out.append(buffer, result.ptr);
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
    out.append(buffer, result.ptr);
#else
    std::ostringstream text;
    text.imbue(std::locale::classic());
    text.precision(17);
    text << value;
    out += text.str();
#endif
}

// Nanoseconds as microseconds with three decimals ("12.345"), the unit of
// the Chrome trace format, without going through floating point.
inline void append_ns_as_us(std::string& out, std::int64_t ns) {
    // Unsigned magnitude: negating INT64_MIN would overflow.
    auto magnitude = static_cast<std::uint64_t>(ns);
    if (ns < 0) {
        out += '-';
        magnitude = 0 - magnitude;
    }
    append_unsigned(out, magnitude / 1000);
    const auto frac = static_cast<int>(magnitude % 1000);
    out += '.';
    out += static_cast<char>('0' + frac / 100);
    out += static_cast<char>('0' + (frac / 10) % 10);
    out += static_cast<char>('0' + frac % 10);
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
