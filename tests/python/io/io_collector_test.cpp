// IoCollector: audit-hook operations (open, os.open, os.listdir, os.remove,
// time.sleep) and blocking C calls without audit events (file writes,
// os.read) per call site, with exact counts and lines; durations from the
// tracer's C-call spans; bytes of read/write syscalls from the thread's
// /proc/thread-self/io counters, exact for os.read/os.write and file
// objects, null for sockets and without the tracer; nothing recorded once
// stopped.

#include "support/marked_line.hpp"
#include "python/event_capture.hpp"
#include "support/json.hpp"

#include <pycroscope/python/io/io_collector.hpp>

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <tuple>

#if defined(__linux__)
#include <fcntl.h>
#include <unistd.h>
#endif

namespace io_collector_test {
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

// Bytes need the thread's I/O counters (Linux, task I/O accounting).
bool io_counters_readable() {
#if defined(__linux__)
    const int fd = ::open("/proc/thread-self/io", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    char buffer[64];
    const bool ok = ::pread(fd, buffer, sizeof buffer, 0) > 0;
    ::close(fd);
    return ok;
#else
    return false;
#endif
}

// (operation, line) -> count and bytes ("null" when unknown) of the sites in file.
struct SiteBytes {
    std::uint64_t count = 0;
    std::uint64_t timed = 0;
    std::string bytes;
};
using BytesByLine = std::map<std::pair<std::string, std::uint32_t>, SiteBytes>;

// Runs function(path) of source under the profile tracer and an IoCollector,
// and reads the io section of session.json.
BytesByLine io_bytes_of(const char* source, const std::string& file, const char* function) {
    Ref ns = exec_module(source, file);
    if (!ns) {
        return {};
    }
    TempDir dir;
    TempDir work;
    pycroscope::Session<py::PythonTracer, py::IoCollector> session;
    auto model = std::make_shared<pycroscope::model::IoModel>();
    auto summary = std::make_shared<pycroscope::sinks::JsonSummarySink>(dir.file("session.json"));
    pycroscope::model::add_io_section(*summary, *model);
    session.core().add_processor(model);
    session.add_sink(summary);
    session.collector<py::PythonTracer>().options = profile_options();
    session.start();
    const std::string path = work.file("data.bin");
    Ref args(Py_BuildValue("(s)", path.c_str()));
    Ref result = call(ns.get(), function, args.get());
    session.stop();
    EXPECT_TRUE(result);
    BytesByLine sites;
    const json::Value doc = json::parse_file(dir.file("session.json"));
    for (const auto& site : doc.at("io").items()) {
        if (site.at("file").as_string() != file) {
            continue;
        }
        SiteBytes& entry = sites[{site.at("operation").as_string(), static_cast<std::uint32_t>(site.at("line").as_uint())}];
        entry.count += site.at("count").as_uint();
        entry.timed += site.at("timed").as_uint();
        entry.bytes = site.at("bytes").is_null() ? "null" : std::to_string(site.at("bytes").as_uint());
    }
    return sites;
}

// "count/bytes" of the operation on the line of source holding marker, or "missing".
std::string site_bytes(const BytesByLine& sites, const std::string& source, const std::string& operation,
                       const char* marker) {
    const auto found = sites.find({operation, line_of(source, marker)});
    return found == sites.end() ? "missing" : std::to_string(found->second.count) + "/" + found->second.bytes;
}

TEST(IoCollector, OperationsPerCallSiteWithTimes) {
    ensure_python();
    const std::string file = "io_sites.py";
    Ref ns = exec_module(kIo, file);
    ASSERT_TRUE(ns);
    TempDir dir;
    TempDir work;
    pycroscope::Session<py::PythonTracer, py::IoCollector> session;
    auto model = std::make_shared<pycroscope::model::IoModel>();
    auto summary = std::make_shared<pycroscope::sinks::JsonSummarySink>(dir.file("session.json"));
    pycroscope::model::add_io_section(*summary, *model);
    session.core().add_processor(model);
    session.add_sink(summary);
    session.collector<py::PythonTracer>().options = profile_options();
    session.start();
    const std::string directory = work.file("");
    Ref args(Py_BuildValue("(s)", directory.c_str()));
    Ref result = call(ns.get(), "run", args.get());
    session.stop();
    ASSERT_TRUE(result);

    const std::string source = kIo;
    // Bytes of read/write syscalls: open, os.listdir and os.remove move none;
    // f.write("x" * 1000) only fills the text buffer, and the with-block's
    // exit (at the with line) writes it; os.read(fd, 100) reads 100 bytes of
    // the 1000-byte file, twice; time.sleep is no transfer: unknown.
    const std::map<Key, std::string> expected_bytes = {
        {Key{"open", "write_file", line_of(source, "@open_w")}, "0"},
        {Key{"_io.TextIOWrapper.write", "write_file", line_of(source, "@write")}, "0"},
        {Key{"_io.TextIOWrapper.__exit__", "write_file", line_of(source, "@open_w")}, "3000"},
        {Key{"open", "read_back", line_of(source, "@os_open")}, "0"},
        {Key{"posix.read", "read_back", line_of(source, "@os_read")}, "200"},
        {Key{"time.sleep", "nap", line_of(source, "@sleep")}, "null"},
        {Key{"os.listdir", "run", line_of(source, "@listdir")}, "0"},
        {Key{"os.remove", "run", line_of(source, "@remove")}, "0"},
    };
    const Counts expected = {
        {Key{"open", "write_file", line_of(source, "@open_w")}, {3, 3}},
        {Key{"_io.TextIOWrapper.write", "write_file", line_of(source, "@write")}, {3, 3}},
        {Key{"_io.TextIOWrapper.__exit__", "write_file", line_of(source, "@open_w")}, {3, 3}},
        {Key{"open", "read_back", line_of(source, "@os_open")}, {2, 2}},
        {Key{"posix.read", "read_back", line_of(source, "@os_read")}, {2, 2}},
        {Key{"time.sleep", "nap", line_of(source, "@sleep")}, {1, 1}},
        {Key{"os.listdir", "run", line_of(source, "@listdir")}, {1, 1}},
        {Key{"os.remove", "run", line_of(source, "@remove")}, {1, 1}},
    };

    const json::Value doc = json::parse_file(dir.file("session.json"));
    Counts from_json;
    std::map<Key, std::string> bytes_from_json;
    std::uint64_t sleep_ns = 0;
    for (const auto& site : doc.at("io").items()) {
        if (site.at("file").as_string() != file) {
            continue;
        }
        const Key key{site.at("operation").as_string(), site.at("function").as_string(),
                      static_cast<std::uint32_t>(site.at("line").as_uint())};
        from_json[key] = {site.at("count").as_uint(), site.at("timed").as_uint()};
        bytes_from_json[key] = site.at("bytes").is_null() ? "null" : std::to_string(site.at("bytes").as_uint());
        if (site.at("timed").as_uint() > 0) {
            EXPECT_GT(site.at("time_ns").as_uint(), 0u);
        }
        if (site.at("operation").as_string() == "time.sleep") {
            sleep_ns = site.at("time_ns").as_uint();
        }
    }
    EXPECT_EQ(from_json, expected);
    if (io_counters_readable()) {
        EXPECT_EQ(bytes_from_json, expected_bytes);
    }
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
    auto model = std::make_shared<pycroscope::model::IoModel>();
    session.core().add_processor(model);
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
            EXPECT_FALSE(site.bytes_known()) << site.operation << ": no bytes without the tracer's C calls";
        }
    }
    std::map<std::string, std::uint64_t> expected = {{"open", 5}, {"os.listdir", 1}, {"os.remove", 1}};
#if PY_VERSION_HEX >= 0x030C0000
    expected["time.sleep"] = 1; // an audit event from 3.12; before, only its C-call span shows it
#endif
    EXPECT_EQ(counts, expected);
}

