#pragma once
// Shared helpers of the sink tests: a unique temporary directory per test,
// file reading, a builder for synthetic event streams (ns_per_tick = 1 and
// start_ticks = 0, so a timestamp is a nanosecond), a reference span
// reconstruction to compare sink output with what was recorded, and a small
// native workload recorded through the PYCRO_* macros.

#include "support/json.hpp"

#include <pycroscope/core/event.hpp>
#include <pycroscope/core/event_processor.hpp>
#include <pycroscope/core/session_info.hpp>
#include <pycroscope/core/sink.hpp>
#include <pycroscope/core/source_location.hpp>
#include <pycroscope/core/thread_info.hpp>
#include <pycroscope/core/thread_registry.hpp>
#include <pycroscope/core/zone.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace sink_test {

namespace fs = std::filesystem;

inline long current_pid() {
#if defined(__unix__) || defined(__APPLE__)
    return static_cast<long>(::getpid());
#else
    return 0;
#endif
}

// A fresh directory under ::testing::TempDir(), removed with everything in it
// when the object goes out of scope.
class TempDir {
public:
    TempDir() {
        static std::atomic<int> counter{0};
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        std::string name = "pycroscope_sinks_" + std::to_string(current_pid()) + "_" + std::to_string(counter++);
        if (info != nullptr) {
            name += "_";
            name += info->name();
        }
        for (char& c : name) {
            if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) {
                c = '_';
            }
        }
        path_ = fs::path(::testing::TempDir()) / name;
        fs::remove_all(path_);
        fs::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    std::string file(const std::string& name) const { return (path_ / name).string(); }
    const fs::path& path() const noexcept { return path_; }

    // Every entry of the directory, by name, sorted.
    std::vector<std::string> listing() const {
        std::vector<std::string> names;
        for (const auto& entry : fs::directory_iterator(path_)) {
            names.push_back(entry.path().filename().string());
        }
        std::sort(names.begin(), names.end());
        return names;
    }

private:
    fs::path path_;
};

inline std::string temporary_of(const std::string& path) { return path + ".tmp." + std::to_string(current_pid()); }

inline bool exists(const std::string& path) { return fs::exists(fs::path(path)); }

inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw std::runtime_error("cannot read '" + path + "'");
    }
    std::ostringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
}

inline void write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
}

inline std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::string line;
    std::istringstream in(text);
    while (std::getline(in, line)) {
        lines.push_back(line);
    }
    return lines;
}

// "12.345" (microseconds, exactly three decimals) to 12345 ns, exactly.
inline std::int64_t us_text_to_ns(const json::Value& number) {
    const std::string& text = number.number_text();
    const auto dot = text.find('.');
    if (dot == std::string::npos || text.size() - dot != 4 || text.find_first_of("eE") != std::string::npos) {
        throw std::runtime_error("not a microsecond value with three decimals: " + text);
    }
    const bool negative = text[0] == '-';
    const std::int64_t whole = std::stoll(text.substr(negative ? 1 : 0, dot - (negative ? 1 : 0)));
    const std::int64_t frac = std::stoll(text.substr(dot + 1));
    const std::int64_t ns = whole * 1000 + frac;
    return negative ? -ns : ns;
}

// --- synthetic streams ---------------------------------------------------

inline pycroscope::Event make_event(pycroscope::EventKind kind, const pycroscope::SourceLocation* location,
                                    std::uint64_t timestamp, std::uint64_t payload = 0) {
    return pycroscope::Event{timestamp, pycroscope::location_id(location), payload, 0, kind, 0, 0};
}

// Builds per-thread event lists and the matching SessionInfo/SessionSummary,
// then plays them into a sink the way the session would.
class Synthetic {
public:
    Synthetic() {
        info.process_name = "synthetic";
        info.pid = 4242;
        info.start_unix_ns = 1700000000000000000;
        info.start_ticks = 0;
        info.calibration.source = pycroscope::clock::Source::steady;
        info.calibration.ns_per_tick = 1.0;
        info.buffer_capacity = 1024;
        info.collectors = {"synthetic"};
    }

    // Declares a thread; events() of an undeclared thread declares it "thread-<index>".
    void thread(std::uint32_t index, std::string name, std::uint64_t lost = 0) {
        ThreadData& t = threads_[index];
        t.name = std::move(name);
        t.lost = lost;
        t.declared = true;
    }

