#pragma once
// A small, strict JSON parser (RFC 8259): tools read session.json back with
// it (model/profile_loader.hpp) and the tests read every file the sinks
// write. Strict on purpose, so a test fails on output that a lenient reader
// would accept: no trailing commas, no comments, no leading zeros, no
// NaN, no unescaped control characters, valid escapes and surrogate pairs only,
// valid UTF-8 only, no duplicate keys in one object, nothing after the value.
// Malformed input throws std::runtime_error naming the offset, line and column.
//
//     pycroscope::json::Value doc = pycroscope::json::parse(text);
//     doc.at("threads")[0].at("name").as_string();
//
// Numbers keep their source text (number_text()), so integers beyond 2^53 and
// decimal fractions such as "12.345" can be read back exactly.

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <limits>
#include <locale>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pycroscope {
namespace json {

class Value {
public:
    enum class Type { null, boolean, number, string, array, object };
    using Member = std::pair<std::string, Value>;

    Value() = default;

    static Value make_null() { return Value(); }
    static Value make_bool(bool flag) {
        Value v;
        v.type_ = Type::boolean;
        v.bool_ = flag;
        return v;
    }
    static Value make_number(double number, std::string text) {
        Value v;
        v.type_ = Type::number;
        v.number_ = number;
        v.text_ = std::move(text);
        return v;
    }
    static Value make_string(std::string text) {
        Value v;
        v.type_ = Type::string;
        v.text_ = std::move(text);
        return v;
    }
    static Value make_array(std::vector<Value> items) {
        Value v;
        v.type_ = Type::array;
        v.items_ = std::move(items);
        return v;
    }
    static Value make_object(std::vector<Member> members) {
        Value v;
        v.type_ = Type::object;
        v.members_ = std::move(members);
        return v;
    }

    Type type() const noexcept { return type_; }
    bool is_null() const noexcept { return type_ == Type::null; }
    bool is_bool() const noexcept { return type_ == Type::boolean; }
    bool is_number() const noexcept { return type_ == Type::number; }
    bool is_string() const noexcept { return type_ == Type::string; }
    bool is_array() const noexcept { return type_ == Type::array; }
    bool is_object() const noexcept { return type_ == Type::object; }
    // A number written without fraction or exponent ("12", "-3").
    bool is_integer() const noexcept {
        return type_ == Type::number && text_.find_first_of(".eE") == std::string::npos;
    }

    static const char* type_name(Type type) noexcept {
        switch (type) {
        case Type::null: return "null";
        case Type::boolean: return "boolean";
        case Type::number: return "number";
        case Type::string: return "string";
        case Type::array: return "array";
        case Type::object: return "object";
        }
        return "?";
    }

    // --- objects ---------------------------------------------------------
    bool contains(std::string_view key) const { return find(key) != nullptr; }
    const Value* find(std::string_view key) const {
        expect(Type::object, "find()");
        for (const auto& m : members_) {
            if (m.first == key) {
                return &m.second;
            }
        }
        return nullptr;
    }
    const Value& at(std::string_view key) const {
        const Value* v = find(key);
        if (v == nullptr) {
            throw std::out_of_range("json: no key \"" + std::string(key) + "\" in object");
        }
        return *v;
    }
    // Members in the order they appear in the text.
    const std::vector<Member>& members() const {
        expect(Type::object, "members()");
        return members_;
    }

    // --- arrays ----------------------------------------------------------
    const Value& operator[](std::size_t index) const {
        expect(Type::array, "operator[]");
        if (index >= items_.size()) {
            throw std::out_of_range("json: index " + std::to_string(index) + " out of range (size " +
                                    std::to_string(items_.size()) + ")");
        }
        return items_[index];
    }
    const std::vector<Value>& items() const {
        expect(Type::array, "items()");
        return items_;
    }
    // Elements of an array or members of an object.
    std::size_t size() const {
        if (type_ == Type::array) {
            return items_.size();
        }
        if (type_ == Type::object) {
            return members_.size();
        }
        throw std::logic_error(std::string("json: size() of a ") + type_name(type_));
    }

