#pragma once
// Helpers of the exporter tests: running the real readers of each format
// (protoc, gzip, callgrind_annotate, python3 with jsonschema), reading
// protoc's text format back into a tree, and one synthetic event stream that
// exercises every kind the exporters handle.

#include "sinks/sink_test_helpers.hpp"
#include "support/sample_events.hpp"

#include <pycroscope/core/event.hpp>
#include <pycroscope/core/source_location.hpp>

#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <vector>

namespace export_test {

namespace fs = std::filesystem;

// tests/sinks, where the protos, schemas and scripts of these tests live.
inline fs::path tests_dir() {
#ifdef PYCROSCOPE_TESTS_DIR
    return fs::path(PYCROSCOPE_TESTS_DIR) / "sinks";
#else
    return fs::absolute(fs::path(__FILE__)).parent_path();
#endif
}
inline fs::path data_dir() { return tests_dir() / "data"; }

inline std::string quote(const std::string& text) {
    std::string out = "'";
    for (const char c : text) {
        if (c == '\'') {
            out += "'\\''";
        } else {
            out += c;
        }
    }
    return out + "'";
}

struct CommandResult {
    int status = -1; // exit code, or -1 when it did not exit normally
    std::string output; // stdout (stderr goes to the test log)
};

inline CommandResult run(const std::string& command) {
    CommandResult result;
    std::FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr) {
        return result;
    }
    char buffer[65536];
    std::size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) {
        result.output.append(buffer, n);
    }
    const int status = ::pclose(pipe);
    result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
}

inline bool have_command(const std::string& name) {
    return run("command -v " + quote(name) + " >/dev/null 2>&1").status == 0;
}

// Debian's interpreter, never a pyenv shim; with the module given importable.
inline bool have_python_module(const std::string& module) {
    return run("/usr/bin/python3 -c " + quote("import " + module) + " >/dev/null 2>&1").status == 0;
}

#define EXPORT_TEST_REQUIRE_COMMAND(name)                                                                          \
    do {                                                                                                           \
        if (!export_test::have_command(name)) {                                                                    \
            GTEST_SKIP() << "'" << (name) << "' is not installed";                                                 \
        }                                                                                                          \
    } while (0)

#define EXPORT_TEST_REQUIRE_PROTOC()                                                                               \
    do {                                                                                                           \
        if (!export_test::have_command("protoc")) {                                                                \
            GTEST_SKIP() << "protoc is not installed (apt-get install protobuf-compiler)";                         \
        }                                                                                                          \
    } while (0)

// --- protoc's text format ------------------------------------------------

// One field of a decoded message: a scalar (value, strings unescaped) or a
// nested message (children).
struct TextNode {
    std::string name;
    std::string value;
    bool message = false;
    std::vector<TextNode> children;

    std::vector<const TextNode*> all(const std::string& field) const {
        std::vector<const TextNode*> out;
        for (const auto& c : children) {
            if (c.name == field) {
                out.push_back(&c);
            }
        }
        return out;
    }
    const TextNode* find(const std::string& field) const {
        for (const auto& c : children) {
            if (c.name == field) {
                return &c;
            }
        }
        return nullptr;
    }
    bool has(const std::string& field) const { return find(field) != nullptr; }
    const TextNode& at(const std::string& field) const {
        const TextNode* node = find(field);
        if (node == nullptr) {
            throw std::runtime_error("no field '" + field + "' in '" + name + "'");
        }
        return *node;
    }
    std::uint64_t u(const std::string& field) const { return std::stoull(at(field).value); }
    std::int64_t i(const std::string& field) const { return std::stoll(at(field).value); }
    const std::string& s(const std::string& field) const { return at(field).value; }
};

inline std::string unescape_text_string(const std::string& quoted) {
    if (quoted.size() < 2 || quoted.front() != '"' || quoted.back() != '"') {
        return quoted; // a number or an enum name
    }
    std::string out;
    for (std::size_t i = 1; i + 1 < quoted.size(); ++i) {
        char c = quoted[i];
        if (c != '\\') {
            out += c;
            continue;
        }
        c = quoted[++i];
        switch (c) {
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case '"': out += '"'; break;
        case '\'': out += '\''; break;
        case '\\': out += '\\'; break;
        default:
            if (c >= '0' && c <= '7') { // octal byte
                int value = 0;
                int digits = 0;
                while (digits < 3 && i < quoted.size() - 1 && quoted[i] >= '0' && quoted[i] <= '7') {
                    value = value * 8 + (quoted[i] - '0');
                    ++i;
                    ++digits;
                }
                --i;
                out += static_cast<char>(value);
            } else {
                out += c;
            }
        }
    }
    return out;
}

