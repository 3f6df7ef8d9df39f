#include "pycroscope/report/json_document.hpp"

#include <gtest/gtest.h>

#include <string>

using pycroscope::report::append_json_string;
using pycroscope::report::JsonEscape;
using pycroscope::report::JsonValue;
using pycroscope::report::parse_json;
using pycroscope::report::ReportError;
using pycroscope::report::to_json;

TEST(JsonDocument, IntegersBeyondTwoToThe53PassThroughUnchanged) {
    const std::string text = R"({"start_unix_ns":1796601918871642999,"share":0.016247514387614164,"neg":-1.5e-3})";
    const JsonValue doc = parse_json(text);
    EXPECT_EQ(doc.find("start_unix_ns")->text(), "1796601918871642999");
    EXPECT_EQ(to_json(doc), text);
}

TEST(JsonDocument, ReadsNestedSectionsAndMissingFieldsAsZero) {
    const JsonValue doc = parse_json(R"({"memory":{"peak_bytes":4096,"sites":[{"file":"a.py"}]},"name":"x"})");
    ASSERT_NE(doc.find("memory"), nullptr);
    EXPECT_EQ(doc.find("memory")->get_number("peak_bytes"), 4096.0);
    EXPECT_EQ(doc.find("memory")->get_number("absent"), 0.0);
    EXPECT_EQ(doc.find("memory")->find("sites")->items().at(0).get_string("file"), "a.py");
    EXPECT_EQ(doc.get_string("missing"), "");
    EXPECT_EQ(doc.find("nothing"), nullptr);
}

TEST(JsonDocument, DecodesEscapesAndSurrogatePairs) {
    const JsonValue doc = parse_json(R"(["a\"b\\c\n\u00e9\ud83d\ude00\u2028"])");
    EXPECT_EQ(doc.items().at(0).text(), "a\"b\\c\n\xc3\xa9\xf0\x9f\x98\x80\xe2\x80\xa8");
}

TEST(JsonDocument, ScriptEscapingKeepsMarkupAndLineSeparatorsOutOfTheText) {
    std::string out;
    append_json_string(out, "</script><!-- & \xe2\x80\xa8\xe2\x80\xa9 <b>", JsonEscape::script);
    EXPECT_EQ(out, R"("\u003c/script\u003e\u003c!-- \u0026 \u2028\u2029 \u003cb\u003e")");
    EXPECT_EQ(out.find('<'), std::string::npos);
    // The escaped text reads back as the original.
    EXPECT_EQ(parse_json(out).text(), "</script><!-- & \xe2\x80\xa8\xe2\x80\xa9 <b>");
    std::string plain;
    append_json_string(plain, "<b>\x01", JsonEscape::plain);
    EXPECT_EQ(plain, R"("<b>\u0001")");
}

TEST(JsonDocument, MalformedInputThrowsNamingTheOffset) {
    for (const char* bad : {"", "{", "[1,]", "{\"a\" 1}", "tru", "\"abc", "[1] x", "01x", "{\"a\":-}", "\"\\q\""}) {
        try {
            parse_json(bad);
            ADD_FAILURE() << "accepted: " << bad;
        } catch (const ReportError& error) {
            const std::string what = error.what();
            EXPECT_EQ(what.rfind("invalid JSON: ", 0), 0u) << what;
            EXPECT_NE(what.find(" at offset "), std::string::npos) << what;
        }
    }
}

TEST(JsonDocument, DeepNestingIsAnErrorNotACrash) {
    const std::string deep(100000, '[');
    EXPECT_THROW(parse_json(deep), ReportError);
}
