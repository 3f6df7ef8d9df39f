#pragma once
// Test helpers for the Python tracing layer: a sink that keeps every event per
// thread, analyses of recorded event streams (call counts per Python function,
// strict span balance, span reconstruction), and small wrappers around the
// C-API for running test scripts. All Python helpers need the GIL.

#include "python/python_environment.hpp"

#include <pycroscope.hpp>
#include <pycroscope/python/python.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace pycroscope_test {

// ---------------------------------------------------------------------------
// The sink
// ---------------------------------------------------------------------------

class EventCapture : public pycroscope::Sink {
public:
    std::string describe() const override { return "event capture"; }
    void open(const pycroscope::SessionInfo& info) override {
        std::lock_guard<std::mutex> lock(mutex_);
        info_ = info;
        events_.clear();
        threads_.clear();
    }
    void consume(const pycroscope::ThreadInfo& thread, const pycroscope::Event* events, std::size_t count) override {
        std::lock_guard<std::mutex> lock(mutex_);
        auto& list = events_[thread.index];
        list.insert(list.end(), events, events + count);
        threads_[thread.index] = thread;
    }
    void close(const pycroscope::SessionSummary& summary) override {
        std::lock_guard<std::mutex> lock(mutex_);
        summary_ = summary;
        for (const auto& t : summary.threads) {
            threads_[t.index] = t;
        }
    }
    void abort() noexcept override {}

    std::map<std::uint32_t, std::vector<pycroscope::Event>> by_thread() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return events_;
    }
    std::vector<pycroscope::Event> all() const {
        std::lock_guard<std::mutex> lock(mutex_);
        std::vector<pycroscope::Event> out;
        for (const auto& entry : events_) {
            out.insert(out.end(), entry.second.begin(), entry.second.end());
        }
        return out;
    }
    std::map<std::uint32_t, pycroscope::ThreadInfo> threads() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return threads_;
    }
    pycroscope::SessionSummary summary() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return summary_;
    }

private:
    mutable std::mutex mutex_;
    pycroscope::SessionInfo info_;
    pycroscope::SessionSummary summary_;
    std::map<std::uint32_t, std::vector<pycroscope::Event>> events_;
    std::map<std::uint32_t, pycroscope::ThreadInfo> threads_;
};

using PySession = pycroscope::Session<pycroscope::NativeZones, pycroscope::python::PythonTracer>;

