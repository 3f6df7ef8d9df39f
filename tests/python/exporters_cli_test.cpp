// End to end: `pycroscope profile --sinks ...` on a small script writes every
// export format, and each file is read by its real tool (protoc, gzip,
// callgrind_annotate, python3-jsonschema): the same checks as the synthetic
// tests in tests/sinks/, on what a real run recorded.

#include "sinks/export_tools.hpp"
#include "support/json.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

namespace exporters_cli_test {
namespace {

#if defined(PYCROSCOPE_CLI_PATH) && (defined(__unix__) || defined(__APPLE__))

namespace fs = std::filesystem;
using export_test::quote;
using export_test::run;

const char* const script_source = R"PY(
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

def build(n):
    return [str(i) * 3 for i in range(n)]

keep = build(2000)
print(fib(15), len(keep))
)PY";

class ExportersCli : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("pycroscope_exporters_cli_" + std::to_string(sink_test::current_pid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
        std::ofstream(dir_ / "work.py") << script_source;
    }
    void TearDown() override {
        std::error_code ignored;
        fs::remove_all(dir_, ignored);
    }

    export_test::CommandResult profile(const std::string& options) {
        return run("cd " + quote(dir_.string()) + " && " + quote(PYCROSCOPE_CLI_PATH) +
                   " profile --output-dir out --top 0 " + options + " work.py 2>&1");
    }
    std::string out(const std::string& name) const { return (dir_ / "out" / name).string(); }

    fs::path dir_;
};

TEST_F(ExportersCli, EveryExportOfATracedRunIsReadByItsTool) {
    EXPORT_TEST_REQUIRE_PROTOC();
    EXPORT_TEST_REQUIRE_COMMAND("gzip");
    EXPORT_TEST_REQUIRE_COMMAND("callgrind_annotate");
    // Compensated (the default): callgrind's times come from the Profile, as
    // session.json's do, and are compared with them below.
    const auto result = profile("--sinks json,perfetto,speedscope,pprof,callgrind");
    ASSERT_EQ(result.status, 0) << result.output;
    EXPECT_NE(result.output.find("610 2000"), std::string::npos) << result.output;
    EXPECT_FALSE(fs::exists(out("trace.json")));

    // Perfetto: decodes against Perfetto's field numbers, fib interned with its source.
    const auto trace = export_test::protoc_decode("perfetto.protos.Trace",
                                                  export_test::tests_dir() / "perfetto_trace.proto",
                                                  out("trace.perfetto-trace"));
    std::map<std::string, int> balance; // per sequence and track (omitted: the sequence's default)
    bool fib_source = false;
    for (const auto* packet : trace.all("packet")) {
        if (packet->has("interned_data")) {
            for (const auto* source : packet->at("interned_data").all("source_locations")) {
                fib_source = fib_source || (source->s("function_name") == "fib" &&
                                            source->s("file_name").find("work.py") != std::string::npos);
            }
        }
        if (packet->has("track_event")) {
            const auto& e = packet->at("track_event");
            const std::string track = packet->s("trusted_packet_sequence_id") + "/" +
                                      (e.has("track_uuid") ? e.s("track_uuid") : std::string("default"));
            balance[track] += e.s("type") == "TYPE_SLICE_BEGIN" ? 1 : e.s("type") == "TYPE_SLICE_END" ? -1 : 0;
        }
    }
    EXPECT_TRUE(fib_source);
    for (const auto& track : balance) {
        EXPECT_EQ(track.second, 0) << "track " << track.first;
    }

    // speedscope: schema-valid, balanced; the main thread's profile has fib.
    if (export_test::have_python_module("jsonschema")) {
        const auto checked = run("/usr/bin/python3 " + quote((export_test::tests_dir() / "check_speedscope.py").string()) +
                                 " " + quote((export_test::data_dir() / "speedscope-file-format-schema.json").string()) +
                                 " " + quote(out("profile.speedscope.json")));
        EXPECT_EQ(checked.status, 0) << checked.output;
        EXPECT_NE(checked.output.find("\"type\": \"evented\""), std::string::npos) << checked.output;
        EXPECT_NE(checked.output.find("\"allocated bytes\""), std::string::npos) << checked.output;
    }

    // pprof: gzip and protoc read both profiles.
    for (const char* name : {"profile.pb.gz", "alloc.pb.gz"}) {
        const std::string raw = (dir_ / (std::string(name) + ".raw")).string();
        ASSERT_EQ(run("gzip -dc " + quote(out(name)) + " > " + quote(raw)).status, 0) << name;
        const auto profile = export_test::protoc_decode(
            "perftools.profiles.Profile", export_test::data_dir() / "profile.proto", raw);
        EXPECT_FALSE(profile.all("sample").empty()) << name;
        bool fib = false;
        for (const auto* s : profile.all("string_table")) {
            fib = fib || s->value == "fib" || s->value == "build.<locals>.<listcomp>" || s->value == "<listcomp>";
        }
        EXPECT_TRUE(fib) << name;
    }

    // callgrind: fib's self time in callgrind_annotate equals session.json's.
    const json::Value session = json::parse_file(out("session.json"));
    std::uint64_t fib_self = 0;
    std::string fib_file;
    for (const auto& zone : session.at("zones").items()) {
        if (zone.at("name").as_string() == "fib") {
            fib_self = zone.at("self_ns").as_uint();
            fib_file = zone.at("file").as_string();
        }
    }
    ASSERT_GT(fib_self, 0u);
    const auto annotated = run("callgrind_annotate --threshold=100 --auto=no " + quote(out("callgrind.out")));
    ASSERT_EQ(annotated.status, 0) << annotated.output;
    bool found = false;
    for (const auto& line : sink_test::lines_of(annotated.output)) {
        if (line.size() > fib_file.size() + 4 && line.compare(line.size() - fib_file.size() - 4, std::string::npos,
                                                              fib_file + ":fib") == 0) {
            const std::size_t begin = line.find_first_not_of(' ');
            std::string number = line.substr(begin, line.find(' ', begin) - begin);
            number.erase(std::remove(number.begin(), number.end(), ','), number.end());
            EXPECT_EQ(std::stoull(number), fib_self) << line;
            found = true;
        }
    }
    EXPECT_TRUE(found) << annotated.output;
}

TEST_F(ExportersCli, ASampledRunExportsSampleCounts) {
    EXPORT_TEST_REQUIRE_PROTOC();
    EXPORT_TEST_REQUIRE_COMMAND("gzip");
    // Long enough for a few dozen samples.
    std::ofstream(dir_ / "work.py", std::ios::app)
        << "import time\nstart = time.time()\nwhile time.time() - start < 0.6:\n    fib(12)\n";
    const auto result = profile("--sample --rate 200 --no-memory --sinks pprof,perfetto");
    ASSERT_EQ(result.status, 0) << result.output;
    const std::string raw = (dir_ / "profile.raw").string();
    ASSERT_EQ(run("gzip -dc " + quote(out("profile.pb.gz")) + " > " + quote(raw)).status, 0);
    const auto profile = export_test::protoc_decode("perftools.profiles.Profile",
                                                    export_test::data_dir() / "profile.proto", raw);
    std::vector<std::string> strings;
    for (const auto* s : profile.all("string_table")) {
        strings.push_back(s->value);
    }
    ASSERT_FALSE(strings.empty());
    EXPECT_EQ(strings[0], "");
    const auto types = profile.all("sample_type");
    ASSERT_EQ(types.size(), 2u);
    EXPECT_EQ(strings.at(types[0]->u("type")), "samples");
    EXPECT_EQ(strings.at(types[1]->u("unit")), "nanoseconds");
    EXPECT_EQ(profile.i("period"), 5000000);
    EXPECT_FALSE(fs::exists(out("alloc.pb.gz")));
    EXPECT_TRUE(fs::exists(out("trace.perfetto-trace")));
}

TEST_F(ExportersCli, AnUnknownSinkNamesTheAcceptedOnes) {
    const auto result = profile("--sinks json,flamegraph");
    EXPECT_NE(result.status, 0);
    EXPECT_NE(result.output.find("perfetto, speedscope, pprof, callgrind"), std::string::npos) << result.output;
}

#endif

} // namespace
} // namespace exporters_cli_test
