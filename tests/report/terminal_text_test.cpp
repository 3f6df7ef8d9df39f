// terminal_text(): printable UTF-8 stays, everything that would act on a
// terminal (controls, escape sequences, bidi and invisible format
// characters, bytes that are not UTF-8) is shown escaped.

#include <pycroscope/report/terminal_text.hpp>

#include <gtest/gtest.h>

#include <string>

namespace terminal_text_test {
namespace {

using pycroscope::report::terminal_text;

TEST(TerminalText, PrintableTextIsKeptAsItIs) {
    EXPECT_EQ(terminal_text("Cls.method <lambda> caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x90\x8d"),
              "Cls.method <lambda> caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x90\x8d");
}

TEST(TerminalText, ControlsAndEscapeSequencesAreShownEscaped) {
    EXPECT_EQ(terminal_text("a\nb\rc\td"), "a\\nb\\rc\\td");
    EXPECT_EQ(terminal_text(std::string("x\0y", 3)), "x\\0y");
    EXPECT_EQ(terminal_text("\x1b[31mred\x1b[0m"), "\\x1b[31mred\\x1b[0m");
    EXPECT_EQ(terminal_text("del\x7f"), "del\\x7f");
    EXPECT_EQ(terminal_text("c1\xc2\x9b" "2J"), "c1\\x9b2J"); // U+009B, the 8-bit CSI
}

TEST(TerminalText, BidiAndInvisibleFormatCharactersAreShownEscaped) {
    EXPECT_EQ(terminal_text("a\xe2\x80\xae" "b"), "a\\u{202e}b");  // RIGHT-TO-LEFT OVERRIDE
    EXPECT_EQ(terminal_text("a\xe2\x81\xa6" "b"), "a\\u{2066}b");  // LEFT-TO-RIGHT ISOLATE
    EXPECT_EQ(terminal_text("a\xe2\x80\x8b" "b"), "a\\u{200b}b");  // ZERO WIDTH SPACE
}

TEST(TerminalText, BytesThatAreNotUtf8AreShownAsHex) {
    EXPECT_EQ(terminal_text("caf\xe9.py"), "caf\\xe9.py");                // Latin-1
    EXPECT_EQ(terminal_text("\xed\xb3\xbf"), "\\xed\\xb3\\xbf");           // an encoded surrogate
    EXPECT_EQ(terminal_text("\xc0\xaf"), "\\xc0\\xaf");                    // overlong
    EXPECT_EQ(terminal_text("cut\xe6\x97"), "cut\\xe6\\x97");              // truncated sequence
}

} // namespace
} // namespace terminal_text_test