    // --- scalars ---------------------------------------------------------
    const std::string& as_string() const {
        expect(Type::string, "as_string()");
        return text_;
    }
    bool as_bool() const {
        expect(Type::boolean, "as_bool()");
        return bool_;
    }
    double as_number() const {
        expect(Type::number, "as_number()");
        return number_;
    }
    // The number exactly as written in the input.
    const std::string& number_text() const {
        expect(Type::number, "number_text()");
        return text_;
    }
    // Exact, from the source text: throws unless the number is an integer
    // that fits.
    std::int64_t as_int() const { return integer<std::int64_t>("as_int()"); }
    std::uint64_t as_uint() const { return integer<std::uint64_t>("as_uint()"); }

private:
    void expect(Type wanted, const char* what) const {
        if (type_ != wanted) {
            throw std::logic_error(std::string("json: ") + what + " on a " + type_name(type_) + ", expected " +
                                   type_name(wanted));
        }
    }

    template <class Int>
    Int integer(const char* what) const {
        expect(Type::number, what);
        if (!is_integer()) {
            throw std::logic_error(std::string("json: ") + what + " on non-integer " + text_);
        }
        Int out{};
        const char* first = text_.data();
        const char* last = text_.data() + text_.size();
        const auto result = std::from_chars(first, last, out);
        if (result.ec != std::errc() || result.ptr != last) {
            throw std::out_of_range(std::string("json: ") + what + ": " + text_ + " does not fit");
        }
        return out;
    }

    Type type_ = Type::null;
    bool bool_ = false;
    double number_ = 0;
    std::string text_; // string contents, or a number's source text
    std::vector<Value> items_;
    std::vector<Member> members_;
};

namespace detail {

class Parser {
public:
    explicit Parser(std::string_view text) : text_(text) {}

    Value parse_document() {
        skip_whitespace();
        Value v = parse_value(0);
        skip_whitespace();
        if (pos_ != text_.size()) {
            fail("unexpected data after the top-level value");
        }
        return v;
    }

private:
    static constexpr int max_depth = 512;

    [[noreturn]] void fail(const std::string& message) const { fail_at(pos_, message); }

    [[noreturn]] void fail_at(std::size_t at, const std::string& message) const {
        std::size_t line = 1, column = 1;
        for (std::size_t i = 0; i < at && i < text_.size(); ++i) {
            if (text_[i] == '\n') {
                ++line;
                column = 1;
            } else {
                ++column;
            }
        }
        throw std::runtime_error("json: " + message + " at offset " + std::to_string(at) + " (line " +
                                 std::to_string(line) + ", column " + std::to_string(column) + ")");
    }

    bool at_end() const noexcept { return pos_ >= text_.size(); }
    char peek() const noexcept { return at_end() ? '\0' : text_[pos_]; }

    void skip_whitespace() noexcept {
        while (!at_end()) {
            const char c = text_[pos_];
            if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
                ++pos_;
            } else {
                break;
            }
        }
    }

    void expect_literal(std::string_view word) {
        if (text_.substr(pos_, word.size()) != word) {
            fail("invalid literal, expected '" + std::string(word) + "'");
        }
        pos_ += word.size();
    }

    Value parse_value(int depth) {
        if (depth > max_depth) {
            fail("nesting deeper than " + std::to_string(max_depth));
        }
        if (at_end()) {
            fail("unexpected end of input, expected a value");
        }
        switch (peek()) {
        case '{': return parse_object(depth);
        case '[': return parse_array(depth);
        case '"': return Value::make_string(parse_string());
        case 't': expect_literal("true"); return Value::make_bool(true);
        case 'f': expect_literal("false"); return Value::make_bool(false);
        case 'n': expect_literal("null"); return Value::make_null();
        default:
            if (peek() == '-' || (peek() >= '0' && peek() <= '9')) {
                return parse_number();
            }
            fail(std::string("unexpected character '") + printable(peek()) + "', expected a value");
        }
    }

    static std::string printable(char c) {
        const auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u < 0x7f) {
            return std::string(1, c);
        }
        static const char hex[] = "0123456789abcdef";
        return std::string("\\x") + hex[u >> 4] + hex[u & 15];
    }

