#pragma once
// A small JSON document for the report renderers: they read session.json
// back (written by another process, or by another version), trim what they
// embed, and write it into an HTML page. Numbers keep their source text, so
// integers beyond 2^53 (nanosecond timestamps) pass through unchanged.
//
//     report::JsonValue doc = report::parse_json(text);   // throws ReportError
//     doc.find("memory") ? doc.find("memory")->get_number("peak_bytes") : 0;
//     std::string out; report::append_json(out, doc, report::JsonEscape::script);
//
// JsonEscape::script also escapes '<', '>', '&' and U+2028/U+2029, so the text
// can sit inside a <script> element without ending it early.

#include "pycroscope/report/report_error.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pycroscope {
namespace report {

class JsonValue {
public:
    enum class Type { null, boolean, number, string, array, object };
    using Member = std::pair<std::string, JsonValue>;

    JsonValue() = default;
    static JsonValue make_bool(bool flag) {
        JsonValue v;
        v.type_ = Type::boolean;
        v.flag_ = flag;
        return v;
    }
    // text must be a valid JSON number.
    static JsonValue make_number_text(std::string text) {
        JsonValue v;
        v.type_ = Type::number;
        v.text_ = std::move(text);
        return v;
    }
    static JsonValue make_number(double value) {
        char buffer[32];
        std::snprintf(buffer, sizeof buffer, "%.17g", value);
        return make_number_text(buffer);
    }
    static JsonValue make_string(std::string text) {
        JsonValue v;
        v.type_ = Type::string;
        v.text_ = std::move(text);
        return v;
    }
    static JsonValue make_array() {
        JsonValue v;
        v.type_ = Type::array;
        return v;
    }
    static JsonValue make_object() {
        JsonValue v;
        v.type_ = Type::object;
        return v;
    }

    Type type() const noexcept { return type_; }
    bool is_null() const noexcept { return type_ == Type::null; }
    bool is_number() const noexcept { return type_ == Type::number; }
    bool is_string() const noexcept { return type_ == Type::string; }
    bool is_array() const noexcept { return type_ == Type::array; }
    bool is_object() const noexcept { return type_ == Type::object; }

    bool as_bool() const noexcept { return type_ == Type::boolean && flag_; }
    // 0 for anything that is not a number.
    double as_double() const noexcept { return type_ == Type::number ? std::strtod(text_.c_str(), nullptr) : 0.0; }
    // The string's text, or the number's source text; empty otherwise.
    const std::string& text() const noexcept { return text_; }

    std::vector<JsonValue>& items() noexcept { return items_; }
    const std::vector<JsonValue>& items() const noexcept { return items_; }
    std::vector<Member>& members() noexcept { return members_; }
    const std::vector<Member>& members() const noexcept { return members_; }

    // The member named key, or null when absent or when this is not an object.
    const JsonValue* find(std::string_view key) const noexcept {
        for (const auto& member : members_) {
            if (member.first == key) {
                return &member.second;
            }
        }
        return nullptr;
    }
    JsonValue* find(std::string_view key) noexcept {
        for (auto& member : members_) {
            if (member.first == key) {
                return &member.second;
            }
        }
        return nullptr;
    }
    // Conveniences for optional fields: a missing or mistyped member reads as
    // 0 or "", never as an error (sections are optional in session.json).
    double get_number(std::string_view key) const noexcept {
        const JsonValue* v = find(key);
        return v != nullptr ? v->as_double() : 0.0;
    }
    std::string get_string(std::string_view key) const {
        const JsonValue* v = find(key);
        return v != nullptr && v->is_string() ? v->text_ : std::string();
    }

    void push_back(JsonValue value) { items_.push_back(std::move(value)); }
    void set(std::string key, JsonValue value) {
        if (JsonValue* existing = find(key)) {
            *existing = std::move(value);
        } else {
            members_.emplace_back(std::move(key), std::move(value));
        }
    }
    void erase(std::string_view key) {
        for (auto it = members_.begin(); it != members_.end(); ++it) {
            if (it->first == key) {
                members_.erase(it);
                return;
            }
        }
    }

private:
    Type type_ = Type::null;
    bool flag_ = false;
    std::string text_;
    std::vector<JsonValue> items_;
    std::vector<Member> members_;
};

namespace detail {

class JsonParser {
public:
    explicit JsonParser(std::string_view text) : text_(text) {}

