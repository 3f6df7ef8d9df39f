// The Profile's sections of session.json: written from a ProfileBuilder,
// read back by model::load_profile() equal field by field, and the ranking
// and hot path as the file holds them.

#include "sinks/sink_test_helpers.hpp"
#include "support/json.hpp"

#include <pycroscope/core/session.hpp>
#include <pycroscope/model/profile_loader.hpp>
#include <pycroscope/sinks/json_summary_sink.hpp>
#include <pycroscope/sinks/profile_sections.hpp>

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace profile_sections_test {
namespace {

using namespace pycroscope;

constexpr SourceLocation run_fn{"run", "run", "app.py", 1, LocationKind::python_function};
constexpr SourceLocation fib{"fib", "fib", "app.py", 10, LocationKind::python_function};
constexpr SourceLocation sleep_fn{"sleep", "time.sleep", "", 0, LocationKind::c_function};
constexpr SourceLocation gc_span{"gc", "gc", "", 2, LocationKind::gc_collection};
constexpr SourceLocation dyn{"job \"x\"\n", "job", "host.cpp", 3, LocationKind::dynamic_zone};

Event ev(std::uint64_t t, const SourceLocation& l, EventKind kind, std::uint64_t payload = 0) {
    return Event{t, location_id(&l), payload, 0, kind, 0, 0};
}

// Two threads: recursion, a C call, a GC span, lines, a dynamic zone and a span open at stop.
model::Profile build(model::ProfileBuilder& builder) {
    SessionSummary s;
    s.info.calibration.ns_per_tick = 1.0;
    s.duration_ns = 1000;
    builder.open(s.info);
    std::vector<Event> main{ev(0, run_fn, EventKind::py_call),     ev(0, run_fn, EventKind::py_line, 2),
                            ev(10, fib, EventKind::py_call),       ev(20, fib, EventKind::py_call),
                            ev(30, fib, EventKind::py_return),     ev(40, fib, EventKind::py_return),
                            ev(40, run_fn, EventKind::py_line, 3), ev(50, sleep_fn, EventKind::c_call),
                            ev(450, sleep_fn, EventKind::c_return), ev(460, gc_span, EventKind::zone_begin),
                            ev(470, gc_span, EventKind::zone_end), ev(500, run_fn, EventKind::py_return)};
    std::vector<Event> worker{ev(5, dyn, EventKind::zone_begin), ev(15, fib, EventKind::py_call),
                              ev(95, fib, EventKind::py_return)};
    ThreadInfo t1;
    t1.index = 1;
    t1.os_tid = 11;
    t1.name = "main";
    ThreadInfo t2;
    t2.index = 2;
    t2.os_tid = 22;
    t2.name = "worker \x1b[31m";
    builder.process(t1, main.data(), main.size());
    builder.process(t2, worker.data(), worker.size());
    builder.close(s);
    return builder.profile();
}

std::string profile_document(const model::Profile& p, sinks::ProfileSectionOptions options = {}) {
    std::string out;
    sinks::JsonWriter json(out);
    json.begin_object().key("profile");
    sinks::write_profile(json, p, options);
    json.end_object();
    return out;
}

void expect_equal(const model::Profile& a, const model::Profile& b) {
    EXPECT_EQ(a.unit, b.unit);
    EXPECT_EQ(a.wall_ns, b.wall_ns);
    EXPECT_EQ(a.total, b.total);
    EXPECT_EQ(a.unclosed_spans, b.unclosed_spans);
    EXPECT_EQ(a.unmatched_ends, b.unmatched_ends);
    EXPECT_EQ(a.max_depth, b.max_depth);
    EXPECT_EQ(a.tree_pruned, b.tree_pruned);
    EXPECT_EQ(a.threads, b.threads);
    ASSERT_EQ(a.functions.size(), b.functions.size());
    for (std::size_t i = 0; i < a.functions.size(); ++i) {
        EXPECT_EQ(a.functions[i], b.functions[i]) << a.functions[i].name;
    }
    EXPECT_EQ(a.edges, b.edges);
    EXPECT_EQ(a.tree, b.tree);
    EXPECT_EQ(a.lines, b.lines);
}

TEST(ProfileSections, ProfileRoundTripsThroughJsonFieldByField) {
    model::ProfileBuilder builder;
    const model::Profile p = build(builder);
    ASSERT_EQ(p.functions.size(), 5u);
    EXPECT_EQ(p.unclosed_spans, 1u); // the dynamic zone
    EXPECT_EQ(p.functions[p.find("job \"x\"\n")].kind, LocationKind::dynamic_zone);
    const model::Profile loaded = model::profile_from_json(profile_document(p));
    expect_equal(p, loaded);
    EXPECT_EQ(loaded.functions[0].location, nullptr);
}

TEST(ProfileSections, TreeBeyondTheCapKeepsTheHeaviestNodesAndTheirAncestors) {
    model::ProfileBuilder builder;
    const model::Profile p = build(builder);
    ASSERT_EQ(p.tree.size(), 7u); // root, run, run>fib, run>sleep, run>gc, job, job>fib
    sinks::ProfileSectionOptions options;
    options.max_tree_nodes = 2;
    const model::Profile loaded = model::profile_from_json(profile_document(p, options));
    ASSERT_EQ(loaded.tree.size(), 3u);
    EXPECT_EQ(loaded.tree_pruned, p.tree.size() - 3);
    EXPECT_EQ(loaded.functions[loaded.tree[1].function].name, "run");
    EXPECT_EQ(loaded.functions[loaded.tree[2].function].name, "sleep");
    EXPECT_EQ(loaded.tree[2].parent, 1u);
}

TEST(ProfileSections, LoaderRejectsBadInputWithAMessage) {
    model::ProfileBuilder builder;
    const std::string good = profile_document(build(builder));
    const auto message = [](const std::string& text) {
        try {
            model::profile_from_json(text);
        } catch (const model::ProfileLoadError& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    EXPECT_NE(message("{}").find("no \"profile\" section"), std::string::npos);
    EXPECT_NE(message("{\"profile\": ").find("profile:"), std::string::npos);
    std::string bad_edge = good;
    const std::size_t edges = bad_edge.find("\"edges\":[[");
    ASSERT_NE(edges, std::string::npos);
    bad_edge.replace(edges + 10, 1, "9");
    EXPECT_NE(message(bad_edge).find("caller index 9 out of range"), std::string::npos) << message(bad_edge);
    std::string bad_schema = good;
    bad_schema.replace(bad_schema.find("\"schema\":1"), 10, "\"schema\":7");
    EXPECT_NE(message(bad_schema).find("schema 7 is not supported"), std::string::npos);
    EXPECT_THROW(model::load_profile("/nonexistent/session.json"), model::ProfileLoadError);
}

TEST(ProfileSections, SessionJsonHoldsProfileRankingAndHotPathAndLoadsBack) {
    sink_test::TempDir dir;
    Session<NativeZones> session;
    auto builder = std::make_shared<model::ProfileBuilder>();
    session.core().add_processor(builder);
    auto json = session.add_sink<sinks::JsonSummarySink>(dir.file("session.json"));
    sinks::add_profile_sections(*json, *builder);
    session.start();
    {
        PYCRO_SCOPE_N("outer");
        for (int i = 0; i < 3; ++i) {
            PYCRO_SCOPE_N("inner");
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }
    session.stop();
    const model::Profile& live = builder->profile();
    const model::Profile loaded = model::load_profile(dir.file("session.json"));
    expect_equal(live, loaded);
    const std::uint32_t inner = loaded.find("inner");
    ASSERT_NE(inner, model::no_index);
    EXPECT_EQ(loaded.functions[inner].calls, 3u);
    const model::Edge* e = loaded.edge(loaded.find("outer"), inner);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->calls, 3u);
    EXPECT_GE(e->inclusive, 15000000u);

    const json::Value doc = json::parse_file(dir.file("session.json"));
    const json::Value& top = doc.at("ranking").at("functions")[0];
    EXPECT_EQ(top.at("name").as_string(), "inner");
    EXPECT_EQ(top.at("severity").as_string(), "critical");
    EXPECT_EQ(top.at("callers")[0].at("name").as_string(), "outer");
    EXPECT_EQ(top.at("callers")[0].at("calls").as_uint(), 3u);
    const json::Value& path = doc.at("hot_path");
    ASSERT_EQ(path.size(), 2u);
    EXPECT_EQ(path[0].at("name").as_string(), "outer");
    EXPECT_EQ(path[1].at("name").as_string(), "inner");
    EXPECT_TRUE(doc.contains("zones")); // the built-in sections stay
}

} // namespace
} // namespace profile_sections_test