    void begin(std::uint32_t tid, const pycroscope::SourceLocation* l, std::uint64_t ts) {
        add(tid, make_event(pycroscope::EventKind::zone_begin, l, ts));
    }
    void end(std::uint32_t tid, const pycroscope::SourceLocation* l, std::uint64_t ts) {
        add(tid, make_event(pycroscope::EventKind::zone_end, l, ts));
    }
    // A closed span [from, to].
    void span(std::uint32_t tid, const pycroscope::SourceLocation* l, std::uint64_t from, std::uint64_t to) {
        begin(tid, l, from);
        end(tid, l, to);
    }
    void mark(std::uint32_t tid, const pycroscope::SourceLocation* l, std::uint64_t ts) {
        add(tid, make_event(pycroscope::EventKind::instant, l, ts));
    }
    void counter(std::uint32_t tid, const pycroscope::SourceLocation* l, std::uint64_t ts, double value) {
        add(tid, make_event(pycroscope::EventKind::counter, l, ts, pycroscope::double_bits(value)));
    }
    void frame(std::uint32_t tid, const pycroscope::SourceLocation* l, std::uint64_t ts) {
        add(tid, make_event(pycroscope::EventKind::frame_mark, l, ts));
    }
    void add(std::uint32_t tid, const pycroscope::Event& e) {
        ThreadData& t = threads_[tid];
        if (!t.declared && t.name.empty()) {
            t.name = "thread-" + std::to_string(tid);
        }
        t.events.push_back(e);
    }

    const std::vector<pycroscope::Event>& events(std::uint32_t tid) { return threads_[tid].events; }

    pycroscope::ThreadInfo thread_info(std::uint32_t tid) const {
        const ThreadData& t = threads_.at(tid);
        pycroscope::ThreadInfo info_out;
        info_out.index = tid;
        info_out.os_tid = 10000 + tid;
        info_out.name = t.name;
        info_out.events = t.events.size();
        info_out.lost = t.lost;
        info_out.exited = false;
        return info_out;
    }

    pycroscope::SessionSummary summary(std::uint64_t stop_ticks) const {
        pycroscope::SessionSummary s;
        s.info = info;
        s.stop_ticks = stop_ticks;
        s.duration_ns = info.session_ns(stop_ticks);
        for (const auto& entry : threads_) {
            s.threads.push_back(thread_info(entry.first));
            s.total_events += entry.second.events.size();
            s.total_lost += entry.second.lost;
        }
        s.errors = errors;
        return s;
    }

    // open, consume (threads in index order, in batches of batch events), close.
    void play(pycroscope::Sink& sink, std::uint64_t stop_ticks, std::size_t batch = 3) const {
        sink.open(info);
        consume_all(sink, batch);
        sink.close(summary(stop_ticks));
    }

    // As a session drains into a drain-side model and a sink: each batch to
    // the processor first, and the processor closes before the sink.
    void play(pycroscope::EventProcessor& processor, pycroscope::Sink& sink, std::uint64_t stop_ticks,
              std::size_t batch = 3) const {
        processor.open(info);
        sink.open(info);
        for_each_batch(batch, [&](const pycroscope::ThreadInfo& t, const pycroscope::Event* events, std::size_t n) {
            std::vector<pycroscope::Event> copy(events, events + n);
            processor.process(t, copy.data(), n);
            sink.consume(t, events, n);
        });
        const pycroscope::SessionSummary end = summary(stop_ticks);
        processor.close(end);
        sink.close(end);
    }

    void consume_all(pycroscope::Sink& sink, std::size_t batch = 3) const {
        for_each_batch(batch, [&](const pycroscope::ThreadInfo& t, const pycroscope::Event* events, std::size_t n) {
            sink.consume(t, events, n);
        });
    }

    // Each thread's events in batches of batch, as the drain hands them on:
    // f(thread info, events, count), with the thread's delivered count so far.
    template <class F>
    void for_each_batch(std::size_t batch, F&& f) const {
        for (const auto& entry : threads_) {
            pycroscope::ThreadInfo t = thread_info(entry.first);
            const auto& list = entry.second.events;
            for (std::size_t at = 0; at < list.size(); at += batch) {
                const std::size_t n = std::min(batch, list.size() - at);
                t.events = at + n;
                f(t, list.data() + at, n);
            }
        }
    }

