// model::ProfileBuilder on synthetic event streams with known durations
// (ns_per_tick = 1, so a timestamp is a nanosecond): exact calls, self,
// inclusive, edges, tree, lines and samples.

#include "support/sample_events.hpp"

#include <pycroscope/model/profile_builder.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace profile_builder_test {
namespace {

using namespace pycroscope;
using model::Profile;

constexpr SourceLocation main_fn{"main", "main", "app.py", 1, LocationKind::python_function};
constexpr SourceLocation fact{"fact", "fact", "app.py", 10, LocationKind::python_function};
constexpr SourceLocation even{"even", "even", "app.py", 20, LocationKind::python_function};
constexpr SourceLocation odd{"odd", "odd", "app.py", 30, LocationKind::python_function};
constexpr SourceLocation gen{"gen", "gen", "app.py", 40, LocationKind::python_function};
constexpr SourceLocation sleep_fn{"sleep", "time.sleep", "", 0, LocationKind::c_function};
constexpr SourceLocation zone{"load", "load", "host.cpp", 7, LocationKind::native_zone};
constexpr SourceLocation worker{"work", "work", "app.py", 50, LocationKind::python_function};

class Stream {
public:
    Stream& call(std::uint64_t t, const SourceLocation& l, EventKind kind = EventKind::py_call) {
        events.push_back(Event{t, location_id(&l), 0, 0, kind, 0, 0});
        return *this;
    }
    Stream& ret(std::uint64_t t, const SourceLocation& l, EventKind kind = EventKind::py_return) {
        events.push_back(Event{t, location_id(&l), 0, 0, kind, 0, 0});
        return *this;
    }
    Stream& line(std::uint64_t t, const SourceLocation& l, std::uint32_t line) {
        events.push_back(Event{t, location_id(&l), line, 0, EventKind::py_line, 0, 0});
        return *this;
    }
    std::vector<Event> events;
};

SessionSummary summary_at(std::int64_t duration) {
    SessionSummary s;
    s.info.calibration.ns_per_tick = 1.0;
    s.duration_ns = duration;
    return s;
}

ThreadInfo thread(std::uint32_t index, std::uint64_t tid, const char* name) {
    ThreadInfo t;
    t.index = index;
    t.os_tid = tid;
    t.name = name;
    return t;
}

struct Built {
    std::shared_ptr<model::ProfileBuilder> builder = std::make_shared<model::ProfileBuilder>();
    const Profile& run(const std::vector<std::pair<ThreadInfo, std::vector<Event>>>& streams, std::int64_t wall) {
        const SessionSummary s = summary_at(wall);
        builder->open(s.info);
        for (const auto& stream : streams) {
            std::vector<Event> copy = stream.second;
            builder->process(stream.first, copy.data(), copy.size());
        }
        builder->close(s);
        return builder->profile();
    }
};

const model::Function& fn(const Profile& p, const char* name) {
    const std::uint32_t i = p.find(name);
    EXPECT_NE(i, model::no_index) << name;
    return p.functions.at(i);
}

const model::Edge& edge(const Profile& p, const char* caller, const char* callee) {
    const model::Edge* e = p.edge(p.find(caller), p.find(callee));
    EXPECT_NE(e, nullptr) << caller << " -> " << callee;
    static const model::Edge none{};
    return e != nullptr ? *e : none;
}

TEST(ProfileBuilder, DirectRecursionCountsInclusiveTimeOnceAndFoldsTheTree) {
    // main 0..100 -> fact 10..90 -> fact 20..80 -> fact 30..70
    Stream s;
    s.call(0, main_fn).call(10, fact).call(20, fact).call(30, fact).ret(70, fact).ret(80, fact).ret(90, fact).ret(100,
                                                                                                               main_fn);
    Built b;
    const Profile& p = b.run({{thread(1, 100, "main"), s.events}}, 120);
    EXPECT_EQ(p.unit, model::Unit::nanoseconds);
    EXPECT_EQ(p.wall_ns, 120u);
    EXPECT_EQ(p.total, 100u);
    EXPECT_EQ(p.max_depth, 4u);
    const auto& f = fn(p, "fact");
    EXPECT_EQ(f.calls, 3u);
    EXPECT_EQ(f.inclusive, 80u); // the outermost activation only
    EXPECT_EQ(f.self, 80u);      // 20 + 20 + 40
    const auto& m = fn(p, "main");
    EXPECT_EQ(m.calls, 1u);
    EXPECT_EQ(m.inclusive, 100u);
    EXPECT_EQ(m.self, 20u);
    EXPECT_EQ(edge(p, "main", "fact").calls, 1u);
    EXPECT_EQ(edge(p, "main", "fact").inclusive, 80u);
    EXPECT_EQ(edge(p, "main", "fact").self, 20u);
    EXPECT_EQ(edge(p, "fact", "fact").calls, 2u);
    EXPECT_EQ(edge(p, "fact", "fact").inclusive, 60u);
    EXPECT_EQ(edge(p, "fact", "fact").self, 60u);
    // root, main, fact: the recursion re-enters fact's node.
    ASSERT_EQ(p.tree.size(), 3u);
    EXPECT_EQ(p.tree[2].function, p.find("fact"));
    EXPECT_EQ(p.tree[2].parent, 1u);
    EXPECT_EQ(p.tree[2].calls, 3u);
    EXPECT_EQ(p.tree[2].inclusive, 80u);
    EXPECT_EQ(p.tree[2].self, 80u);
    EXPECT_EQ(p.tree[0].inclusive, 100u);
}

TEST(ProfileBuilder, MutualRecursionKeepsEachPairsOutermostTime) {
    // main 0..100 -> even 10..90 -> odd 20..80 -> even 30..70 -> odd 40..60
    Stream s;
    s.call(0, main_fn).call(10, even).call(20, odd).call(30, even).call(40, odd);
    s.ret(60, odd).ret(70, even).ret(80, odd).ret(90, even).ret(100, main_fn);
    Built b;
    const Profile& p = b.run({{thread(1, 100, "main"), s.events}}, 100);
    EXPECT_EQ(fn(p, "even").calls, 2u);
    EXPECT_EQ(fn(p, "even").inclusive, 80u);
    EXPECT_EQ(fn(p, "even").self, 40u); // 10+10 (outer) + 10+10 (inner)
    EXPECT_EQ(fn(p, "odd").calls, 2u);
    EXPECT_EQ(fn(p, "odd").inclusive, 60u);
    EXPECT_EQ(fn(p, "odd").self, 40u); // 10+10 + 20
    EXPECT_EQ(edge(p, "even", "odd").calls, 2u);
    EXPECT_EQ(edge(p, "even", "odd").inclusive, 60u);
    EXPECT_EQ(edge(p, "odd", "even").calls, 1u);
    EXPECT_EQ(edge(p, "odd", "even").inclusive, 40u);
    EXPECT_EQ(edge(p, "odd", "even").self, 20u);
    ASSERT_EQ(p.tree.size(), 4u); // root, main, even, odd
}

TEST(ProfileBuilder, GeneratorResumesAreCountedApartFromCalls) {
    // main 0..100; gen called 10..20, resumed 30..45 and 60..70
    Stream s;
    s.call(0, main_fn).call(10, gen).ret(20, gen).call(30, gen, EventKind::py_resume).ret(45, gen);
    s.call(60, gen, EventKind::py_resume).ret(70, gen).ret(100, main_fn);
    Built b;
    const Profile& p = b.run({{thread(1, 100, "main"), s.events}}, 100);
    EXPECT_EQ(fn(p, "gen").calls, 1u);
    EXPECT_EQ(fn(p, "gen").resumes, 2u);
    EXPECT_EQ(fn(p, "gen").inclusive, 35u);
    EXPECT_EQ(fn(p, "gen").self, 35u);
    EXPECT_EQ(edge(p, "main", "gen").calls, 1u);
    EXPECT_EQ(edge(p, "main", "gen").inclusive, 35u);
    EXPECT_EQ(fn(p, "main").self, 65u);
}

TEST(ProfileBuilder, CFunctionsAndZonesAreFunctionsOfTheirOwnKind) {
    // zone 0..100 -> main 10..90 -> sleep 20..80
    Stream s;
    s.call(0, zone, EventKind::zone_begin).call(10, main_fn).call(20, sleep_fn, EventKind::c_call);
    s.ret(80, sleep_fn, EventKind::c_return).ret(90, main_fn).ret(100, zone, EventKind::zone_end);
    Built b;
    const Profile& p = b.run({{thread(1, 100, "main"), s.events}}, 100);
    EXPECT_EQ(fn(p, "sleep").kind, LocationKind::c_function);
    EXPECT_EQ(fn(p, "sleep").self, 60u);
    EXPECT_EQ(fn(p, "load").kind, LocationKind::native_zone);
    EXPECT_EQ(fn(p, "load").self, 20u);
    EXPECT_EQ(fn(p, "load").inclusive, 100u);
    EXPECT_EQ(edge(p, "main", "sleep").inclusive, 60u);
    EXPECT_EQ(edge(p, "load", "main").inclusive, 80u);
}

TEST(ProfileBuilder, ThreadsAreSplitPerFunctionAndSummedInTheTotal) {
    Stream a, b2;
    a.call(0, main_fn).call(10, worker).ret(40, worker).ret(50, main_fn);
    b2.call(5, worker).ret(75, worker);
    Built b;
    const Profile& p = b.run({{thread(1, 100, "main"), a.events}, {thread(2, 200, "pool"), b2.events}}, 100);
    ASSERT_EQ(p.threads.size(), 2u);
    EXPECT_EQ(p.threads[0].total, 50u);
    EXPECT_EQ(p.threads[1].total, 70u);
    EXPECT_EQ(p.threads[1].name, "pool");
    EXPECT_EQ(p.total, 120u);
    const auto& w = fn(p, "work");
    EXPECT_EQ(w.calls, 2u);
    EXPECT_EQ(w.inclusive, 100u);
    ASSERT_EQ(w.threads.size(), 2u);
    EXPECT_EQ(w.threads[0], (model::ThreadShare{0, 1, 30, 30}));
    EXPECT_EQ(w.threads[1], (model::ThreadShare{1, 1, 70, 70}));
    // The pool thread's call has no caller: one edge only.
    EXPECT_EQ(edge(p, "main", "work").calls, 1u);
    EXPECT_EQ(p.edges.size(), 1u);
}

TEST(ProfileBuilder, SpansOpenAtStopCloseAtTheThreadsLastEventAndAreFlagged) {
    Stream s;
    s.call(0, main_fn).call(10, worker).line(25, worker, 51).line(40, worker, 52);
    Built b;
    const Profile& p = b.run({{thread(1, 100, "main"), s.events}}, 1000);
    EXPECT_EQ(p.unclosed_spans, 2u);
    EXPECT_EQ(fn(p, "work").unclosed, 1u);
    EXPECT_EQ(fn(p, "work").inclusive, 30u);
    EXPECT_EQ(fn(p, "main").inclusive, 40u);
    EXPECT_EQ(p.total, 40u);
    ASSERT_EQ(p.lines.size(), 2u);
    EXPECT_EQ(p.lines[0].line, 51u);
    EXPECT_EQ(p.lines[0].time, 15u);
    EXPECT_EQ(p.lines[1].line, 52u);
    EXPECT_EQ(p.lines[1].time, 0u); // the thread's last event
}

TEST(ProfileBuilder, LinesGetHitsAndTimeUpToTheNextLineOrReturn) {
    Stream s;
    s.call(0, worker).line(0, worker, 51).line(10, worker, 52).line(15, worker, 51).line(35, worker, 52).ret(50, worker);
    Built b;
    const Profile& p = b.run({{thread(1, 100, "main"), s.events}}, 50);
    ASSERT_EQ(p.lines.size(), 2u);
    EXPECT_EQ(p.lines[0].file, "app.py");
    EXPECT_EQ(p.lines[0].line, 51u);
    EXPECT_EQ(p.lines[0].hits, 2u);
    EXPECT_EQ(p.lines[0].time, 30u);
    EXPECT_EQ(p.lines[1].hits, 2u);
    EXPECT_EQ(p.lines[1].time, 20u);
    EXPECT_EQ(p.lines[1].function, p.find("work"));
}

TEST(ProfileBuilder, DeepRecursionIsOneTreeNodeAndLinearTime) {
    constexpr std::uint64_t depth = 50000;
    Stream s;
    for (std::uint64_t i = 0; i < depth; ++i) {
        s.call(i, fact);
    }
    for (std::uint64_t i = 0; i < depth; ++i) {
        s.ret(depth + i, fact);
    }
    Built b;
    const Profile& p = b.run({{thread(1, 100, "main"), s.events}}, 0);
    EXPECT_EQ(p.tree.size(), 2u);
    EXPECT_EQ(p.max_depth, depth);
    EXPECT_EQ(fn(p, "fact").calls, depth);
    EXPECT_EQ(fn(p, "fact").inclusive, 2 * depth - 1);
    EXPECT_EQ(fn(p, "fact").self, 2 * depth - 1);
    EXPECT_EQ(edge(p, "fact", "fact").calls, depth - 1);
    EXPECT_EQ(edge(p, "fact", "fact").inclusive, 2 * depth - 3);
}

TEST(ProfileBuilder, SamplesFeedFunctionsEdgesTreeAndLinesWeightedBySamples) {
    using sample_test::Frame;
    std::vector<Event> events;
    // 3 samples main>work, 1 sample main>work>work, 2 samples main (line 2)
    for (int i = 0; i < 3; ++i) {
        sample_test::append_sample(events, 10 + i, 100, nullptr, sample_flags::running,
                                   {Frame{&main_fn, 3}, Frame{&worker, 51}});
    }
    sample_test::append_sample(events, 20, 100, nullptr, sample_flags::running,
                               {Frame{&main_fn, 3}, Frame{&worker, 52}, Frame{&worker, 51}});
    for (int i = 0; i < 2; ++i) {
        sample_test::append_sample(events, 30 + i, 100, nullptr, 0, {Frame{&main_fn, 2}});
    }
    Built b;
    const Profile& p = b.run({{thread(1, 1, "sampler"), events}}, 60);
    EXPECT_EQ(p.unit, model::Unit::samples);
    EXPECT_EQ(p.total, 6u);
    EXPECT_EQ(fn(p, "main").inclusive, 6u);
    EXPECT_EQ(fn(p, "main").self, 2u);
    EXPECT_EQ(fn(p, "work").inclusive, 4u);
    EXPECT_EQ(fn(p, "work").self, 4u);
    EXPECT_EQ(fn(p, "work").calls, 0u);
    EXPECT_EQ(edge(p, "main", "work").inclusive, 4u);
    EXPECT_EQ(edge(p, "main", "work").self, 3u);
    EXPECT_EQ(edge(p, "work", "work").inclusive, 1u);
    ASSERT_EQ(p.tree.size(), 3u);
    EXPECT_EQ(p.tree[2].inclusive, 4u);
    EXPECT_EQ(p.tree[2].self, 4u);
    ASSERT_EQ(p.threads.size(), 1u);
    EXPECT_EQ(p.threads[0].os_tid, 100u);
    EXPECT_EQ(p.threads[0].total, 6u);
    // main:2 (2 self), main:3 (4 total), work:51 (4 self), work:52 (1 total)
    ASSERT_EQ(p.lines.size(), 4u);
    EXPECT_EQ(p.lines[0].line, 2u);
    EXPECT_EQ(p.lines[0].time, 2u);
    EXPECT_EQ(p.lines[1].line, 3u);
    EXPECT_EQ(p.lines[1].total, 4u);
    EXPECT_EQ(p.lines[2].line, 51u);
    EXPECT_EQ(p.lines[2].time, 4u);
    EXPECT_EQ(p.lines[3].line, 52u);
    EXPECT_EQ(p.lines[3].time, 0u);
    EXPECT_EQ(p.lines[3].total, 1u);
}

TEST(ProfileBuilder, SamplesMakeTheProfileEvenWhenSpansWereRecordedToo) {
    // Sampling mode still records GC and import spans on the interpreter's thread.
    constexpr SourceLocation gc{"gc", "gc", "", 2, LocationKind::gc_collection};
    Stream spans;
    spans.call(0, gc, EventKind::zone_begin).ret(5, gc, EventKind::zone_end);
    std::vector<Event> samples;
    sample_test::append_sample(samples, 10, 100, nullptr, 0, {sample_test::Frame{&main_fn, 1}});
    Built b;
    const Profile& p = b.run({{thread(1, 100, "main"), spans.events}, {thread(2, 1, "sampler"), samples}}, 20);
    EXPECT_EQ(p.unit, model::Unit::samples);
    EXPECT_EQ(p.total, 1u);
    EXPECT_EQ(fn(p, "main").self, 1u);
    EXPECT_EQ(p.find("gc"), model::no_index);
}

TEST(ProfileBuilder, ReopeningForgetsThePreviousRun) {
    Stream s;
    s.call(0, main_fn).ret(10, main_fn);
    Built b;
    b.run({{thread(1, 100, "main"), s.events}}, 10);
    const Profile& p = b.run({{thread(1, 100, "main"), s.events}}, 10);
    EXPECT_EQ(fn(p, "main").calls, 1u);
    EXPECT_EQ(p.total, 10u);
}

} // namespace
} // namespace profile_builder_test
