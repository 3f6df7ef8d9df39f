// Config validation, through Config::validate() and through Session::start():
// every bad value is a ConfigError naming the field, and a refused start()
// leaves nothing behind.

#include "pycroscope/core/config.hpp"
#include "pycroscope/core/error.hpp"
#include "pycroscope/core/session.hpp"
#include "pycroscope/core/zone.hpp"
#include "support/recording_sink.hpp"
#include "support/scoped_env.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <optional>
#include <string>

namespace config_test {
namespace {

using pycroscope::Config;
using pycroscope::ConfigError;
using pycroscope::NativeZones;
using pycroscope::Session;
using pycroscope_test::RecordingSink;

// Sets or clears an environment variable for one test and restores it after.
using pycroscope_test::ScopedEnv;

// Runs start() on a fresh session with config and returns the ConfigError
// message, or "" when start() did not throw one. Checks that a refused start
// left no session running and opened no sink for good.
std::string start_error(const Config& config) {
    Session<NativeZones> session(config);
    auto sink = session.add_sink<RecordingSink>();
    try {
        session.start();
    } catch (const ConfigError& e) {
        EXPECT_FALSE(session.running());
        EXPECT_FALSE(pycroscope::native_zones_active());
        EXPECT_EQ(sink->opens(), 0) << "a sink was opened before the config was checked";
        return e.what();
    }
    session.stop();
    return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(Config, DefaultsAreValid) {
    Config config;
    EXPECT_NO_THROW(config.validate());
    EXPECT_EQ(config.buffer_capacity, std::size_t{1} << 16);
    EXPECT_EQ(config.overflow, pycroscope::OverflowPolicy::block);
    EXPECT_EQ(config.clock, pycroscope::ClockSource::automatic);
    EXPECT_EQ(config.effective_capacity(), std::size_t{1} << 16);
}

TEST(Config, OverflowPolicyNames) {
    EXPECT_STREQ(pycroscope::to_string(pycroscope::OverflowPolicy::block), "block");
    EXPECT_STREQ(pycroscope::to_string(pycroscope::OverflowPolicy::drop_newest), "drop_newest");
    EXPECT_STREQ(pycroscope::to_string(pycroscope::OverflowPolicy::overwrite_oldest), "overwrite_oldest");
}

TEST(Config, BufferCapacityBounds) {
    for (const std::size_t bad : {std::size_t{0}, std::size_t{1}, Config::max_buffer_capacity + 1}) {
        Config config;
        config.buffer_capacity = bad;
        const std::string message = start_error(config);
        EXPECT_TRUE(contains(message, "buffer_capacity")) << "capacity " << bad << ": '" << message << "'";
        EXPECT_TRUE(contains(message, std::to_string(bad))) << message;
        EXPECT_TRUE(contains(message, "pycroscope: ")) << message;
    }
    for (const std::size_t good : {std::size_t{2}, std::size_t{3}, Config::max_buffer_capacity}) {
        Config config;
        config.buffer_capacity = good;
        EXPECT_NO_THROW(config.validate()) << good;
    }
    Config huge;
    huge.buffer_capacity = Config::max_buffer_capacity;
    EXPECT_EQ(huge.effective_capacity(), Config::max_buffer_capacity);
}

TEST(Config, DrainIntervalBounds) {
    for (const auto bad : {std::chrono::microseconds(0), std::chrono::microseconds(-5),
                           std::chrono::microseconds(1'000'001)}) {
        Config config;
        config.drain_interval = bad;
        const std::string message = start_error(config);
        EXPECT_TRUE(contains(message, "drain_interval")) << bad.count() << ": '" << message << "'";
    }
    Config config;
    config.drain_interval = std::chrono::microseconds(1);
    EXPECT_NO_THROW(config.validate());
    config.drain_interval = std::chrono::seconds(1);
    EXPECT_NO_THROW(config.validate());
}

TEST(Config, EmptyProcessName) {
    Config config;
    config.process_name.clear();
    EXPECT_TRUE(contains(start_error(config), "process_name"));
}

TEST(Config, EmptyMetadataKey) {
    Config config;
    config.metadata = {{"ok", "1"}, {"", "value"}};
    EXPECT_TRUE(contains(start_error(config), "metadata"));
    config.metadata = {{"ok", ""}}; // empty values are fine
    EXPECT_NO_THROW(config.validate());
}

TEST(Config, BogusClockEnvironment) {
    ScopedEnv env("PYCROSCOPE_CLOCK", "bogus");
    Config config;
    const std::string message = start_error(config);
    EXPECT_TRUE(contains(message, "PYCROSCOPE_CLOCK")) << message;
    EXPECT_TRUE(contains(message, "bogus")) << message;
    EXPECT_THROW(pycroscope::clock::select(pycroscope::ClockSource::automatic), ConfigError);
    // An explicit source in the Config wins over the environment.
    EXPECT_NO_THROW(pycroscope::clock::select(pycroscope::ClockSource::steady));
}

TEST(Config, ClockEnvironmentAcceptedValues) {
    for (const char* value : {"steady", "auto", ""}) {
        ScopedEnv env("PYCROSCOPE_CLOCK", value);
        EXPECT_NO_THROW(pycroscope::clock::select(pycroscope::ClockSource::automatic)) << value;
    }
}

TEST(Config, FailedStartLeavesNothingRunningAndAGoodStartWorks) {
    Config bad;
    bad.buffer_capacity = 1;
    Session<NativeZones> session(bad);
    auto bad_sink = session.add_sink<RecordingSink>();
    EXPECT_THROW(session.start(), ConfigError);
    EXPECT_FALSE(session.running());
    { PYCRO_SCOPE_N("config_test.not_recorded"); }
    EXPECT_THROW(session.start(), ConfigError); // still refused, still harmless
    EXPECT_EQ(session.stop().total_events, 0u);
    EXPECT_EQ(bad_sink->opens(), 0);
    EXPECT_EQ(bad_sink->closes(), 0);

    {
        ScopedEnv env("PYCROSCOPE_CLOCK", "bogus");
        Session<NativeZones> refused;
        EXPECT_THROW(refused.start(), ConfigError);
    }

    Config good;
    good.buffer_capacity = 64;
    Session<NativeZones> next(good);
    auto sink = next.add_sink<RecordingSink>();
    ASSERT_NO_THROW(next.start());
    { PYCRO_SCOPE_N("config_test.recorded"); }
    const auto summary = next.stop();
    EXPECT_EQ(summary.total_events, 2u);
    EXPECT_EQ(sink->event_count(), 2u);
    EXPECT_EQ(sink->info().buffer_capacity, 64u);
}

TEST(Config, ErrorTypesAndPrefixes) {
    const ConfigError config_error("x");
    const pycroscope::SessionError session_error("y");
    const pycroscope::SinkError sink_error("z");
    EXPECT_STREQ(config_error.what(), "pycroscope: x");
    EXPECT_STREQ(session_error.what(), "pycroscope: y");
    EXPECT_STREQ(sink_error.what(), "pycroscope: z");
    EXPECT_NE(dynamic_cast<const std::invalid_argument*>(&config_error), nullptr);
    EXPECT_NE(dynamic_cast<const std::logic_error*>(&session_error), nullptr);
    EXPECT_NE(dynamic_cast<const std::runtime_error*>(&sink_error), nullptr);
}

} // namespace
} // namespace config_test