// Parses `protoc --decode` output. Throws on a field protoc printed by number
// (a field the schema does not know: a wrong field number in the writer),
// unless numbers are all there is (`protoc --decode_raw`).
inline TextNode parse_text_format(const std::string& text, bool numbered = false) {
    TextNode root;
    root.message = true;
    std::vector<TextNode*> stack{&root};
    std::size_t line_number = 0;
    for (const std::string& raw : sink_test::lines_of(text)) {
        ++line_number;
        const std::size_t first = raw.find_first_not_of(' ');
        if (first == std::string::npos) {
            continue;
        }
        const std::string line = raw.substr(first);
        if (line == "}") {
            if (stack.size() < 2) {
                throw std::runtime_error("unbalanced '}' at line " + std::to_string(line_number));
            }
            stack.pop_back();
            continue;
        }
        if (!numbered && std::isdigit(static_cast<unsigned char>(line[0]))) {
            throw std::runtime_error("field unknown to the schema at line " + std::to_string(line_number) + ": " +
                                     line);
        }
        if (line.size() > 2 && line.compare(line.size() - 2, 2, " {") == 0) {
            TextNode node;
            node.name = line.substr(0, line.size() - 2);
            node.message = true;
            stack.back()->children.push_back(std::move(node));
            stack.push_back(&stack.back()->children.back());
            continue;
        }
        const std::size_t colon = line.find(": ");
        if (colon == std::string::npos) {
            throw std::runtime_error("unreadable line " + std::to_string(line_number) + ": " + line);
        }
        TextNode node;
        node.name = line.substr(0, colon);
        node.value = unescape_text_string(line.substr(colon + 2));
        stack.back()->children.push_back(std::move(node));
    }
    if (stack.size() != 1) {
        throw std::runtime_error("unterminated message at the end of protoc's output");
    }
    return root;
}

// `protoc --decode=type proto < file`, parsed. Fails the test when protoc fails.
inline TextNode protoc_decode(const std::string& type, const fs::path& proto, const std::string& file) {
    const CommandResult r = run("protoc --proto_path=" + quote(proto.parent_path().string()) + " --decode=" + type +
                                " " + quote(proto.filename().string()) + " < " + quote(file));
    if (r.status != 0) {
        throw std::runtime_error("protoc --decode=" + type + " failed on '" + file + "' (status " +
                                 std::to_string(r.status) + ")");
    }
    return parse_text_format(r.output);
}

// --- a synthetic stream with every kind of event ---------------------------

using pycroscope::Event;
using pycroscope::EventKind;
using pycroscope::LocationKind;
using pycroscope::SourceLocation;

inline constexpr SourceLocation loc_main{"main", "main", "app.cpp", 10, LocationKind::native_zone};
inline constexpr SourceLocation loc_work{"work", "work", "app.cpp", 20, LocationKind::native_zone};
inline constexpr SourceLocation loc_fib{"fib", "mod.fib", "/src/mod.py", 3, LocationKind::python_function};
inline constexpr SourceLocation loc_helper{"helper", "mod.helper", "/src/mod.py", 9, LocationKind::python_function};
inline constexpr SourceLocation loc_lambda1{"<lambda>", "mod.<lambda>", "/src/mod.py", 30,
                                            LocationKind::python_function};
inline constexpr SourceLocation loc_lambda2{"<lambda>", "mod.<lambda>", "/src/mod.py", 31,
                                            LocationKind::python_function};
inline constexpr SourceLocation loc_len{"len", "builtins.len", "", 0, LocationKind::c_function};
inline constexpr SourceLocation loc_gc{"gc (generation 0)", "gc", "", 0, LocationKind::gc_collection};
inline constexpr SourceLocation loc_quote{"odd \"name\"\\ with\ttab", "odd", "/src/odd file.py", 5,
                                          LocationKind::python_function};
inline constexpr SourceLocation loc_mark{"checkpoint", "checkpoint", "app.cpp", 40, LocationKind::mark};
inline constexpr SourceLocation loc_frame{"frame", "frame", "app.cpp", 41, LocationKind::frame};
inline constexpr SourceLocation loc_queue{"queue depth", "queue depth", "app.cpp", 42, LocationKind::counter};
inline constexpr SourceLocation loc_line5{"mod.py:5", "mod.fib", "/src/mod.py", 5, LocationKind::python_line};
inline constexpr SourceLocation loc_line11{"mod.py:11", "mod.helper", "/src/mod.py", 11, LocationKind::python_line};
inline constexpr SourceLocation loc_sampled_thread{"sampled-main", "sampled-main", "", 0, LocationKind::other};

inline Event span_event(EventKind kind, const SourceLocation* l, std::uint64_t ts, std::uint8_t flags = 0) {
    Event e = sink_test::make_event(kind, l, ts);
    e.flags = flags;
    return e;
}

