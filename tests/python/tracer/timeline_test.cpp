// "One timeline": a host zone calls Python, Python calls a native C function
// that opens its own zone and calls back into Python. The Chrome trace shows
// them nested in that order on one thread, for both backends. The C function
// Python calls is named call_native; the zone it opens is native_callback.

#include "python/event_capture.hpp"
#include "support/json.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace timeline_test {
namespace {

using namespace pycroscope_test;
using pycroscope::python::PythonTracer;

PyObject* g_inner = nullptr; // borrowed from the test's namespace

PyObject* native_callback(PyObject*, PyObject*) {
    PYCRO_SCOPE_N("native_callback");
    if (g_inner == nullptr) {
        PyErr_SetString(PyExc_RuntimeError, "no inner function");
        return nullptr;
    }
    return PyObject_CallNoArgs(g_inner);
}
PyMethodDef kNativeCallbackDef{"call_native", &native_callback, METH_NOARGS, nullptr};

constexpr const char* kTimeline = R"PY(
def py_inner():
    return sum(range(100))

def py_outer():
    return call_native() + 1
)PY";

struct Slice {
    std::string name;
    std::string cat;
    std::uint64_t tid = 0;
    std::int64_t begin_ns = 0;
    std::int64_t end_ns = 0;
    const json::Value* event = nullptr;
};

// "12.345" (microseconds with three decimals, as the sink writes them) -> 12345 ns.
std::int64_t us_text_to_ns(const std::string& text) {
    const auto dot = text.find('.');
    std::int64_t whole = std::stoll(text.substr(0, dot));
    std::int64_t frac = 0;
    if (dot != std::string::npos) {
        std::string digits = text.substr(dot + 1);
        digits.resize(3, '0');
        frac = std::stoll(digits.substr(0, 3));
    }
    return whole * 1000 + (whole < 0 ? -frac : frac);
}

class TimelineTest : public ::testing::TestWithParam<BackendCase> {
protected:
    void SetUp() override { ensure_python(); }
};

TEST_P(TimelineTest, HostPythonNativePythonNestOnOneThread) {
    Ref ns = exec_module(kTimeline, "timeline.py");
    ASSERT_TRUE(ns);
    Ref callback(PyCFunction_New(&kNativeCallbackDef, nullptr));
    PyDict_SetItemString(ns.get(), "call_native", callback.get());
    g_inner = PyDict_GetItemString(ns.get(), "py_inner");

    TempDir dir;
    const std::string path = dir.file("trace.json");
    {
        PySession session;
        session.add_sink<pycroscope::sinks::ChromeTraceSink>(path);
        session.collector<PythonTracer>().options = GetParam().options;
        session.start();
        {
            PYCRO_SCOPE_N("host");
            Ref result = call(ns.get(), "py_outer");
            ASSERT_TRUE(result);
            EXPECT_EQ(as_long(result.get()), 4951);
        }
        const auto summary = session.stop();
        EXPECT_EQ(summary.total_lost, 0u);
    }
    g_inner = nullptr;

    const json::Value doc = json::parse_file(path);
    std::vector<Slice> slices;
    for (const auto& e : doc.at("traceEvents").items()) {
        if (e.at("ph").as_string() != "X") {
            continue;
        }
        Slice s;
        s.name = e.at("name").as_string();
        s.cat = e.at("cat").as_string();
        s.tid = e.at("tid").as_uint();
        s.begin_ns = us_text_to_ns(e.at("ts").number_text());
        s.end_ns = s.begin_ns + us_text_to_ns(e.at("dur").number_text());
        s.event = &e;
        slices.push_back(s);
    }
    auto only = [&](const std::string& name) -> const Slice& {
        const Slice* found = nullptr;
        int n = 0;
        for (const auto& s : slices) {
            if (s.name == name) {
                found = &s;
                ++n;
            }
        }
        EXPECT_EQ(n, 1) << "X events named " << name;
        static const Slice none;
        return found != nullptr ? *found : none;
    };
    const Slice& host = only("host");
    const Slice& outer = only("py_outer");
    const Slice& callback_zone = only("native_callback");
    const Slice& inner = only("py_inner");
    ASSERT_FALSE(::testing::Test::HasFailure());

    EXPECT_EQ(host.cat, "zone");
    EXPECT_EQ(outer.cat, "python");
    EXPECT_EQ(callback_zone.cat, "zone");
    EXPECT_EQ(inner.cat, "python");
    EXPECT_EQ(outer.event->at("args").at("file").as_string(), "timeline.py");
    EXPECT_EQ(outer.event->at("args").at("line").as_uint(), 5u);
    EXPECT_EQ(inner.event->at("args").at("line").as_uint(), 2u);

    // One thread, and each slice inside the previous one. Times are rounded
    // to the nanosecond separately for ts and dur: allow 3 ns at the ends.
    constexpr std::int64_t slack = 3;
    const std::vector<const Slice*> chain = {&host, &outer, &callback_zone, &inner};
    for (std::size_t i = 1; i < chain.size(); ++i) {
        const Slice& parent = *chain[i - 1];
        const Slice& child = *chain[i];
        EXPECT_EQ(child.tid, parent.tid) << child.name;
        EXPECT_LE(parent.begin_ns, child.begin_ns) << child.name << " starts inside " << parent.name;
        EXPECT_LE(child.end_ns, parent.end_ns + slack) << child.name << " ends inside " << parent.name;
        EXPECT_LT(child.end_ns - child.begin_ns, parent.end_ns - parent.begin_ns + slack);
    }
    if (GetParam().options.c_calls) {
        // The profile backend also sees the C function itself, between
        // py_outer and the zone it opens; sum() runs inside py_inner.
        int c_slices = 0;
        for (const auto& s : slices) {
            if (s.cat == "c" && s.name == "call_native") {
                ++c_slices;
                EXPECT_LE(outer.begin_ns, s.begin_ns);
                EXPECT_LE(s.begin_ns, callback_zone.begin_ns);
                EXPECT_LE(callback_zone.end_ns, s.end_ns + slack);
                EXPECT_LE(s.end_ns, outer.end_ns + slack);
            }
        }
        EXPECT_EQ(c_slices, 1);
        int sums = 0;
        for (const auto& s : slices) {
            if (s.cat == "c" && s.name == "builtins.sum") {
                ++sums;
                EXPECT_LE(inner.begin_ns, s.begin_ns);
                EXPECT_LE(s.end_ns, inner.end_ns + slack);
            }
        }
        EXPECT_EQ(sums, 1);
    }
}

INSTANTIATE_TEST_SUITE_P(Backends, TimelineTest, ::testing::ValuesIn(backend_cases()), backend_case_name);

} // namespace
} // namespace timeline_test
