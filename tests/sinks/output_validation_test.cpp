// Outputs that cannot work together are refused before recording starts,
// and names that are not UTF-8 still give valid JSON.
#include <pycroscope.hpp>

#include "support/json.hpp"

#include <gtest/gtest.h>

#include <string>

namespace output_validation_test {
namespace {

std::string temp_path(const std::string& name) { return ::testing::TempDir() + "validation_" + name; }

TEST(OutputValidation, TwoSinksOnOneFileAreRefused) {
    pycroscope::Session<pycroscope::NativeZones> session;
    session.add_sink<pycroscope::sinks::ChromeTraceSink>(temp_path("same.json"));
    session.add_sink<pycroscope::sinks::JsonSummarySink>(temp_path("same.json"));
    try {
        session.start();
        FAIL() << "start() accepted two sinks writing one file";
    } catch (const pycroscope::ConfigError& error) {
        EXPECT_NE(std::string(error.what()).find("write the same file"), std::string::npos) << error.what();
    }
    EXPECT_FALSE(session.running());
    EXPECT_FALSE(pycroscope::native_zones_active());
}

TEST(OutputValidation, ReservedAndRepeatedMetadataKeysAreRefused) {
    pycroscope::Config reserved;
    reserved.metadata = {{"clock", "mine"}};
    EXPECT_THROW(reserved.validate(), pycroscope::ConfigError);
    pycroscope::Config repeated;
    repeated.metadata = {{"build", "1"}, {"build", "2"}};
    EXPECT_THROW(repeated.validate(), pycroscope::ConfigError);
    pycroscope::Config fine;
    fine.metadata = {{"build", "1"}, {"host", "x"}};
    EXPECT_NO_THROW(fine.validate());
}

TEST(OutputValidation, SectionKeysMustBeNew) {
    pycroscope::sinks::JsonSummarySink sink(temp_path("sections.json"));
    const auto writer = [](pycroscope::sinks::JsonWriter& json, const pycroscope::SessionSummary&) { json.null(); };
    EXPECT_THROW(sink.add_section("threads", writer), pycroscope::ConfigError);
    EXPECT_NO_THROW(sink.add_section("extra", writer));
    EXPECT_THROW(sink.add_section("extra", writer), pycroscope::ConfigError);
}

TEST(OutputValidation, InvalidUtf8BecomesReplacementCharacters) {
    std::string out;
    // valid 2-, 3- and 4-byte sequences, then a stray continuation byte, a
    // truncated sequence, an overlong form and an encoded surrogate.
    pycroscope::sinks::append_json_escaped(out, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|\x80|\xe2\x82|\xc0\xaf|\xed\xa0\x80");
    EXPECT_EQ(out, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|\\ufffd|\\ufffd\\ufffd|\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd");
    const auto parsed = json::parse("\"" + out + "\"");
    EXPECT_TRUE(parsed.is_string());
}

TEST(OutputValidation, ThreadNamesAreCutAtACharacterBoundary) {
    pycroscope::Session<pycroscope::NativeZones> session;
    session.start();
    std::string name(62, 'a');
    name += "\xc3\xa9"; // 64 bytes: the last character straddles the 63-byte limit
    pycroscope::set_thread_name(name);
    { PYCRO_SCOPE_N("named"); }
    const auto summary = session.stop();
    ASSERT_EQ(summary.threads.size(), 1u);
    EXPECT_EQ(summary.threads[0].name, std::string(62, 'a'));
    pycroscope::set_thread_name("");
}

} // namespace
} // namespace output_validation_test