inline Event alloc_event(const SourceLocation* site, std::uint64_t ts, std::uint64_t address, std::uint64_t bytes,
                         std::uint8_t flags = 1) {
    Event e = sink_test::make_event(EventKind::mem_alloc, site, ts, address);
    pycroscope::set_memory_bytes(e, bytes);
    e.flags = flags;
    return e;
}

// A free as the memory model leaves it: site, lifetime, bytes, known.
inline Event known_free_event(const SourceLocation* site, std::uint64_t ts, std::uint64_t allocated_at,
                              std::uint64_t bytes) {
    Event e = sink_test::make_event(EventKind::mem_free, site, ts, ts - allocated_at);
    pycroscope::set_memory_bytes(e, bytes);
    e.flags = 1 | pycroscope::memory_flags::known;
    return e;
}

// Thread 1 "main": nested zones and Python calls with recursion, a C call,
// a GC span, a span left open at stop, an end without a begin, marks, frame
// marks, a counter and allocations (some freed, one born freed).
// Thread 2 "worker": two lambdas of one file, a quoted name, a counter, 3 lost
// events. Thread 3 "sampler": stack samples of another thread.
inline sink_test::Synthetic rich_stream(bool with_samples = true) {
    using namespace pycroscope;
    sink_test::Synthetic s;
    s.info.process_name = "rich \"stream\"";
    s.thread(1, "main");
    s.thread(2, "worker", 3);
    if (with_samples) {
        s.thread(3, "sampler");
    }
    s.add(1, span_event(EventKind::zone_begin, &loc_main, 100));
    s.add(1, span_event(EventKind::py_call, &loc_fib, 110));
    s.add(1, alloc_event(&loc_line5, 115, 0x1000, 64));
    s.add(1, span_event(EventKind::py_call, &loc_fib, 120));
    s.add(1, alloc_event(&loc_line5, 125, 0x2000, 128));
    s.add(1, span_event(EventKind::c_call, &loc_len, 130));
    s.add(1, span_event(EventKind::c_return, &loc_len, 135));
    s.add(1, known_free_event(&loc_line5, 140, 115, 64));
    s.add(1, span_event(EventKind::py_return, &loc_fib, 150));
    s.add(1, span_event(EventKind::py_call, &loc_helper, 160));
    s.add(1, alloc_event(&loc_line11, 165, 0x3000, 1000));
    s.add(1, alloc_event(&loc_line11, 166, 0x4000, 24, 1 | memory_flags::born_freed));
    s.add(1, span_event(EventKind::py_return, &loc_helper, 190));
    s.add(1, span_event(EventKind::py_return, &loc_fib, 200));
    s.add(1, span_event(EventKind::zone_end, &loc_work, 205)); // never begun: dropped
    s.mark(1, &loc_mark, 210);
    s.frame(1, &loc_frame, 215);
    s.counter(1, &loc_queue, 220, 3.5);
    s.add(1, span_event(EventKind::zone_begin, &loc_gc, 230));
    s.add(1, span_event(EventKind::zone_end, &loc_gc, 260));
    s.add(1, span_event(EventKind::py_call, &loc_fib, 270, event_flags::synthetic));
    s.add(1, span_event(EventKind::py_call, &loc_quote, 280));
    s.frame(1, &loc_frame, 290);
    // loc_quote, fib and main stay open: closed at stop.
    s.add(2, span_event(EventKind::zone_begin, &loc_work, 105));
    s.add(2, span_event(EventKind::py_call, &loc_lambda1, 112));
    s.add(2, span_event(EventKind::py_return, &loc_lambda1, 118));
    s.add(2, span_event(EventKind::py_call, &loc_lambda2, 121));
    s.add(2, span_event(EventKind::py_resume, &loc_lambda1, 122));
    s.add(2, span_event(EventKind::py_return, &loc_lambda1, 127));
    s.add(2, span_event(EventKind::py_return, &loc_lambda2, 131));
    s.counter(2, &loc_queue, 140, -1.25);
    s.add(2, span_event(EventKind::zone_end, &loc_work, 150));
    if (!with_samples) {
        return s;
    }
    for (const Event& e : sample_test::sample_events(100, 777, &loc_sampled_thread, sample_flags::running,
                                                     {{&loc_fib, 4}, {&loc_helper, 10}})) {
        s.add(3, e);
    }
    for (const Event& e : sample_test::sample_events(200, 777, &loc_sampled_thread, sample_flags::running,
                                                     {{&loc_fib, 4}, {&loc_helper, 11}})) {
        s.add(3, e);
    }
    for (const Event& e : sample_test::sample_events(300, 777, &loc_sampled_thread, 0, {{&loc_fib, 5}})) {
        s.add(3, e);
    }
    return s;
}

inline constexpr std::uint64_t rich_stop = 400;

} // namespace export_test