// Without C-call spans (the default mode's tracer) the model skips the span
// events and counts the same sites as one that follows them.
TEST(IoCollector, WithoutCCallSpansTheModelSkipsTheSpans) {
    ensure_python();
    const std::string file = "io_no_c_calls.py";
    Ref ns = exec_module(kIo, file);
    ASSERT_TRUE(ns);
    TempDir work;
    const std::string directory = work.file("");
    Ref args(Py_BuildValue("(s)", directory.c_str()));
    pycroscope::Session<py::PythonTracer, py::IoCollector> session;
    auto following = std::make_shared<pycroscope::model::IoModel>(true);
    auto skipping = std::make_shared<pycroscope::model::IoModel>(false);
    session.core().add_processor(following);
    session.core().add_processor(skipping);
    session.collector<py::PythonTracer>().options.c_calls = false;
    session.start();
    Ref result = call(ns.get(), "run", args.get());
    session.stop();
    ASSERT_TRUE(result);
    std::map<std::string, std::uint64_t> counts;
    ASSERT_EQ(skipping->sites().size(), following->sites().size());
    for (std::size_t i = 0; i < following->sites().size(); ++i) {
        const auto& a = following->sites()[i];
        const auto& b = skipping->sites()[i];
        EXPECT_EQ(std::tie(a.file, a.line, a.function, a.operation, a.count, a.timed, a.measured, a.bytes),
                  std::tie(b.file, b.line, b.function, b.operation, b.count, b.timed, b.measured, b.bytes));
        if (b.file == file) {
            counts[b.operation] += b.count;
        }
    }
    std::map<std::string, std::uint64_t> expected = {{"open", 5}, {"os.listdir", 1}, {"os.remove", 1}};
#if PY_VERSION_HEX >= 0x030C0000
    expected["time.sleep"] = 1;
#endif
    EXPECT_EQ(counts, expected);
}