// The two backend configurations the tests cover: the fast one (PEP 523,
// Python functions only) and the complete one (profile hook with C calls).
struct BackendCase {
    const char* label;
    pycroscope::python::TracerOptions options;
};
inline pycroscope::python::TracerOptions eval_frame_options() {
    pycroscope::python::TracerOptions o;
    o.backend = pycroscope::python::Backend::eval_frame;
    o.c_calls = false;
    return o;
}
inline pycroscope::python::TracerOptions profile_options() {
    pycroscope::python::TracerOptions o;
    o.backend = pycroscope::python::Backend::profile;
    o.c_calls = true;
    return o;
}
inline pycroscope::python::TracerOptions profile_with(pycroscope::python::ConflictPolicy policy) {
    pycroscope::python::TracerOptions o = profile_options();
    o.on_conflict = policy;
    return o;
}
// start() must throw a ConfigError that mentions `expected`, and leave the
// session stopped.
template <class SessionType>
void expect_start_refused(SessionType& session, const std::string& expected) {
    try {
        session.start();
        ADD_FAILURE() << "start() should have thrown";
    } catch (const pycroscope::ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
    EXPECT_FALSE(session.running());
}
inline std::vector<BackendCase> backend_cases() {
    return {BackendCase{"eval_frame", eval_frame_options()}, BackendCase{"profile", profile_options()}};
}
inline std::string backend_case_name(const ::testing::TestParamInfo<BackendCase>& info) { return info.param.label; }

// ---------------------------------------------------------------------------
// Analyses
// ---------------------------------------------------------------------------

inline bool is_python_location(const pycroscope::SourceLocation* location) {
    return location != nullptr && location->kind == pycroscope::LocationKind::python_function;
}

// The last component of a qualified name: what cProfile reports (co_name).
inline std::string short_name(const std::string& qualname) {
    const auto dot = qualname.rfind('.');
    return dot == std::string::npos ? qualname : qualname.substr(dot + 1);
}

// (file, first line, co_name): the key of a pstats entry.
using FunctionKey = std::tuple<std::string, std::uint32_t, std::string>;
using CallCounts = std::map<FunctionKey, std::uint64_t>;

inline FunctionKey key_of(const pycroscope::SourceLocation* location) {
    return FunctionKey{location->file, location->line, short_name(location->display_name())};
}

// Calls + resumes per Python function of file (every file when empty).
// Synthetic spans (frames already running at start) are not calls.
inline void add_call_counts(CallCounts& out, const std::vector<pycroscope::Event>& events,
                            const std::string& file = {}) {
    for (const auto& e : events) {
        const bool counted = (e.kind == pycroscope::EventKind::py_call &&
                              (e.flags & pycroscope::event_flags::synthetic) == 0) ||
                             e.kind == pycroscope::EventKind::py_resume;
        if (!counted || !is_python_location(e.location())) {
            continue;
        }
        if (!file.empty() && file != e.location()->file) {
            continue;
        }
        ++out[key_of(e.location())];
    }
}
inline CallCounts call_counts(const std::vector<pycroscope::Event>& events, const std::string& file = {}) {
    CallCounts out;
    add_call_counts(out, events, file);
    return out;
}

// Count of calls (+ resumes) of the Python function named qualname.
inline std::uint64_t count_calls(const std::vector<pycroscope::Event>& events, const std::string& qualname,
                                 bool include_resumes = true) {
    std::uint64_t n = 0;
    for (const auto& e : events) {
        if (!is_python_location(e.location()) || qualname != e.location()->display_name()) {
            continue;
        }
        if ((e.kind == pycroscope::EventKind::py_call && (e.flags & pycroscope::event_flags::synthetic) == 0) ||
            (include_resumes && e.kind == pycroscope::EventKind::py_resume)) {
            ++n;
        }
    }
    return n;
}

inline std::string describe(const FunctionKey& key) {
    return std::get<0>(key) + ":" + std::to_string(std::get<1>(key)) + " " + std::get<2>(key);
}

inline std::string diff_counts(const CallCounts& expected, const CallCounts& actual, const char* expected_label,
                               const char* actual_label) {
    std::ostringstream out;
    std::map<FunctionKey, std::pair<std::uint64_t, std::uint64_t>> all;
    for (const auto& e : expected) {
        all[e.first].first = e.second;
    }
    for (const auto& a : actual) {
        all[a.first].second = a.second;
    }
    for (const auto& entry : all) {
        if (entry.second.first != entry.second.second) {
            out << "  " << describe(entry.first) << ": " << expected_label << "=" << entry.second.first << " "
                << actual_label << "=" << entry.second.second << "\n";
        }
    }
    return out.str();
}

inline bool closes_kind_of(pycroscope::EventKind open, pycroscope::EventKind close) {
    using pycroscope::EventKind;
    switch (open) {
    case EventKind::zone_begin: return close == EventKind::zone_end;
    case EventKind::py_call:
    case EventKind::py_resume: return close == EventKind::py_return;
    case EventKind::c_call: return close == EventKind::c_return;
    default: return false;
    }
}

// One span rebuilt from a thread's events by strict LIFO matching.
struct Span {
    const pycroscope::SourceLocation* location = nullptr;
    pycroscope::EventKind kind = pycroscope::EventKind::none;
    std::uint8_t flags = 0;       // of the opening event
    std::uint8_t end_flags = 0;   // of the closing event
    std::uint64_t begin = 0;
    std::uint64_t end = 0;
    int parent = -1;
    int depth = 0;
    bool closed = false;
    std::string name() const { return location == nullptr ? "?" : location->display_name(); }
};

struct Reconstruction {
    std::vector<Span> spans;          // in opening order
    std::vector<int> open_at_end;     // indices of spans never closed, outermost first
    std::uint64_t unmatched_ends = 0; // a close with nothing open
    std::uint64_t mismatched = 0;     // a close that does not match the innermost open span
    std::string problems;             // the first few problems, readable

    // Indices of spans whose location is named qualname.
    std::vector<int> find(const std::string& qualname) const {
        std::vector<int> out;
        for (std::size_t i = 0; i < spans.size(); ++i) {
            if (spans[i].name() == qualname) {
                out.push_back(static_cast<int>(i));
            }
        }
        return out;
    }
    std::string path(int index) const {
        std::string out;
        for (int i = index; i >= 0; i = spans[static_cast<std::size_t>(i)].parent) {
            out = spans[static_cast<std::size_t>(i)].name() + (out.empty() ? "" : " > " + out);
        }
        return out;
    }
};

// Strict: every close must match the innermost open span (same location and
// a closing kind of its opening kind). A mismatch is reported and the
// innermost span is closed anyway, so one problem does not cascade.
inline Reconstruction reconstruct(const std::vector<pycroscope::Event>& events) {
    Reconstruction r;
    std::vector<int> stack;
    int reported = 0;
    auto problem = [&](const std::string& text) {
        if (reported++ < 8) {
            r.problems += "  " + text + "\n";
        }
    };
    for (std::size_t i = 0; i < events.size(); ++i) {
        const auto& e = events[i];
        if (pycroscope::opens_span(e.kind)) {
            Span s;
            s.location = e.location();
            s.kind = e.kind;
            s.flags = e.flags;
            s.begin = e.timestamp;
            s.parent = stack.empty() ? -1 : stack.back();
            s.depth = static_cast<int>(stack.size());
            r.spans.push_back(s);
            stack.push_back(static_cast<int>(r.spans.size() - 1));
        } else if (pycroscope::closes_span(e.kind)) {
            const std::string name = e.location() == nullptr ? "?" : e.location()->display_name();
            if (stack.empty()) {
                ++r.unmatched_ends;
                problem("event " + std::to_string(i) + ": end of " + name + " with nothing open");
                continue;
            }
            Span& top = r.spans[static_cast<std::size_t>(stack.back())];
            if (top.location != e.location() || !closes_kind_of(top.kind, e.kind)) {
                ++r.mismatched;
                problem("event " + std::to_string(i) + ": end of " + name + " while " + r.path(stack.back()) +
                        " is innermost");
            }
            top.end = e.timestamp;
            top.end_flags = e.flags;
            top.closed = true;
            stack.pop_back();
        }
    }
    r.open_at_end = stack;
    return r;
}

// CallTree's own view (what the sinks compute).
inline std::uint64_t call_tree_unmatched(const std::vector<pycroscope::Event>& events) {
    pycroscope::CallTree tree;
    for (const auto& e : events) {
        tree.add(e);
    }
    return tree.unmatched_ends();
}

// ---------------------------------------------------------------------------
// Python helpers (GIL held)
// ---------------------------------------------------------------------------

// An owned reference.
class Ref {
public:
    Ref() = default;
    explicit Ref(PyObject* object) noexcept : object_(object) {}
    ~Ref() { Py_XDECREF(object_); }
    Ref(Ref&& other) noexcept : object_(other.release()) {}
    Ref& operator=(Ref&& other) noexcept {
        if (this != &other) {
            Py_XDECREF(object_);
            object_ = other.release();
        }
        return *this;
    }
    Ref(const Ref&) = delete;
    Ref& operator=(const Ref&) = delete;

    PyObject* get() const noexcept { return object_; }
    PyObject* release() noexcept {
        PyObject* o = object_;
        object_ = nullptr;
        return o;
    }
    explicit operator bool() const noexcept { return object_ != nullptr; }

private:
    PyObject* object_ = nullptr;
};

// The pending Python exception as text (with traceback), cleared.
inline std::string take_python_error() {
    if (!PyErr_Occurred()) {
        return "(no Python exception)";
    }
    PyObject *type = nullptr, *value = nullptr, *tb = nullptr;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    std::string text;
    Ref traceback_module(PyImport_ImportModule("traceback"));
    if (traceback_module) {
        Ref lines(PyObject_CallMethod(traceback_module.get(), "format_exception", "OOO", type ? type : Py_None,
                                      value ? value : Py_None, tb ? tb : Py_None));
        if (lines) {
            Ref empty(PyUnicode_FromString(""));
            Ref joined(PyUnicode_Join(empty.get(), lines.get()));
            if (joined) {
                const char* utf8 = PyUnicode_AsUTF8(joined.get());
                text = utf8 != nullptr ? utf8 : "";
            }
        }
    }
    PyErr_Clear();
    if (text.empty() && value != nullptr) {
        Ref s(PyObject_Str(value));
        const char* utf8 = s ? PyUnicode_AsUTF8(s.get()) : nullptr;
        text = utf8 != nullptr ? utf8 : "(unprintable exception)";
        PyErr_Clear();
    }
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    return text;
}

// A module-like namespace: source compiled under filename and executed in a
// fresh dict. Returns null (with a test failure) when the code raised.
inline Ref exec_module(const std::string& source, const std::string& filename, const char* name = "workload") {
    Ref globals(PyDict_New());
    PyDict_SetItemString(globals.get(), "__name__", Ref(PyUnicode_FromString(name)).get());
    PyDict_SetItemString(globals.get(), "__file__", Ref(PyUnicode_FromString(filename.c_str())).get());
    PyDict_SetItemString(globals.get(), "__builtins__", PyEval_GetBuiltins());
    Ref code(Py_CompileString(source.c_str(), filename.c_str(), Py_file_input));
    if (!code) {
        ADD_FAILURE() << "compiling " << filename << " failed:\n" << take_python_error();
        return Ref();
    }
    Ref result(PyEval_EvalCode(code.get(), globals.get(), globals.get()));
    if (!result) {
        ADD_FAILURE() << "running " << filename << " failed:\n" << take_python_error();
        return Ref();
    }
    return globals;
}

// Runs more code in an existing namespace; false (with a failure) when it raised.
inline bool exec_in(PyObject* globals, const std::string& source, const std::string& filename = "<test>") {
    Ref code(Py_CompileString(source.c_str(), filename.c_str(), Py_file_input));
    if (!code) {
        ADD_FAILURE() << "compiling " << filename << " failed:\n" << take_python_error();
        return false;
    }
    Ref result(PyEval_EvalCode(code.get(), globals, globals));
    if (!result) {
        ADD_FAILURE() << "running code in " << filename << " failed:\n" << take_python_error();
        return false;
    }
    return true;
}

// globals[name](*args); null (with a failure) when it raised.
inline Ref call(PyObject* globals, const char* name, PyObject* args = nullptr) {
    PyObject* function = PyDict_GetItemString(globals, name); // borrowed
    if (function == nullptr) {
        ADD_FAILURE() << "no Python function " << name;
        return Ref();
    }
    Ref empty;
    if (args == nullptr) {
        empty = Ref(PyTuple_New(0));
        args = empty.get();
    }
    Ref result(PyObject_Call(function, args, nullptr));
    if (!result) {
        ADD_FAILURE() << name << "() raised:\n" << take_python_error();
    }
    return result;
}

inline long as_long(PyObject* object) {
    const long v = object != nullptr ? PyLong_AsLong(object) : -1;
    if (PyErr_Occurred()) {
        ADD_FAILURE() << "expected an int:\n" << take_python_error();
    }
    return v;
}

// A directory under the system temp dir, removed with its contents.
class TempDir {
public:
    TempDir() {
        static std::atomic<int> counter{0};
#if defined(__unix__) || defined(__APPLE__)
        const long pid = static_cast<long>(::getpid());
#else
        const long pid = 0;
#endif
        path_ = std::filesystem::temp_directory_path() /
                ("pycroscope_python_" + std::to_string(pid) + "_" + std::to_string(counter++));
        std::filesystem::remove_all(path_);
        std::filesystem::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

} // namespace pycroscope_test
