// SpeedscopeSink: the file validated against speedscope's own JSON schema
// (tests/sinks/data/speedscope-file-format-schema.json, generated from
// speedscope's src/lib/file-format-spec.ts) by python3-jsonschema, checked
// balanced and sorted by tests/sinks/check_speedscope.py, and read back here
// to compare the evented profiles with the recorded spans.

#include "sinks/export_tools.hpp"
#include "sinks/sink_test_helpers.hpp"
#include "support/json.hpp"

#include <pycroscope/sinks/speedscope_sink.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace speedscope_sink_test {
namespace {

using pycroscope::sinks::SpeedscopeSink;
using sink_test::TempDir;

#define REQUIRE_JSONSCHEMA()                                                                                       \
    do {                                                                                                           \
        if (!export_test::have_python_module("jsonschema")) {                                                      \
            GTEST_SKIP() << "/usr/bin/python3 with jsonschema is missing (apt-get install python3-jsonschema)";    \
        }                                                                                                          \
    } while (0)

export_test::CommandResult check(const std::string& path) {
    return export_test::run("/usr/bin/python3 " + export_test::quote((export_test::tests_dir() / "check_speedscope.py").string()) +
                            " " + export_test::quote((export_test::data_dir() / "speedscope-file-format-schema.json").string()) +
                            " " + export_test::quote(path));
}

struct Span {
    std::string name;
    std::uint64_t begin;
    std::uint64_t end;
    bool operator<(const Span& o) const { return std::tie(begin, end, name) < std::tie(o.begin, o.end, o.name); }
    bool operator==(const Span& o) const { return std::tie(begin, end, name) == std::tie(o.begin, o.end, o.name); }
};

std::ostream& operator<<(std::ostream& os, const Span& s) {
    return os << "{'" << s.name << "' " << s.begin << ".." << s.end << "}";
}

// The spans of an evented profile, rebuilt from its O/C events.
std::vector<Span> spans_of(const json::Value& doc, const json::Value& profile) {
    const auto& frames = doc.at("shared").at("frames");
    std::vector<Span> open, done;
    for (const auto& e : profile.at("events").items()) {
        const std::string name = frames[e.at("frame").as_uint()].at("name").as_string();
        if (e.at("type").as_string() == "O") {
            open.push_back(Span{name, e.at("at").as_uint(), 0});
        } else {
            Span s = open.back();
            open.pop_back();
            s.end = e.at("at").as_uint();
            done.push_back(s);
        }
    }
    std::sort(done.begin(), done.end());
    return done;
}

std::vector<Span> reference(sink_test::Synthetic& s, std::uint32_t thread) {
    std::vector<Span> out;
    for (const auto& span : sink_test::reference_spans(s.events(thread), export_test::rich_stop)) {
        out.push_back(Span{span.location->display_name(), span.begin, span.end});
    }
    std::sort(out.begin(), out.end());
    return out;
}

const json::Value& profile_named(const json::Value& doc, const std::string& name) {
    for (const auto& p : doc.at("profiles").items()) {
        if (p.at("name").as_string() == name) {
            return p;
        }
    }
    throw std::runtime_error("no profile named " + name);
}

TEST(SpeedscopeSink, FileValidatesAgainstSpeedscopesSchemaAndIsBalancedAndSorted) {
    REQUIRE_JSONSCHEMA();
    TempDir dir;
    auto s = export_test::rich_stream();
    SpeedscopeSink sink(dir.file("p.speedscope.json"));
    s.play(sink, export_test::rich_stop);
    const auto result = check(dir.file("p.speedscope.json"));
    ASSERT_EQ(result.status, 0) << result.output;
    const std::vector<std::string> expected{
        R"({"type": "evented", "name": "main", "unit": "nanoseconds", "events": 16})",
        R"({"type": "evented", "name": "worker", "unit": "nanoseconds", "events": 8})",
        R"({"type": "sampled", "name": "sampled-main", "unit": "none", "samples": 3, "weight": 3})",
        R"({"type": "sampled", "name": "allocated bytes", "unit": "bytes", "samples": 3, "weight": 1216})"};
    EXPECT_EQ(sink_test::lines_of(result.output), expected);
}

TEST(SpeedscopeSink, EventedProfilesHoldTheRecordedSpansInNanoseconds) {
    TempDir dir;
    auto s = export_test::rich_stream();
    SpeedscopeSink sink(dir.file("p.json"));
    s.play(sink, export_test::rich_stop);
    const json::Value doc = json::parse_file(dir.file("p.json"));
    EXPECT_EQ(doc.at("$schema").as_string(), "https://www.speedscope.app/file-format-schema.json");
    EXPECT_EQ(doc.at("name").as_string(), "rich \"stream\"");
    EXPECT_EQ(spans_of(doc, profile_named(doc, "main")), reference(s, 1));
    EXPECT_EQ(spans_of(doc, profile_named(doc, "worker")), reference(s, 2));
    EXPECT_EQ(profile_named(doc, "main").at("endValue").as_uint(), export_test::rich_stop);
    // Frames are shared: fib is one frame with its file and line.
    int fib_frames = 0;
    for (const auto& f : doc.at("shared").at("frames").items()) {
        if (f.at("name").as_string() == "fib") {
            ++fib_frames;
            EXPECT_EQ(f.at("file").as_string(), "/src/mod.py");
            EXPECT_EQ(f.at("line").as_uint(), 3u);
        }
    }
    EXPECT_EQ(fib_frames, 1);
}

TEST(SpeedscopeSink, SampledAndAllocationProfilesNameTheirStacks) {
    TempDir dir;
    auto s = export_test::rich_stream();
    SpeedscopeSink sink(dir.file("p.json"));
    s.play(sink, export_test::rich_stop);
    const json::Value doc = json::parse_file(dir.file("p.json"));
    const auto& frames = doc.at("shared").at("frames");
    auto names = [&](const json::Value& stack) {
        std::string out;
        for (const auto& f : stack.items()) {
            out += (out.empty() ? "" : ";") + frames[f.as_uint()].at("name").as_string();
        }
        return out;
    };
    const auto& sampled = profile_named(doc, "sampled-main");
    ASSERT_EQ(sampled.at("samples").size(), 3u);
    EXPECT_EQ(names(sampled.at("samples")[0]), "fib;helper");
    EXPECT_EQ(names(sampled.at("samples")[2]), "fib");
    const auto& memory = profile_named(doc, "allocated bytes");
    std::map<std::string, std::uint64_t> bytes;
    for (std::size_t i = 0; i < memory.at("samples").size(); ++i) {
        bytes[names(memory.at("samples")[i])] += memory.at("weights")[i].as_uint();
    }
    EXPECT_EQ(bytes, (std::map<std::string, std::uint64_t>{{"main;main;fib;mod.py:5", 64},
                                                           {"main;main;fib;fib;mod.py:5", 128},
                                                           {"main;main;fib;helper;mod.py:11", 1024}}));
}

TEST(SpeedscopeSink, TheCheckerRejectsAnUnbalancedProfile) {
    REQUIRE_JSONSCHEMA();
    TempDir dir;
    sink_test::write_file(dir.file("bad.json"),
                          R"({"$schema":"https://www.speedscope.app/file-format-schema.json","shared":{"frames":)"
                          R"([{"name":"a"}]},"profiles":[{"type":"evented","name":"t","unit":"nanoseconds",)"
                          R"("startValue":0,"endValue":10,"events":[{"type":"O","frame":0,"at":1}]}]})");
    const auto result = check(dir.file("bad.json"));
    EXPECT_EQ(result.status, 1);
    EXPECT_NE(result.output.find("left open"), std::string::npos) << result.output;
    sink_test::write_file(dir.file("bad_schema.json"), R"({"$schema":"x","shared":{"frames":[]},"profiles":[]})");
    EXPECT_EQ(check(dir.file("bad_schema.json")).status, 1);
}

} // namespace
} // namespace speedscope_sink_test
