// memory_tracking_config(): the ring a session gets for the memory options
// it runs with (the rule pycroscope profile and the overhead benchmark share).

#include <pycroscope/python/memory/memory_collector.hpp>

#include <gtest/gtest.h>

#include <chrono>

namespace memory_collector_test {
namespace {

using pycroscope::Config;
using pycroscope::python::full_tracking_buffer_capacity;
using pycroscope::python::memory_tracking_config;
using pycroscope::python::MemoryOptions;

TEST(MemoryTrackingConfig, FullTrackingGetsTheLargerRing) {
    EXPECT_GT(full_tracking_buffer_capacity, Config{}.buffer_capacity);
    const Config config = memory_tracking_config(Config{}, MemoryOptions{});
    EXPECT_EQ(config.buffer_capacity, full_tracking_buffer_capacity);
    EXPECT_EQ(config.effective_capacity(), full_tracking_buffer_capacity);
}

TEST(MemoryTrackingConfig, SamplingAndDisabledKeepTheDefault) {
    MemoryOptions sampled;
    sampled.sample_bytes = 4096;
    EXPECT_EQ(memory_tracking_config(Config{}, sampled).buffer_capacity, Config{}.buffer_capacity);
    MemoryOptions disabled;
    disabled.enabled = false;
    EXPECT_EQ(memory_tracking_config(Config{}, disabled).buffer_capacity, Config{}.buffer_capacity);
}

TEST(MemoryTrackingConfig, KeepsWhatTheHostChose) {
    Config chosen;
    chosen.buffer_capacity = 1024;
    chosen.drain_interval = std::chrono::microseconds(250);
    const Config config = memory_tracking_config(chosen, MemoryOptions{});
    EXPECT_EQ(config.buffer_capacity, 1024u);
    EXPECT_EQ(config.drain_interval, std::chrono::microseconds(250));
}

} // namespace
} // namespace memory_collector_test
