// PprofSink: the file unpacked by the real gzip and decoded by the real
// protoc against google/pprof's profile.proto (tests/sinks/data/), then
// checked: string table starting with "", every id resolved, sample types as
// documented, and values equal to what the events say (self time per stack,
// calls, samples, allocated and in-use bytes).

#include "sinks/export_tools.hpp"
#include "sinks/sink_test_helpers.hpp"

#include <pycroscope/sinks/pprof_sink.hpp>

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace pprof_sink_test {
namespace {

using export_test::TextNode;
using pycroscope::sinks::PprofProfile;
using pycroscope::sinks::PprofSink;
using sink_test::TempDir;

struct Line {
    std::string function;
    std::string file;
    std::int64_t line;
};

// A decoded profile with stacks spelled out ("outer;...;leaf").
struct Decoded {
    std::vector<std::string> strings;
    std::vector<std::pair<std::string, std::string>> sample_types;
    std::string default_type;
    std::int64_t period = 0;
    std::map<std::uint64_t, Line> locations;
    struct Sample {
        std::string stack;
        std::vector<std::int64_t> values;
        std::string thread;
        std::vector<std::int64_t> lines; // leaf first
    };
    std::vector<Sample> samples;

    std::vector<std::int64_t> totals() const {
        std::vector<std::int64_t> sum(sample_types.size(), 0);
        for (const auto& s : samples) {
            for (std::size_t i = 0; i < s.values.size() && i < sum.size(); ++i) {
                sum[i] += s.values[i];
            }
        }
        return sum;
    }
    // stack -> values summed over samples (and threads).
    std::map<std::string, std::vector<std::int64_t>> by_stack() const {
        std::map<std::string, std::vector<std::int64_t>> out;
        for (const auto& s : samples) {
            auto& v = out[s.stack];
            v.resize(s.values.size(), 0);
            for (std::size_t i = 0; i < s.values.size(); ++i) {
                v[i] += s.values[i];
            }
        }
        return out;
    }
};

Decoded decode(const TempDir& dir, const std::string& path) {
    const std::string raw = dir.file("raw.pb");
    const auto unzip = export_test::run("gzip -dc " + export_test::quote(path) + " > " + export_test::quote(raw));
    if (unzip.status != 0) {
        throw std::runtime_error("gzip -dc failed on " + path);
    }
    const TextNode root =
        export_test::protoc_decode("perftools.profiles.Profile", export_test::data_dir() / "profile.proto", raw);
    Decoded d;
    for (const TextNode* s : root.all("string_table")) {
        d.strings.push_back(s->value);
    }
    auto str = [&](std::int64_t index) {
        if (index < 0 || static_cast<std::size_t>(index) >= d.strings.size()) {
            throw std::runtime_error("string index " + std::to_string(index) + " out of the table");
        }
        return d.strings[static_cast<std::size_t>(index)];
    };
    auto value_or_zero = [](const TextNode& n, const std::string& field) {
        return n.has(field) ? n.i(field) : std::int64_t{0}; // proto3 leaves zeros out
    };
    for (const TextNode* t : root.all("sample_type")) {
        d.sample_types.emplace_back(str(value_or_zero(*t, "type")), str(value_or_zero(*t, "unit")));
    }
    d.default_type = str(value_or_zero(root, "default_sample_type"));
    d.period = value_or_zero(root, "period");
    std::map<std::uint64_t, std::pair<std::string, std::string>> functions;
    for (const TextNode* f : root.all("function")) {
        functions[f->u("id")] = {str(value_or_zero(*f, "name")), str(value_or_zero(*f, "filename"))};
    }
    for (const TextNode* l : root.all("location")) {
        const TextNode& line = l->at("line");
        const auto& function = functions.at(line.u("function_id"));
        d.locations[l->u("id")] = Line{function.first, function.second, value_or_zero(line, "line")};
    }
    for (const TextNode* s : root.all("sample")) {
        Decoded::Sample sample;
        const auto ids = s->all("location_id");
        for (auto it = ids.rbegin(); it != ids.rend(); ++it) { // stored leaf first
            sample.stack += (sample.stack.empty() ? "" : ";") + d.locations.at(std::stoull((*it)->value)).function;
        }
        for (const TextNode* id : ids) {
            sample.lines.push_back(d.locations.at(std::stoull(id->value)).line);
        }
        for (const TextNode* v : s->all("value")) {
            sample.values.push_back(std::stoll(v->value));
        }
        for (const TextNode* label : s->all("label")) {
            if (str(label->i("key")) == "thread") {
                sample.thread = str(label->i("str"));
            }
        }
        d.samples.push_back(std::move(sample));
    }
    return d;
}

#define REQUIRE_TOOLS()                                                                                            \
    EXPORT_TEST_REQUIRE_PROTOC();                                                                                  \
    EXPORT_TEST_REQUIRE_COMMAND("gzip")

TEST(PprofSink, TracedCpuProfileHoldsSelfTimePerStackAndCalls) {
    REQUIRE_TOOLS();
    TempDir dir;
    auto s = export_test::rich_stream(false);
    PprofSink sink(dir.file("profile.pb.gz"));
    s.play(sink, export_test::rich_stop);
    ASSERT_EQ(export_test::run("gzip -t " + export_test::quote(dir.file("profile.pb.gz"))).status, 0);
    const Decoded d = decode(dir, dir.file("profile.pb.gz"));
    ASSERT_FALSE(d.strings.empty());
    EXPECT_EQ(d.strings.front(), "");
    EXPECT_EQ(d.sample_types, (std::vector<std::pair<std::string, std::string>>{{"calls", "count"},
                                                                                 {"wall", "nanoseconds"}}));
    EXPECT_EQ(d.default_type, "wall");

    // Self time per stack, from the reference reconstruction of each thread.
    std::map<std::string, std::int64_t> expected;
    std::int64_t total = 0;
    for (std::uint32_t thread : {1u, 2u}) {
        for (const auto& entry : sink_test::reference_self_ticks(
                 sink_test::reference_spans(s.events(thread), export_test::rich_stop))) {
            std::string stack;
            for (const auto* l : entry.first) {
                stack += (stack.empty() ? "" : ";") + std::string(l->display_name());
            }
            expected[stack] += static_cast<std::int64_t>(entry.second);
            total += static_cast<std::int64_t>(entry.second);
        }
    }
    std::map<std::string, std::int64_t> wall;
    for (const auto& entry : d.by_stack()) {
        if (entry.second[1] != 0) {
            wall[entry.first] = entry.second[1];
        }
    }
    for (auto it = expected.begin(); it != expected.end();) {
        it = it->second == 0 ? expected.erase(it) : std::next(it);
    }
    EXPECT_EQ(wall, expected);
    // Totals: every span's self time adds up to the threads' top-level spans.
    EXPECT_EQ(d.totals()[1], total);
    EXPECT_EQ(total, (400 - 100) + (150 - 105));
    // 7 calls on main (the synthetic fib is not one), 3 calls and a resume on worker.
    EXPECT_EQ(d.totals()[0], 11);
    EXPECT_EQ(d.by_stack().at("main;fib;fib;len")[0], 1);
    for (const auto& sample : d.samples) {
        EXPECT_TRUE(sample.thread == "main" || sample.thread == "worker") << sample.thread;
    }
    bool fib_line = false;
    for (const auto& entry : d.locations) {
        if (entry.second.function == "fib") {
            EXPECT_EQ(entry.second.file, "/src/mod.py");
            EXPECT_EQ(entry.second.line, 3);
            fib_line = true;
        }
    }
    EXPECT_TRUE(fib_line);
}

TEST(PprofSink, SampledCpuProfileCountsSamplesWithTheirLines) {
    REQUIRE_TOOLS();
    TempDir dir;
    auto s = export_test::rich_stream(true);
    PprofSink sink(dir.file("profile.pb.gz"));
    sink.set_sample_interval_ns(10000000);
    s.play(sink, export_test::rich_stop);
    const Decoded d = decode(dir, dir.file("profile.pb.gz"));
    EXPECT_EQ(d.sample_types, (std::vector<std::pair<std::string, std::string>>{{"samples", "count"},
                                                                                 {"wall", "nanoseconds"}}));
    EXPECT_EQ(d.period, 10000000);
    EXPECT_EQ(d.totals(), (std::vector<std::int64_t>{3, 30000000}));
    const auto stacks = d.by_stack();
    EXPECT_EQ(stacks.at("fib;helper"), (std::vector<std::int64_t>{2, 20000000}));
    EXPECT_EQ(stacks.at("fib"), (std::vector<std::int64_t>{1, 10000000}));
    std::vector<std::vector<std::int64_t>> lines;
    for (const auto& sample : d.samples) {
        lines.push_back(sample.lines);
        EXPECT_EQ(sample.thread, "sampled-main");
    }
    std::sort(lines.begin(), lines.end());
    EXPECT_EQ(lines, (std::vector<std::vector<std::int64_t>>{{5}, {10, 4}, {11, 4}}));
}

TEST(PprofSink, AllocationProfileHoldsAllocatedAndInUseBytesPerSite) {
    REQUIRE_TOOLS();
    TempDir dir;
    auto s = export_test::rich_stream(false);
    PprofSink sink(dir.file("alloc.pb.gz"), PprofProfile::allocations);
    s.play(sink, export_test::rich_stop);
    const Decoded d = decode(dir, dir.file("alloc.pb.gz"));
    EXPECT_EQ(d.sample_types,
              (std::vector<std::pair<std::string, std::string>>{
                  {"alloc_objects", "count"}, {"alloc_space", "bytes"}, {"inuse_objects", "count"},
                  {"inuse_space", "bytes"}}));
    // The leaf is the allocating line, named by its function.
    const std::map<std::string, std::vector<std::int64_t>> expected{
        {"main;fib;mod.fib", {1, 64, 0, 0}},            // freed
        {"main;fib;fib;mod.fib", {1, 128, 1, 128}},
        {"main;fib;helper;mod.helper", {2, 1024, 1, 1000}}}; // one born freed
    EXPECT_EQ(d.by_stack(), expected);
    EXPECT_EQ(d.totals(), (std::vector<std::int64_t>{4, 1216, 2, 1128}));
    for (const auto& sample : d.samples) {
        EXPECT_TRUE(sample.lines.front() == 5 || sample.lines.front() == 11);
    }
}

} // namespace
} // namespace pprof_sink_test