    Value parse_object(int depth) {
        ++pos_; // '{'
        std::vector<Value::Member> members;
        skip_whitespace();
        if (peek() == '}') {
            ++pos_;
            return Value::make_object(std::move(members));
        }
        for (;;) {
            skip_whitespace();
            if (peek() != '"') {
                fail(at_end() ? "unexpected end of input in object" : "expected a string key in object");
            }
            const std::size_t key_at = pos_;
            std::string key = parse_string();
            for (const auto& m : members) {
                if (m.first == key) {
                    fail_at(key_at, "duplicate key \"" + key + "\" in object");
                }
            }
            skip_whitespace();
            if (peek() != ':') {
                fail("expected ':' after object key");
            }
            ++pos_;
            skip_whitespace();
            Value v = parse_value(depth + 1);
            members.emplace_back(std::move(key), std::move(v));
            skip_whitespace();
            if (peek() == ',') {
                ++pos_;
                continue;
            }
            if (peek() == '}') {
                ++pos_;
                return Value::make_object(std::move(members));
            }
            fail(at_end() ? "unexpected end of input in object" : "expected ',' or '}' in object");
        }
    }

    Value parse_array(int depth) {
        ++pos_; // '['
        std::vector<Value> items;
        skip_whitespace();
        if (peek() == ']') {
            ++pos_;
            return Value::make_array(std::move(items));
        }
        for (;;) {
            skip_whitespace();
            items.push_back(parse_value(depth + 1));
            skip_whitespace();
            if (peek() == ',') {
                ++pos_;
                continue;
            }
            if (peek() == ']') {
                ++pos_;
                return Value::make_array(std::move(items));
            }
            fail(at_end() ? "unexpected end of input in array" : "expected ',' or ']' in array");
        }
    }

    Value parse_number() {
        const std::size_t start = pos_;
        if (peek() == '-') {
            ++pos_;
        }
        if (peek() == '0') {
            ++pos_;
            if (peek() >= '0' && peek() <= '9') {
                fail("leading zeros are not allowed in numbers");
            }
        } else if (peek() >= '1' && peek() <= '9') {
            while (peek() >= '0' && peek() <= '9') {
                ++pos_;
            }
        } else {
            fail("expected a digit in number");
        }
        if (peek() == '.') {
            ++pos_;
            if (!(peek() >= '0' && peek() <= '9')) {
                fail("expected a digit after the decimal point");
            }
            while (peek() >= '0' && peek() <= '9') {
                ++pos_;
            }
        }
        if (peek() == 'e' || peek() == 'E') {
            ++pos_;
            if (peek() == '+' || peek() == '-') {
                ++pos_;
            }
            if (!(peek() >= '0' && peek() <= '9')) {
                fail("expected a digit in the exponent");
            }
            while (peek() >= '0' && peek() <= '9') {
                ++pos_;
            }
        }
        std::string text(text_.substr(start, pos_ - start));
        const double number = to_double(text, start);
        return Value::make_number(number, std::move(text));
    }

    // Locale-independent; out-of-range magnitudes are an error.
    double to_double(const std::string& text, std::size_t at) const {
        double out = 0;
#if defined(__cpp_lib_to_chars) && __cpp_lib_to_chars >= 201611L
        const auto result = std::from_chars(text.data(), text.data() + text.size(), out);
        if (result.ec == std::errc::result_out_of_range) {
            fail_at(at, "number out of range: " + text);
        }
        if (result.ec != std::errc() || result.ptr != text.data() + text.size()) {
            fail_at(at, "invalid number: " + text);
        }
#else
        std::istringstream in(text);
        in.imbue(std::locale::classic());
        in >> out;
        if (in.fail() || out == std::numeric_limits<double>::infinity() ||
            out == -std::numeric_limits<double>::infinity()) {
            fail_at(at, "invalid or out-of-range number: " + text);
        }
#endif
        return out;
    }