constexpr const char* kOsBytes = R"PY(
import os

def run(path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.write(fd, b"w" * 12345)  # @os_write
    os.pwrite(fd, b"p" * 55, 12345)  # @os_pwrite
    os.close(fd)
    fd = os.open(path, os.O_RDONLY)
    for _ in range(3):
        os.read(fd, 4000)  # @os_read
    os.pread(fd, 1000, 12000)  # @os_pread
    os.close(fd)
)PY";

TEST(IoCollector, BytesOfOsReadAndWriteAreExact) {
    ensure_python();
    if (!io_counters_readable()) {
        GTEST_SKIP() << "/proc/thread-self/io is not readable here: bytes stay null";
    }
    const std::string source = kOsBytes;
    const BytesByLine sites = io_bytes_of(kOsBytes, "io_os_bytes.py", "run");
    EXPECT_EQ(site_bytes(sites, source, "posix.write", "@os_write"), "1/12345");
    EXPECT_EQ(site_bytes(sites, source, "posix.pwrite", "@os_pwrite"), "1/55");
    EXPECT_EQ(site_bytes(sites, source, "posix.read", "@os_read"), "3/12000");
    // The file has 12400 bytes: a pread of 1000 at 12000 gets 400.
    EXPECT_EQ(site_bytes(sites, source, "posix.pread", "@os_pread"), "1/400");
}

// Bytes are those of the syscalls each call made. Buffer sizes are given, so
// the traffic does not depend on the file system's block size.
constexpr const char* kFileBytes = R"PY(
def unbuffered(path):
    with open(path, "wb", buffering=0) as f:
        f.write(b"u" * 7000)  # @raw_write
    with open(path, "rb", buffering=0) as f:
        f.read(2500)  # @raw_read
        f.readall()  # @raw_readall

def buffered(path):
    f = open(path, "wb", buffering=8192)
    f.write(b"b" * 1000)  # @buf_write_small
    f.flush()  # @buf_flush
    f.write(b"c" * 20000)  # @buf_write_big
    f.close()
    f = open(path, "rb", buffering=8192)
    f.read(100)  # @buf_read_small
    f.read()  # @buf_read_rest
    f.close()

def text(path):
    f = open(path, "w", encoding="ascii", buffering=8192)
    f.write("t" * 1000)  # @text_write
    f.flush()  # @text_flush
    f.close()
    f = open(path, "r", encoding="ascii", buffering=8192)
    f.read()  # @text_read
    f.close()

def closing(path):
    f = open(path, "wb", buffering=8192)
    f.write(b"k" * 700)
    f.close()  # @close
    with open(path, "w", encoding="ascii", buffering=8192) as f:  # @with_exit
        f.write("w" * 900)

def run(path):
    unbuffered(path)
    buffered(path)
    text(path)
    closing(path)
)PY";

