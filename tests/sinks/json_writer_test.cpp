// JsonWriter and the number/string helpers every JSON sink is built on.

#include "support/json.hpp"

#include <pycroscope/sinks/json_writer.hpp>

#include <gtest/gtest.h>

#include <clocale>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

namespace json_writer_test {
namespace {

using pycroscope::sinks::append_double;
using pycroscope::sinks::append_integer;
using pycroscope::sinks::append_json_escaped;
using pycroscope::sinks::append_ns_as_us;
using pycroscope::sinks::append_unsigned;
using pycroscope::sinks::JsonWriter;

std::string escaped(std::string_view text) {
    std::string out;
    append_json_escaped(out, text);
    return out;
}

std::string us(std::int64_t ns) {
    std::string out;
    append_ns_as_us(out, ns);
    return out;
}

std::string dbl(double value) {
    std::string out;
    append_double(out, value);
    return out;
}

TEST(JsonEscape, SpecialCharacters) {
    EXPECT_EQ(escaped("plain"), "plain");
    EXPECT_EQ(escaped("a\"b"), "a\\\"b");
    EXPECT_EQ(escaped("a\\b"), "a\\\\b");
    EXPECT_EQ(escaped("\n\r\t\b\f"), "\\n\\r\\t\\b\\f");
    EXPECT_EQ(escaped(std::string_view("\0", 1)), "\\u0000");
    EXPECT_EQ(escaped("\x01\x1f"), "\\u0001\\u001f");
    EXPECT_EQ(escaped("/"), "/");
    EXPECT_EQ(escaped("\x7f"), "\x7f");
    EXPECT_EQ(escaped("\xc3\xa9\xe2\x82\xac"), "\xc3\xa9\xe2\x82\xac"); // UTF-8 passes through
}

TEST(JsonEscape, EveryAsciiCharacterRoundTrips) {
    std::string all;
    for (int c = 0; c < 128; ++c) {
        all += static_cast<char>(c);
    }
    std::string text = "\"";
    text += escaped(all);
    text += '"';
    EXPECT_EQ(json::parse(text).as_string(), all);
}

TEST(JsonNumbers, NsAsMicroseconds) {
    EXPECT_EQ(us(0), "0.000");
    EXPECT_EQ(us(1), "0.001");
    EXPECT_EQ(us(999), "0.999");
    EXPECT_EQ(us(1000), "1.000");
    EXPECT_EQ(us(1001), "1.001");
    EXPECT_EQ(us(1234567), "1234.567");
    EXPECT_EQ(us(10050), "10.050");
    EXPECT_EQ(us(-1), "-0.001");
    EXPECT_EQ(us(-999), "-0.999");
    EXPECT_EQ(us(-1000), "-1.000");
    EXPECT_EQ(us(-1234567), "-1234.567");
    EXPECT_EQ(us(std::numeric_limits<std::int64_t>::max()), "9223372036854775.807");
    EXPECT_EQ(us(std::numeric_limits<std::int64_t>::min()), "-9223372036854775.808");
    // Valid JSON numbers.
    EXPECT_DOUBLE_EQ(json::parse(us(-1234567)).as_number(), -1234.567);
}

TEST(JsonNumbers, Integers) {
    std::string out;
    append_integer(out, std::numeric_limits<std::int64_t>::min());
    out += ' ';
    append_integer(out, -5);
    out += ' ';
    append_unsigned(out, std::numeric_limits<std::uint64_t>::max());
    out += ' ';
    append_unsigned(out, 0);
    EXPECT_EQ(out, "-9223372036854775808 -5 18446744073709551615 0");
}

TEST(JsonNumbers, DoublesRoundTripExactly) {
    EXPECT_EQ(dbl(0.0), "0");
    EXPECT_EQ(dbl(1.5), "1.5");
    EXPECT_EQ(dbl(-2.0), "-2");
    EXPECT_EQ(dbl(0.1), "0.10000000000000001");
    EXPECT_EQ(dbl(1e300), "1.0000000000000001e+300");
    for (const double v : {0.1, 1.0 / 3.0, -123.456, 6.02214076e23, 5e-324, 1.7976931348623157e308, -0.0}) {
        EXPECT_EQ(json::parse(dbl(v)).as_number(), v) << dbl(v);
    }
}

TEST(JsonNumbers, NonFiniteBecomesNull) {
    EXPECT_EQ(dbl(std::numeric_limits<double>::quiet_NaN()), "null");
    EXPECT_EQ(dbl(std::numeric_limits<double>::infinity()), "null");
    EXPECT_EQ(dbl(-std::numeric_limits<double>::infinity()), "null");
    std::string out;
    JsonWriter(out).begin_array().value(std::nan("")).value(1.25).end_array();
    EXPECT_EQ(out, "[null,1.25]");
}

// A host may set a locale whose decimal separator is a comma (Qt applications
// call setlocale(LC_ALL, "") at start-up); the files must still be JSON.
TEST(JsonNumbers, DoublesIgnoreTheHostLocale) {
    const std::string saved = std::setlocale(LC_NUMERIC, nullptr);
    const char* found = nullptr;
    for (const char* name : {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8", "ru_RU.UTF-8", "de_DE"}) {
        if (std::setlocale(LC_NUMERIC, name) != nullptr) {
            found = name;
            break;
        }
    }
    if (found == nullptr) {
        GTEST_SKIP() << "no locale with a decimal comma is installed";
    }
    char probe[16];
    std::snprintf(probe, sizeof probe, "%.1f", 1.5);
    const std::string printed = probe;
    const std::string written = dbl(1.5) + " " + dbl(-0.25) + " " + dbl(1e-7);
    std::string doc;
    JsonWriter(doc).begin_object().field("x", 2.5).end_object();
    std::setlocale(LC_NUMERIC, saved.c_str());
    EXPECT_EQ(printed, "1,5") << "locale " << found << " should use a decimal comma";
    EXPECT_EQ(written, "1.5 -0.25 9.9999999999999995e-08");
    EXPECT_EQ(doc, "{\"x\":2.5}");
}

TEST(JsonWriter, NestingAndCommas) {
    std::string out;
    JsonWriter w(out);
    w.begin_object();
    w.field("a", 1);
    w.key("b").begin_array();
    w.value(1).value("two").value(true).null();
    w.begin_object().end_object();
    w.begin_array().end_array();
    w.begin_object().field("x", false).key("y").begin_array().value(-1).end_array().end_object();
    w.end_array();
    w.key("c").begin_object().end_object();
    w.key("d").begin_object().field("e", "f").field("g", std::string("h")).end_object();
    w.field("i", 2.5);
    w.end_object();
    const std::string expected = "{\"a\":1,\"b\":[1,\"two\",true,null,{},[],{\"x\":false,\"y\":[-1]}],\"c\":{},"
                                 "\"d\":{\"e\":\"f\",\"g\":\"h\"},\"i\":2.5}";
    EXPECT_EQ(out, expected);
    const json::Value v = json::parse(out);
    EXPECT_EQ(v.at("b").size(), 7u);
    EXPECT_EQ(v.at("b")[6].at("y")[0].as_int(), -1);
    EXPECT_EQ(&w.buffer(), &out);
}

TEST(JsonWriter, ValueTypes) {
    std::string out;
    const char* nothing = nullptr;
    JsonWriter(out)
        .begin_array()
        .value(std::numeric_limits<std::int64_t>::min())
        .value(std::numeric_limits<std::uint64_t>::max())
        .value(static_cast<std::uint8_t>(200))
        .value(static_cast<short>(-3))
        .value(false)
        .value(nothing)
        .value("lit")
        .value(std::string_view("view"))
        .end_array();
    EXPECT_EQ(out, "[-9223372036854775808,18446744073709551615,200,-3,false,null,\"lit\",\"view\"]");
    const json::Value v = json::parse(out);
    EXPECT_EQ(v[0].as_int(), std::numeric_limits<std::int64_t>::min());
    EXPECT_EQ(v[1].as_uint(), std::numeric_limits<std::uint64_t>::max());
}

TEST(JsonWriter, KeysAndStringsAreEscaped) {
    std::string out;
    const std::string nasty = std::string("q\"b\\s/n\nr\rt\tc\x01z") + '\0' + "end";
    JsonWriter(out).begin_object().field(nasty, nasty).end_object();
    const json::Value v = json::parse(out);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v.members()[0].first, nasty);
    EXPECT_EQ(v.members()[0].second.as_string(), nasty);
}

TEST(JsonWriter, AppendsToExistingText) {
    std::string out = "prefix:";
    JsonWriter(out).begin_array().value(1).end_array();
    JsonWriter(out).begin_object().end_object();
    EXPECT_EQ(out, "prefix:[1]{}");
}

TEST(JsonWriter, TopLevelValuesAfterEachOther) {
    // Outside any container there is nothing to separate.
    std::string out;
    JsonWriter w(out);
    w.value(1);
    w.value(2);
    EXPECT_EQ(out, "12");
}

} // namespace
} // namespace json_writer_test