    unsigned hex4() {
        if (text_.size() - pos_ < 4) {
            fail("truncated \\u escape");
        }
        unsigned value = 0;
        for (int i = 0; i < 4; ++i) {
            const char c = text_[pos_++];
            value <<= 4;
            if (c >= '0' && c <= '9') {
                value |= static_cast<unsigned>(c - '0');
            } else if (c >= 'a' && c <= 'f') {
                value |= static_cast<unsigned>(c - 'a' + 10);
            } else if (c >= 'A' && c <= 'F') {
                value |= static_cast<unsigned>(c - 'A' + 10);
            } else {
                --pos_;
                fail("invalid hex digit in \\u escape");
            }
        }
        return value;
    }

    static void append_utf8(std::string& out, std::uint32_t cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xc0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xe0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (cp & 0x3f));
        } else {
            out += static_cast<char>(0xf0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (cp & 0x3f));
        }
    }

    // Copies one raw UTF-8 sequence starting at pos_, validating it.
    void copy_utf8(std::string& out) {
        const std::size_t start = pos_;
        const auto lead = static_cast<unsigned char>(text_[pos_]);
        std::size_t length;
        std::uint32_t cp;
        if (lead < 0x80) {
            out += static_cast<char>(lead);
            ++pos_;
            return;
        } else if ((lead & 0xe0) == 0xc0) {
            length = 2;
            cp = lead & 0x1f;
        } else if ((lead & 0xf0) == 0xe0) {
            length = 3;
            cp = lead & 0x0f;
        } else if ((lead & 0xf8) == 0xf0) {
            length = 4;
            cp = lead & 0x07;
        } else {
            fail("invalid UTF-8 lead byte in string");
        }
        if (text_.size() - pos_ < length) {
            fail("truncated UTF-8 sequence in string");
        }
        for (std::size_t i = 1; i < length; ++i) {
            const auto c = static_cast<unsigned char>(text_[pos_ + i]);
            if ((c & 0xc0) != 0x80) {
                fail_at(pos_ + i, "invalid UTF-8 continuation byte in string");
            }
            cp = (cp << 6) | (c & 0x3f);
        }
        static const std::uint32_t minimum[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < minimum[length]) {
            fail("overlong UTF-8 sequence in string");
        }
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            fail("UTF-8 sequence encodes an invalid code point");
        }
        out.append(text_.substr(start, length));
        pos_ += length;
    }

    std::string parse_string() {
        ++pos_; // opening quote
        std::string out;
        for (;;) {
            if (at_end()) {
                fail("unterminated string");
            }
            const char c = text_[pos_];
            if (c == '"') {
                ++pos_;
                return out;
            }
            if (static_cast<unsigned char>(c) < 0x20) {
                fail("unescaped control character " + printable(c) + " in string");
            }
            if (c != '\\') {
                copy_utf8(out);
                continue;
            }
            ++pos_;
            if (at_end()) {
                fail("unterminated escape in string");
            }
            const char e = text_[pos_++];
            switch (e) {
            case '"': out += '"'; break;
            case '\\': out += '\\'; break;
            case '/': out += '/'; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            case 'u': {
                const std::size_t escape_at = pos_ - 2;
                std::uint32_t cp = hex4();
                if (cp >= 0xdc00 && cp <= 0xdfff) {
                    fail_at(escape_at, "lone low surrogate in \\u escape");
                }
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    if (text_.substr(pos_, 2) != "\\u") {
                        fail_at(escape_at, "high surrogate not followed by a low surrogate");
                    }
                    pos_ += 2;
                    const std::uint32_t low = hex4();
                    if (low < 0xdc00 || low > 0xdfff) {
                        fail_at(escape_at, "high surrogate not followed by a low surrogate");
                    }
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
                }
                append_utf8(out, cp);
                break;
            }
            default:
                --pos_;
                fail(std::string("invalid escape '\\") + printable(e) + "' in string");
            }
        }
    }

    std::string_view text_;
    std::size_t pos_ = 0;
};

} // namespace detail

inline Value parse(std::string_view text) { return detail::Parser(text).parse_document(); }

// Reads the whole file (binary) and parses it; throws when it cannot be read.
inline Value parse_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw std::runtime_error("json: cannot open '" + path + "'");
    }
    std::ostringstream buffer;
    buffer << in.rdbuf();
    return parse(buffer.str());
}

} // namespace json
} // namespace pycroscope
