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

#include "pycroscope/core/json_reader.hpp"
#include "pycroscope/report/report_error.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
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

inline JsonValue to_document(const json::Value& value) {
    switch (value.type()) {
    case json::Value::Type::null: return JsonValue();
    case json::Value::Type::boolean: return JsonValue::make_bool(value.as_bool());
    case json::Value::Type::number: return JsonValue::make_number_text(value.number_text());
    case json::Value::Type::string: return JsonValue::make_string(value.as_string());
    case json::Value::Type::array: {
        JsonValue out = JsonValue::make_array();
        out.items().reserve(value.items().size());
        for (const json::Value& item : value.items()) {
            out.push_back(to_document(item));
        }
        return out;
    }
    case json::Value::Type::object: {
        JsonValue out = JsonValue::make_object();
        out.members().reserve(value.members().size());
        for (const auto& member : value.members()) {
            out.members().emplace_back(member.first, to_document(member.second));
        }
        return out;
    }
    }
    return JsonValue();
}

} // namespace detail

// Parsed by the strict reader (core/json_reader.hpp); malformed text throws ReportError.
inline JsonValue parse_json(std::string_view text) {
    json::Value value;
    try {
        value = json::parse(text);
    } catch (const std::runtime_error& error) {
        const std::string_view what = error.what();
        const std::string_view prefix = "json: ";
        throw ReportError("invalid JSON: " +
                          std::string(what.substr(what.compare(0, prefix.size(), prefix) == 0 ? prefix.size() : 0)));
    }
    return detail::to_document(value);
}

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