TEST(IoCollector, BytesOfFileObjectsAreThoseOfTheirSyscalls) {
    ensure_python();
    if (!io_counters_readable()) {
        GTEST_SKIP() << "/proc/thread-self/io is not readable here: bytes stay null";
    }
    const std::string source = kFileBytes;
    const BytesByLine sites = io_bytes_of(kFileBytes, "io_file_bytes.py", "run");
    // Unbuffered (FileIO): what was written and read; readall() gets the rest.
    EXPECT_EQ(site_bytes(sites, source, "_io.FileIO.write", "@raw_write"), "1/7000");
    EXPECT_EQ(site_bytes(sites, source, "_io.FileIO.read", "@raw_read"), "1/2500");
    EXPECT_EQ(site_bytes(sites, source, "_io.FileIO.readall", "@raw_readall"), "1/4500");
    // Buffered: a write that fits the buffer writes nothing, the flush writes
    // it; a write larger than the (empty) buffer goes straight to the file.
    EXPECT_EQ(site_bytes(sites, source, "_io.BufferedWriter.write", "@buf_write_small"), "1/0");
    EXPECT_EQ(site_bytes(sites, source, "_io.BufferedWriter.flush", "@buf_flush"), "1/1000");
    EXPECT_EQ(site_bytes(sites, source, "_io.BufferedWriter.write", "@buf_write_big"), "1/20000");
    // read(100) fills the 8192-byte buffer from the 21000-byte file; read()
    // takes the buffer's rest and reads the other 12808 bytes.
    EXPECT_EQ(site_bytes(sites, source, "_io.BufferedReader.read", "@buf_read_small"), "1/8192");
    EXPECT_EQ(site_bytes(sites, source, "_io.BufferedReader.read", "@buf_read_rest"), "1/12808");
    // Text: the same, through the TextIOWrapper's own pending buffer.
    EXPECT_EQ(site_bytes(sites, source, "_io.TextIOWrapper.write", "@text_write"), "1/0");
    EXPECT_EQ(site_bytes(sites, source, "_io.TextIOWrapper.flush", "@text_flush"), "1/1000");
    EXPECT_EQ(site_bytes(sites, source, "_io.TextIOWrapper.read", "@text_read"), "1/1000");
    // close() and a with-block's exit flush what the buffers still hold.
    EXPECT_EQ(site_bytes(sites, source, "_io.BufferedWriter.close", "@close"), "1/700");
    EXPECT_EQ(site_bytes(sites, source, "_io.TextIOWrapper.__exit__", "@with_exit"), "1/900");
}

// recv(2)/send(2) leave the thread's rchar/wchar unchanged (checked: a
// 1000-byte send and recv on a socketpair moved neither), so socket calls
// have unknown bytes, never 0; so do buffered objects on a socket. read(2)
// and write(2) on a socket's fd do count.
constexpr const char* kSocketBytes = R"PY(
import os
import socket

def run(path):
    a, b = socket.socketpair()
    try:
        a.send(b"s" * 1000)  # @send
        b.recv(1000)  # @recv
        a.sendall(b"s" * 500)  # @sendall
        b.recv_into(bytearray(500))  # @recv_into
        reader = b.makefile("rb")
        a.sendall(b"m" * 300)
        reader.read(300)  # @makefile_read
        reader.close()
        os.write(a.fileno(), b"o" * 200)  # @fd_write
        os.read(b.fileno(), 200)  # @fd_read
    finally:
        a.close()
        b.close()
)PY";

TEST(IoCollector, SocketBytesAreUnknownButFdReadsAndWritesCount) {
    ensure_python();
    const std::string source = kSocketBytes;
    const BytesByLine sites = io_bytes_of(kSocketBytes, "io_socket_bytes.py", "run");
    EXPECT_EQ(site_bytes(sites, source, "socket.send", "@send"), "1/null");
    EXPECT_EQ(site_bytes(sites, source, "socket.recv", "@recv"), "1/null");
    EXPECT_EQ(site_bytes(sites, source, "socket.sendall", "@sendall"), "1/null");
    EXPECT_EQ(site_bytes(sites, source, "socket.recv_into", "@recv_into"), "1/null");
    EXPECT_EQ(site_bytes(sites, source, "_io.BufferedReader.read", "@makefile_read"), "1/null");
    if (io_counters_readable()) {
        EXPECT_EQ(site_bytes(sites, source, "posix.write", "@fd_write"), "1/200");
        EXPECT_EQ(site_bytes(sites, source, "posix.read", "@fd_read"), "1/200");
    } else {
        EXPECT_EQ(site_bytes(sites, source, "posix.write", "@fd_write"), "1/null");
        EXPECT_EQ(site_bytes(sites, source, "posix.read", "@fd_read"), "1/null");
    }
}

} // namespace
} // namespace io_collector_test
