// IoCollector: audit-hook operations (open, os.open, os.listdir, os.remove,
// time.sleep) and blocking C calls without audit events (file writes,
// os.read) per call site, with exact counts and lines; durations from the
// tracer's C-call spans; bytes null; nothing recorded once stopped.

#include "support/marked_line.hpp"
#include "python/event_capture.hpp"
#include "support/json.hpp"

#include <pycroscope/python/io_collector.hpp>

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <tuple>

namespace {

namespace py = pycroscope::python;
using namespace pycroscope_test;

constexpr const char* kIo = R"PY(
import os
import time

def write_file(path):
    with open(path, "w") as f:  # @open_w
        f.write("x" * 1000)  # @write

def read_back(path):
    fd = os.open(path, os.O_RDONLY)  # @os_open
    data = os.read(fd, 100)  # @os_read
    os.close(fd)
    return data

def nap():
    time.sleep(0.002)  # @sleep

def run(directory):
    path = os.path.join(directory, "data.txt")
    for _ in range(3):
        write_file(path)
    for _ in range(2):
        read_back(path)
    nap()
    os.listdir(directory)  # @listdir
    os.remove(path)  # @remove
)PY";

using pycroscope_test::line_of;

// (operation, function, line) -> (count, timed)
using Key = std::tuple<std::string, std::string, std::uint32_t>;
using Counts = std::map<Key, std::pair<std::uint64_t, std::uint64_t>>;

TEST(IoCollector, OperationsPerCallSiteWithTimes) {
    ensure_python();
    const std::string file = "io_sites.py";
    Ref ns = exec_module(kIo, file);
    ASSERT_TRUE(ns);
    TempDir dir;
    TempDir work;
    pycroscope::Session<py::PythonTracer, py::IoCollector> session;
    auto model = std::make_shared<py::IoModel>();
    auto summary = std::make_shared<pycroscope::sinks::JsonSummarySink>(dir.file("session.json"));
    py::add_io_section(*summary, *model);
    session.add_sink(model);
    session.add_sink(summary);
    session.collector<py::PythonTracer>().options = profile_options();
    session.start();
    const std::string directory = work.file("");
    Ref args(Py_BuildValue("(s)", directory.c_str()));
    Ref result = call(ns.get(), "run", args.get());
    session.stop();
    ASSERT_TRUE(result);

    const std::string source = kIo;
    const Counts expected = {
        {Key{"open", "write_file", line_of(source, "@open_w")}, {3, 3}},
        {Key{"_io.TextIOWrapper.write", "write_file", line_of(source, "@write")}, {3, 3}},
        {Key{"open", "read_back", line_of(source, "@os_open")}, {2, 2}},
        {Key{"posix.read", "read_back", line_of(source, "@os_read")}, {2, 2}},
        {Key{"time.sleep", "nap", line_of(source, "@sleep")}, {1, 1}},
        {Key{"os.listdir", "run", line_of(source, "@listdir")}, {1, 1}},
        {Key{"os.remove", "run", line_of(source, "@remove")}, {1, 1}},
    };

    const json::Value doc = json::parse_file(dir.file("session.json"));
    Counts from_json;
    std::uint64_t sleep_ns = 0;
    for (const auto& site : doc.at("io").items()) {
        if (site.at("file").as_string() != file) {
            continue;
        }
        const Key key{site.at("operation").as_string(), site.at("function").as_string(),
                      static_cast<std::uint32_t>(site.at("line").as_uint())};
        from_json[key] = {site.at("count").as_uint(), site.at("timed").as_uint()};
        EXPECT_TRUE(site.at("bytes").is_null());
        if (site.at("timed").as_uint() > 0) {
            EXPECT_GT(site.at("time_ns").as_uint(), 0u);
        }
        if (site.at("operation").as_string() == "time.sleep") {
            sleep_ns = site.at("time_ns").as_uint();
        }
    }
    EXPECT_EQ(from_json, expected);
    EXPECT_GE(sleep_ns, 2000000u) << "time.sleep(0.002) lasts at least 2 ms";
}

TEST(IoCollector, CountsWithoutTheTracerAndStopsRecording) {
    ensure_python();
    const std::string file = "io_untraced.py";
    Ref ns = exec_module(kIo, file);
    ASSERT_TRUE(ns);
    TempDir work;
    const std::string directory = work.file("");
    Ref args(Py_BuildValue("(s)", directory.c_str()));
    pycroscope::Session<py::IoCollector> session;
    auto model = std::make_shared<py::IoModel>();
    session.add_sink(model);
    session.start();
    Ref first = call(ns.get(), "run", args.get());
    session.stop();
    Ref second = call(ns.get(), "run", args.get()); // the hook stays, inert
    ASSERT_TRUE(first);
    ASSERT_TRUE(second);
    std::map<std::string, std::uint64_t> counts;
    for (const auto& site : model->sites()) {
        if (site.file == file) {
            counts[site.operation] += site.count;
            EXPECT_EQ(site.timed, 0u) << "no C-call spans without the tracer";
        }
    }
    std::map<std::string, std::uint64_t> expected = {{"open", 5}, {"os.listdir", 1}, {"os.remove", 1}};
#if PY_VERSION_HEX >= 0x030C0000
    expected["time.sleep"] = 1; // an audit event from 3.12; before, only its C-call span shows it
#endif
    EXPECT_EQ(counts, expected);
}

} // namespace
