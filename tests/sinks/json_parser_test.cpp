// The strict JSON parser (core/json_reader.hpp) that model::load_profile()
// and the tests read files with: it must accept exactly RFC 8259 JSON.

#include "sinks/sink_test_helpers.hpp"
#include "support/json.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

namespace json_parser_test {
namespace {

TEST(JsonParser, Scalars) {
    EXPECT_TRUE(json::parse("null").is_null());
    EXPECT_TRUE(json::parse("true").as_bool());
    EXPECT_FALSE(json::parse("false").as_bool());
    EXPECT_EQ(json::parse("\"hi\"").as_string(), "hi");
    EXPECT_EQ(json::parse("0").as_int(), 0);
    EXPECT_EQ(json::parse("-0").as_number(), 0.0);
    EXPECT_EQ(json::parse("42").as_int(), 42);
    EXPECT_EQ(json::parse("-17").as_int(), -17);
    EXPECT_DOUBLE_EQ(json::parse("3.25").as_number(), 3.25);
    EXPECT_DOUBLE_EQ(json::parse("-1.5e3").as_number(), -1500.0);
    EXPECT_DOUBLE_EQ(json::parse("2E-2").as_number(), 0.02);
    EXPECT_DOUBLE_EQ(json::parse("1e+2").as_number(), 100.0);
    EXPECT_DOUBLE_EQ(json::parse("0.5").as_number(), 0.5);
}

TEST(JsonParser, WhitespaceAroundValues) {
    const json::Value v = json::parse(" \t\r\n{ \"a\" : [ 1 , 2 ] }\n ");
    ASSERT_TRUE(v.is_object());
    EXPECT_EQ(v.at("a").size(), 2u);
}

TEST(JsonParser, IntegersAreExactFromTheSourceText) {
    // Beyond 2^53 a double cannot hold these; as_int/as_uint read the text.
    EXPECT_EQ(json::parse("9007199254740993").as_int(), 9007199254740993LL);
    EXPECT_EQ(json::parse("9223372036854775807").as_int(), std::numeric_limits<std::int64_t>::max());
    EXPECT_EQ(json::parse("-9223372036854775808").as_int(), std::numeric_limits<std::int64_t>::min());
    EXPECT_EQ(json::parse("18446744073709551615").as_uint(), std::numeric_limits<std::uint64_t>::max());
    EXPECT_THROW(json::parse("9223372036854775808").as_int(), std::out_of_range);
    EXPECT_THROW(json::parse("-1").as_uint(), std::out_of_range);
    EXPECT_THROW(json::parse("1.5").as_int(), std::logic_error);
    EXPECT_THROW(json::parse("1e3").as_int(), std::logic_error);
    EXPECT_EQ(json::parse("12.345").number_text(), "12.345");
    EXPECT_TRUE(json::parse("12").is_integer());
    EXPECT_FALSE(json::parse("12.0").is_integer());
}

TEST(JsonParser, ObjectsAndArrays) {
    const json::Value v = json::parse(R"({"a":1,"b":[true,null,"x",{"c":[]}],"d":{}})");
    ASSERT_TRUE(v.is_object());
    EXPECT_EQ(v.size(), 3u);
    EXPECT_EQ(v.at("a").as_int(), 1);
    const json::Value& b = v.at("b");
    ASSERT_TRUE(b.is_array());
    ASSERT_EQ(b.size(), 4u);
    EXPECT_TRUE(b[0].as_bool());
    EXPECT_TRUE(b[1].is_null());
    EXPECT_EQ(b[2].as_string(), "x");
    EXPECT_TRUE(b[3].at("c").is_array());
    EXPECT_EQ(b[3].at("c").size(), 0u);
    EXPECT_TRUE(v.at("d").is_object());
    EXPECT_EQ(v.at("d").size(), 0u);
    EXPECT_TRUE(v.contains("a"));
    EXPECT_FALSE(v.contains("z"));
    EXPECT_EQ(v.find("z"), nullptr);
    // Member order is the text's.
    ASSERT_EQ(v.members().size(), 3u);
    EXPECT_EQ(v.members()[0].first, "a");
    EXPECT_EQ(v.members()[2].first, "d");
    EXPECT_EQ(json::parse("[]").size(), 0u);
}

TEST(JsonParser, AccessorsCheckTypesAndBounds) {
    const json::Value v = json::parse(R"({"a":[1]})");
    EXPECT_THROW(v.at("missing"), std::out_of_range);
    EXPECT_THROW(v.at("a")[1], std::out_of_range);
    EXPECT_THROW(v[0], std::logic_error);
    EXPECT_THROW(v.at("a").at("x"), std::logic_error);
    EXPECT_THROW(v.as_string(), std::logic_error);
    EXPECT_THROW(v.at("a")[0].as_string(), std::logic_error);
    EXPECT_THROW(json::parse("\"s\"").as_number(), std::logic_error);
    EXPECT_THROW(json::parse("1").size(), std::logic_error);
    EXPECT_THROW(json::parse("1").as_bool(), std::logic_error);
}

TEST(JsonParser, StringEscapes) {
    EXPECT_EQ(json::parse(R"("\"\\\/\b\f\n\r\t")").as_string(), "\"\\/\b\f\n\r\t");
    EXPECT_EQ(json::parse(R"("\u0041\u00e9\u20AC")").as_string(), "A\xc3\xa9\xe2\x82\xac");
    EXPECT_EQ(json::parse(R"("\u0000")").as_string(), std::string(1, '\0'));
    EXPECT_EQ(json::parse(R"("\u001f")").as_string(), "\x1f");
    // Surrogate pair: U+1F600.
    EXPECT_EQ(json::parse(R"("\ud83d\ude00")").as_string(), "\xf0\x9f\x98\x80");
    // Raw UTF-8 passes through.
    EXPECT_EQ(json::parse("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"").as_string(),
              "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    EXPECT_EQ(json::parse(R"("")").as_string(), "");
}

void expect_malformed(const std::string& text, const std::string& fragment = "") {
    try {
        json::parse(text);
        ADD_FAILURE() << "accepted malformed JSON: " << text;
    } catch (const std::runtime_error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("offset"), std::string::npos) << what;
        if (!fragment.empty()) {
            EXPECT_NE(what.find(fragment), std::string::npos) << "for " << text << ": " << what;
        }
    }
}

TEST(JsonParser, RejectsMalformedInput) {
    expect_malformed("");
    expect_malformed("   ");
    expect_malformed("{");
    expect_malformed("[1,2");
    expect_malformed("[1,]");
    expect_malformed("[,1]");
    expect_malformed("{\"a\":1,}");
    expect_malformed("{\"a\" 1}");
    expect_malformed("{a:1}");
    expect_malformed("{\"a\":}");
    expect_malformed("[1 2]");
    expect_malformed("1 2", "after the top-level value");
    expect_malformed("{} x");
    expect_malformed("tru");
    expect_malformed("nul");
    expect_malformed("True");
    expect_malformed("NaN");
    expect_malformed("Infinity");
    expect_malformed("-Infinity");
    expect_malformed("'x'");
    expect_malformed("// comment\n1");
}

TEST(JsonParser, RejectsMalformedNumbers) {
    expect_malformed("01", "leading zeros");
    expect_malformed("-01");
    expect_malformed("+1");
    expect_malformed(".5");
    expect_malformed("1.");
    expect_malformed("1.e3");
    expect_malformed("1e");
    expect_malformed("1e+");
    expect_malformed("-");
    expect_malformed("0x10");
    expect_malformed("1e999", "out of range");
    expect_malformed("[1.5.2]");
}

TEST(JsonParser, RejectsMalformedStrings) {
    expect_malformed("\"abc", "unterminated");
    expect_malformed("\"a\nb\"", "control character");
    expect_malformed(std::string("\"a") + '\0' + "b\"", "control character");
    expect_malformed("\"\x1f\"", "control character");
    expect_malformed(R"("\x")", "invalid escape");
    expect_malformed(R"("\a")", "invalid escape");
    expect_malformed(R"("\u12")", "\\u");
    expect_malformed(R"("\u12g4")", "hex digit");
    expect_malformed(R"("\ud83d")", "surrogate");
    expect_malformed(R"("\ud83dx")", "surrogate");
    expect_malformed(R"("\ud83d\u0041")", "surrogate");
    expect_malformed(R"("\ude00")", "surrogate");
    expect_malformed("\"\\", "unterminated");
}

TEST(JsonParser, RejectsInvalidUtf8) {
    expect_malformed("\"\xff\"", "UTF-8");
    expect_malformed("\"\xc3\"", "UTF-8");
    expect_malformed("\"\xc3x\"", "UTF-8");
    expect_malformed("\"\xc0\xaf\"", "overlong");
    expect_malformed("\"\xed\xa0\x80\"", "invalid code point"); // an encoded surrogate
    expect_malformed("\"\xf4\x90\x80\x80\"", "invalid code point"); // above U+10FFFF
}

TEST(JsonParser, RejectsDuplicateKeys) { expect_malformed(R"({"a":1,"b":2,"a":3})", "duplicate key \"a\""); }

TEST(JsonParser, ErrorNamesThePosition) {
    try {
        json::parse("{\n  \"a\": [1,\n  2,]\n}");
        FAIL() << "accepted a trailing comma";
    } catch (const std::runtime_error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("offset 17"), std::string::npos) << what;
        EXPECT_NE(what.find("line 3, column 5"), std::string::npos) << what;
    }
}

TEST(JsonParser, DeepNestingIsAnErrorNotACrash) {
    const std::string deep(100000, '[');
    expect_malformed(deep, "nesting");
    std::string ok(200, '[');
    ok += std::string(200, ']');
    EXPECT_NO_THROW(json::parse(ok));
}

TEST(JsonParser, ParseFileReadsWholeFile) {
    sink_test::TempDir dir;
    const std::string path = dir.file("doc.json");
    sink_test::write_file(path, "{\"k\": [1, 2, 3]}\n");
    EXPECT_EQ(json::parse_file(path).at("k").size(), 3u);
    EXPECT_THROW(json::parse_file("/nonexistent-dir-pycroscope/x.json"), std::runtime_error);
}

} // namespace
} // namespace json_parser_test
