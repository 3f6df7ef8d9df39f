#pragma once
// The capture's HEAD body (SessionInfo) and TAIL body (SessionSummary and the
// writer's own counts), written and read field by field in the order of
// docs/capture-format.md.

#include "pycroscope/capture/byte_codec.hpp"
#include "pycroscope/core/event.hpp"
#include "pycroscope/core/session_info.hpp"

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace pycroscope {
namespace capture {

// The TAIL body: the session's summary and what the writer wrote, so that a
// reader can tell a file with missing chunks from a whole one.
struct TrailerRecord {
    SessionSummary summary; // summary.info is the HEAD's SessionInfo
    std::uint64_t chunks = 0;
    std::uint64_t events = 0;
};

inline void write_session_info(ByteBuffer& out, const SessionInfo& info) {
    out.string(info.process_name);
    out.varint(info.pid);
    out.varint(zigzag(info.start_unix_ns));
    out.varint(info.start_ticks);
    out.byte(static_cast<std::uint8_t>(info.calibration.source));
    out.u64(double_bits(info.calibration.ns_per_tick));
    out.varint(info.calibration.tick_origin);
    out.varint(zigzag(info.calibration.ns_origin));
    out.varint(info.buffer_capacity);
    out.byte(static_cast<std::uint8_t>(info.overflow));
    out.varint(info.collectors.size());
    for (const auto& name : info.collectors) {
        out.string(name);
    }
    out.varint(info.metadata.size());
    for (const auto& entry : info.metadata) {
        out.string(entry.first);
        out.string(entry.second);
    }
}

// Counts read from a file: a count larger than the bytes left is corrupt
// (every item takes at least one byte), so nothing is reserved past the input.
inline std::size_t read_count(ByteReader& in, const char* what) {
    const std::uint64_t n = in.varint();
    if (n > in.remaining()) {
        in.fail(std::string(what) + " count " + std::to_string(n) + " exceeds the block");
    }
    return static_cast<std::size_t>(n);
}

inline SessionInfo read_session_info(ByteReader& in) {
    SessionInfo info;
    info.process_name = in.string();
    info.pid = in.varint();
    info.start_unix_ns = unzigzag(in.varint());
    info.start_ticks = in.varint();
    const std::uint8_t source = in.byte();
    if (source > static_cast<std::uint8_t>(clock::Source::steady)) {
        in.fail("unknown clock source " + std::to_string(source));
    }
    info.calibration.source = static_cast<clock::Source>(source);
    const std::uint64_t ns_per_tick = in.u64();
    std::memcpy(&info.calibration.ns_per_tick, &ns_per_tick, sizeof ns_per_tick);
    // A clock runs between 1 tick per ns per million and a tick per ms.
    if (!(info.calibration.ns_per_tick > 1e-6 && info.calibration.ns_per_tick <= 1e6)) {
        in.fail("clock calibration of " + std::to_string(info.calibration.ns_per_tick) + " ns per tick is not a clock's");
    }
    info.calibration.tick_origin = in.varint();
    info.calibration.ns_origin = unzigzag(in.varint());
    info.buffer_capacity = static_cast<std::size_t>(in.varint());
    const std::uint8_t overflow = in.byte();
    if (overflow > static_cast<std::uint8_t>(OverflowPolicy::overwrite_oldest)) {
        in.fail("unknown overflow policy " + std::to_string(overflow));
    }
    info.overflow = static_cast<OverflowPolicy>(overflow);
    const std::size_t collectors = read_count(in, "collector");
    for (std::size_t i = 0; i < collectors; ++i) {
        info.collectors.push_back(in.string());
    }
    const std::size_t metadata = read_count(in, "metadata");
    for (std::size_t i = 0; i < metadata; ++i) {
        std::string key = in.string();
        std::string value = in.string();
        info.metadata.emplace_back(std::move(key), std::move(value));
    }
    return info;
}

inline void write_trailer(ByteBuffer& out, const TrailerRecord& record) {
    const SessionSummary& s = record.summary;
    out.varint(s.stop_ticks);
    out.varint(zigzag(s.duration_ns));
    out.varint(s.total_events);
    out.varint(s.total_lost);
    out.varint(s.threads.size());
    for (const auto& t : s.threads) {
        out.varint(t.index);
        out.varint(t.os_tid);
        out.string(t.name);
        out.varint(t.events);
        out.varint(t.lost);
        out.byte(t.exited ? 1 : 0);
    }
    out.varint(s.errors.size());
    for (const auto& e : s.errors) {
        out.string(e);
    }
    out.varint(record.chunks);
    out.varint(record.events);
}

inline TrailerRecord read_trailer(ByteReader& in, const SessionInfo& info) {
    TrailerRecord record;
    SessionSummary& s = record.summary;
    s.info = info;
    s.stop_ticks = in.varint();
    s.duration_ns = unzigzag(in.varint());
    s.total_events = in.varint();
    s.total_lost = in.varint();
    const std::size_t threads = read_count(in, "thread");
    for (std::size_t i = 0; i < threads; ++i) {
        ThreadInfo t;
        t.index = in.varint32("thread index");
        t.os_tid = in.varint();
        t.name = in.string();
        t.events = in.varint();
        t.lost = in.varint();
        const std::uint8_t exited = in.byte();
        if (exited > 1) {
            in.fail("thread exited flag is not 0 or 1");
        }
        t.exited = exited == 1;
        s.threads.push_back(std::move(t));
    }
    const std::size_t errors = read_count(in, "error");
    for (std::size_t i = 0; i < errors; ++i) {
        s.errors.push_back(in.string());
    }
    record.chunks = in.varint();
    record.events = in.varint();
    return record;
}

} // namespace capture
} // namespace pycroscope