    JsonValue parse_document() {
        JsonValue value = parse_value(0);
        skip_space();
        if (pos_ != text_.size()) {
            fail("unexpected text after the value");
        }
        return value;
    }

private:
    static constexpr int max_depth = 256;

    [[noreturn]] void fail(const char* what) const {
        throw ReportError(std::string("invalid JSON at offset ") + std::to_string(pos_) + ": " + what);
    }

    void skip_space() {
        while (pos_ < text_.size() &&
               (text_[pos_] == ' ' || text_[pos_] == '\n' || text_[pos_] == '\r' || text_[pos_] == '\t')) {
            ++pos_;
        }
    }

    bool consume(char c) {
        skip_space();
        if (pos_ < text_.size() && text_[pos_] == c) {
            ++pos_;
            return true;
        }
        return false;
    }

    void expect_word(std::string_view word) {
        if (text_.substr(pos_, word.size()) != word) {
            fail("unknown literal");
        }
        pos_ += word.size();
    }

    JsonValue parse_value(int depth) {
        if (depth > max_depth) {
            fail("nesting too deep");
        }
        skip_space();
        if (pos_ >= text_.size()) {
            fail("unexpected end of input");
        }
        const char c = text_[pos_];
        if (c == '{') {
            ++pos_;
            JsonValue object = JsonValue::make_object();
            if (consume('}')) {
                return object;
            }
            do {
                skip_space();
                if (pos_ >= text_.size() || text_[pos_] != '"') {
                    fail("expected a string key");
                }
                std::string key = parse_string();
                if (!consume(':')) {
                    fail("expected ':'");
                }
                object.members().emplace_back(std::move(key), parse_value(depth + 1));
            } while (consume(','));
            if (!consume('}')) {
                fail("expected ',' or '}'");
            }
            return object;
        }
        if (c == '[') {
            ++pos_;
            JsonValue array = JsonValue::make_array();
            if (consume(']')) {
                return array;
            }
            do {
                array.items().push_back(parse_value(depth + 1));
            } while (consume(','));
            if (!consume(']')) {
                fail("expected ',' or ']'");
            }
            return array;
        }
        if (c == '"') {
            return JsonValue::make_string(parse_string());
        }
        if (c == 't') {
            expect_word("true");
            return JsonValue::make_bool(true);
        }
        if (c == 'f') {
            expect_word("false");
            return JsonValue::make_bool(false);
        }
        if (c == 'n') {
            expect_word("null");
            return JsonValue();
        }
        return parse_number();
    }

    JsonValue parse_number() {
        const std::size_t start = pos_;
        if (pos_ < text_.size() && text_[pos_] == '-') {
            ++pos_;
        }
        const std::size_t digits = pos_;
        while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
            ++pos_;
        }
        if (pos_ == digits) {
            fail("expected a value");
        }
        if (pos_ < text_.size() && text_[pos_] == '.') {
            ++pos_;
            const std::size_t fraction = pos_;
            while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
                ++pos_;
            }
            if (pos_ == fraction) {
                fail("expected digits after '.'");
            }
        }
        if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
            ++pos_;
            if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) {
                ++pos_;
            }
            const std::size_t exponent = pos_;
            while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
                ++pos_;
            }
            if (pos_ == exponent) {
                fail("expected digits in the exponent");
            }
        }
        return JsonValue::make_number_text(std::string(text_.substr(start, pos_ - start)));
    }

    unsigned parse_hex4() {
        if (pos_ + 4 > text_.size()) {
            fail("truncated \\u escape");
        }
        unsigned value = 0;
        for (int i = 0; i < 4; ++i) {
            const char h = text_[pos_++];
            value <<= 4;
            if (h >= '0' && h <= '9') {
                value |= static_cast<unsigned>(h - '0');
            } else if (h >= 'a' && h <= 'f') {
                value |= static_cast<unsigned>(h - 'a' + 10);
            } else if (h >= 'A' && h <= 'F') {
                value |= static_cast<unsigned>(h - 'A' + 10);
            } else {
                fail("bad hex digit in \\u escape");
            }
        }
        return value;
    }

    static void append_utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }

    std::string parse_string() {
        ++pos_; // the opening quote
        std::string out;
        while (true) {
            if (pos_ >= text_.size()) {
                fail("unterminated string");
            }
            const char c = text_[pos_++];
            if (c == '"') {
                return out;
            }
            if (static_cast<unsigned char>(c) < 0x20) {
                fail("control character in a string");
            }
            if (c != '\\') {
                out += c;
                continue;
            }
            if (pos_ >= text_.size()) {
                fail("unterminated escape");
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
                    unsigned cp = parse_hex4();
                    if (cp >= 0xD800 && cp <= 0xDBFF && text_.substr(pos_, 2) == "\\u") {
                        pos_ += 2;
                        const unsigned low = parse_hex4();
                        if (low >= 0xDC00 && low <= 0xDFFF) {
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                        } else {
                            append_utf8(out, 0xFFFD);
                            cp = low;
                        }
                    } else if (cp >= 0xD800 && cp <= 0xDFFF) {
                        cp = 0xFFFD; // a lone surrogate has no UTF-8 form
                    }
                    append_utf8(out, cp);
                    break;
                }
                default: fail("unknown escape");
            }
        }
    }

    std::string_view text_;
    std::size_t pos_ = 0;
};

} // namespace detail