    pycroscope::SessionInfo info;
    std::vector<std::string> errors;

private:
    struct ThreadData {
        std::string name;
        std::uint64_t lost = 0;
        bool declared = false;
        std::vector<pycroscope::Event> events;
    };
    std::map<std::uint32_t, ThreadData> threads_;
};

// --- reference reconstruction --------------------------------------------

// One span as the sinks must see it: the innermost open frame of the same
// location is closed by an end (frames above it are closed with it), an end
// without a begin is ignored, and what is open at stop closes at stop.
struct RefSpan {
    const pycroscope::SourceLocation* location;
    std::uint64_t begin;
    std::uint64_t end;
    std::vector<const pycroscope::SourceLocation*> stack; // outermost .. this span
};

inline std::vector<RefSpan> reference_spans(const std::vector<pycroscope::Event>& events, std::uint64_t stop_ticks,
                                            std::uint64_t* unmatched = nullptr) {
    std::vector<RefSpan> open;
    std::vector<RefSpan> done;
    for (const auto& e : events) {
        if (pycroscope::opens_span(e.kind)) {
            RefSpan s{e.location(), e.timestamp, 0, {}};
            for (const auto& o : open) {
                s.stack.push_back(o.location);
            }
            s.stack.push_back(e.location());
            open.push_back(s);
        } else if (pycroscope::closes_span(e.kind)) {
            std::size_t match = open.size();
            while (match > 0 && open[match - 1].location != e.location()) {
                --match;
            }
            if (match == 0) {
                if (unmatched != nullptr) {
                    ++*unmatched;
                }
                continue;
            }
            while (open.size() >= match) {
                RefSpan s = open.back();
                open.pop_back();
                s.end = e.timestamp;
                done.push_back(s);
            }
        }
    }
    while (!open.empty()) {
        RefSpan s = open.back();
        open.pop_back();
        s.end = stop_ticks;
        done.push_back(s);
    }
    return done;
}

// Self ticks per stack (outermost first), from the spans of one thread.
inline std::map<std::vector<const pycroscope::SourceLocation*>, std::uint64_t>
reference_self_ticks(const std::vector<RefSpan>& spans) {
    // A span's direct children are the spans whose stack extends it by one and lie within it.
    std::map<std::vector<const pycroscope::SourceLocation*>, std::uint64_t> self;
    for (const auto& s : spans) {
        const std::uint64_t d = s.end > s.begin ? s.end - s.begin : 0;
        std::uint64_t child_ticks = 0;
        for (const auto& c : spans) {
            if (c.stack.size() == s.stack.size() + 1 && c.begin >= s.begin && c.end <= s.end &&
                std::equal(s.stack.begin(), s.stack.end(), c.stack.begin())) {
                child_ticks += c.end > c.begin ? c.end - c.begin : 0;
            }
        }
        self[s.stack] += d > child_ticks ? d - child_ticks : 0;
    }
    return self;
}

// --- a native workload ---------------------------------------------------

// Per iteration: outer and inner zones (4 events), a counter, a mark and a
// frame mark: 7 events.
constexpr int events_per_iteration = 7;

inline void workload(int iterations) {
    for (int i = 0; i < iterations; ++i) {
        PYCRO_SCOPE_N("outer");
        {
            PYCRO_SCOPE_N("inner");
            PYCRO_COUNTER("progress", i);
        }
        PYCRO_MARK("tick");
        PYCRO_FRAME_MARK();
    }
}

// Recursion through a zone: depth zones nested in one another.
inline void recurse(int depth) {
    PYCRO_SCOPE_N("recurse");
    if (depth > 1) {
        recurse(depth - 1);
    }
}

// Runs f(k) on threads named "worker-<k>", k = 1..n, and joins them.
template <class F>
void run_workers(int n, F f) {
    std::vector<std::thread> threads;
    for (int k = 1; k <= n; ++k) {
        threads.emplace_back([k, &f] {
            pycroscope::set_thread_name("worker-" + std::to_string(k));
            f(k);
        });
    }
    for (auto& t : threads) {
        t.join();
    }
}

} // namespace sink_test