inline JsonValue parse_json(std::string_view text) { return detail::JsonParser(text).parse_document(); }

enum class JsonEscape {
    plain, // what JSON requires
    script // also '<', '>', '&', U+2028, U+2029: safe inside an HTML <script> element
};

inline void append_json_string(std::string& out, std::string_view text, JsonEscape escape) {
    static const char hex[] = "0123456789abcdef";
    out += '"';
    for (std::size_t i = 0; i < text.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(text[i]);
        switch (c) {
            case '"': out += "\\\""; continue;
            case '\\': out += "\\\\"; continue;
            case '\n': out += "\\n"; continue;
            case '\r': out += "\\r"; continue;
            case '\t': out += "\\t"; continue;
            default: break;
        }
        const bool markup = escape == JsonEscape::script && (c == '<' || c == '>' || c == '&');
        if (c < 0x20 || c == 0x7F || markup) {
            out += "\\u00";
            out += hex[c >> 4];
            out += hex[c & 0xF];
            continue;
        }
        // U+2028 and U+2029 (E2 80 A8 / E2 80 A9) end a line in older JavaScript.
        if (escape == JsonEscape::script && c == 0xE2 && i + 2 < text.size() &&
            static_cast<unsigned char>(text[i + 1]) == 0x80 &&
            (static_cast<unsigned char>(text[i + 2]) == 0xA8 || static_cast<unsigned char>(text[i + 2]) == 0xA9)) {
            out += static_cast<unsigned char>(text[i + 2]) == 0xA8 ? "\\u2028" : "\\u2029";
            i += 2;
            continue;
        }
        out += static_cast<char>(c);
    }
    out += '"';
}

inline void append_json(std::string& out, const JsonValue& value, JsonEscape escape) {
    switch (value.type()) {
        case JsonValue::Type::null: out += "null"; return;
        case JsonValue::Type::boolean: out += value.as_bool() ? "true" : "false"; return;
        case JsonValue::Type::number: out += value.text(); return;
        case JsonValue::Type::string: append_json_string(out, value.text(), escape); return;
        case JsonValue::Type::array: {
            out += '[';
            bool first = true;
            for (const auto& item : value.items()) {
                if (!first) {
                    out += ',';
                }
                first = false;
                append_json(out, item, escape);
            }
            out += ']';
            return;
        }
        case JsonValue::Type::object: {
            out += '{';
            bool first = true;
            for (const auto& member : value.members()) {
                if (!first) {
                    out += ',';
                }
                first = false;
                append_json_string(out, member.first, escape);
                out += ':';
                append_json(out, member.second, escape);
            }
            out += '}';
            return;
        }
    }
}

inline std::string to_json(const JsonValue& value, JsonEscape escape = JsonEscape::plain) {
    std::string out;
    append_json(out, value, escape);
    return out;
}

} // namespace report
} // namespace pycroscope
