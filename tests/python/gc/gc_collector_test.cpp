// GcCollector: every collection a Python gc.callbacks callback sees in the
// same run is one GC span, with the same generation, collected and
// uncollectable, in the same order; the "gc" section agrees; GC spans nest
// inside the Python frames that triggered them.

#include "python/event_capture.hpp"
#include "support/json.hpp"

#include <pycroscope/python/gc/gc_collector.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <tuple>
#include <vector>

namespace gc_collector_test {
namespace {

namespace py = pycroscope::python;
using pycroscope::Event;
using pycroscope::EventKind;
using pycroscope::LocationKind;
using namespace pycroscope_test;

constexpr const char* kGcWorkload = R"PY(
import gc

seen = []  # (generation, collected, uncollectable) per finished collection

def on_gc(phase, info):
    if phase == "stop":
        seen.append((info["generation"], info["collected"], info["uncollectable"]))

gc.callbacks.insert(0, on_gc)

class Node:
    def __init__(self):
        self.other = None

def churn(count):
    for _ in range(count):
        a = Node()
        b = Node()
        a.other = b
        b.other = a

def run():
    gc.collect(0)
    gc.collect(1)
    gc.collect(2)
    churn(20000)
    gc.collect()

def done():
    gc.callbacks.remove(on_gc)
)PY";

using Collection = std::tuple<long, long, long>;

std::vector<Collection> python_seen(PyObject* ns, Py_ssize_t from) {
    std::vector<Collection> out;
    PyObject* seen = PyDict_GetItemString(ns, "seen");
    for (Py_ssize_t i = from; i < PyList_GET_SIZE(seen); ++i) {
        PyObject* t = PyList_GET_ITEM(seen, i);
        out.emplace_back(PyLong_AsLong(PyTuple_GET_ITEM(t, 0)), PyLong_AsLong(PyTuple_GET_ITEM(t, 1)),
                         PyLong_AsLong(PyTuple_GET_ITEM(t, 2)));
    }
    return out;
}

bool is_gc(const Event& e) {
    return (e.kind == EventKind::zone_begin || e.kind == EventKind::zone_end) && e.location() != nullptr &&
           e.location()->kind == LocationKind::gc_collection;
}

TEST(GcCollector, OneSpanPerCollectionThatGcCallbacksSee) {
    ensure_python();
    Ref ns = exec_module(kGcWorkload, "gc_workload.py");
    ASSERT_TRUE(ns);
    TempDir dir;
    pycroscope::Session<py::GcCollector> session;
    auto capture = std::make_shared<EventCapture>();
    auto model = std::make_shared<pycroscope::model::GcModel>();
    auto json = std::make_shared<pycroscope::sinks::JsonSummarySink>(dir.file("session.json"));
    pycroscope::model::add_gc_section(*json, *model);
    session.add_sink(capture);
    session.core().add_processor(model);
    session.add_sink(json);
    session.start();
    // Our callback is last in gc.callbacks and nothing allocates between
    // its installation and this read: every later collection is in both.
    const Py_ssize_t baseline = PyList_GET_SIZE(PyDict_GetItemString(ns.get(), "seen"));
    Ref result = call(ns.get(), "run");
    const std::vector<Collection> expected = python_seen(ns.get(), baseline);
    session.stop();
    call(ns.get(), "done");
    ASSERT_TRUE(result);

    std::vector<Collection> recorded;
    std::uint64_t begins = 0;
    for (const Event& e : capture->all()) {
        if (!is_gc(e)) {
            continue;
        }
        if (e.kind == EventKind::zone_begin) {
            ++begins;
        } else {
            recorded.emplace_back(static_cast<long>(e.location()->line), static_cast<long>(e.payload),
                                  static_cast<long>(e.aux));
        }
    }
    // gc.collect(0/1/2) + gc.collect() + the churn's automatic collections.
    ASSERT_GE(expected.size(), 6u);
    EXPECT_EQ(recorded, expected);
    EXPECT_EQ(begins, expected.size());
    EXPECT_EQ(model->collections(), expected.size());

    std::uint64_t per_generation[3] = {0, 0, 0};
    std::uint64_t collected = 0;
    for (const auto& c : expected) {
        ++per_generation[std::get<0>(c)];
        collected += static_cast<std::uint64_t>(std::get<1>(c));
    }
    EXPECT_GE(collected, 2u * 19000u) << "the churn's cycles are collected";
    const json::Value doc = json::parse_file(dir.file("session.json"));
    const json::Value& gc = doc.at("gc");
    EXPECT_EQ(gc.at("collections").as_uint(), expected.size());
    EXPECT_EQ(gc.at("collected").as_uint(), collected);
    EXPECT_EQ(gc.at("uncollectable").as_uint(), 0u);
    ASSERT_EQ(gc.at("generations").size(), 3u);
    std::uint64_t time_ns = 0;
    for (std::size_t g = 0; g < 3; ++g) {
        const json::Value& gen = gc.at("generations")[g];
        EXPECT_EQ(gen.at("generation").as_uint(), g);
        EXPECT_EQ(gen.at("collections").as_uint(), per_generation[g]) << "generation " << g;
        time_ns += gen.at("time_ns").as_uint();
        EXPECT_LE(gen.at("max_ns").as_uint(), gen.at("time_ns").as_uint());
    }
    EXPECT_NEAR(static_cast<double>(gc.at("time_ns").as_uint()), static_cast<double>(time_ns), 3.0);
    EXPECT_GT(gc.at("time_ns").as_uint(), 0u);
    const double share = gc.at("share").as_number();
    EXPECT_GT(share, 0.0);
    EXPECT_LE(share, 1.0);
    EXPECT_NEAR(share, static_cast<double>(gc.at("time_ns").as_uint()) / doc.at("duration_ns").as_number(), 1e-6);
    // The spans are zones too: session.json's zones list them by generation.
    bool zone_listed = false;
    for (const auto& zone : doc.at("zones").items()) {
        if (zone.at("name").as_string() == "gc (generation 2)") {
            zone_listed = true;
            EXPECT_EQ(zone.at("kind").as_string(), "gc");
            EXPECT_EQ(zone.at("count").as_uint(), per_generation[2]);
        }
    }
    EXPECT_TRUE(zone_listed);
}

TEST(GcCollector, StopRemovesTheCallbackAndRecordsNothingAfter) {
    ensure_python();
    Ref gc(PyImport_ImportModule("gc"));
    Ref callbacks(PyObject_GetAttrString(gc.get(), "callbacks"));
    const Py_ssize_t before = PyList_GET_SIZE(callbacks.get());
    pycroscope::Session<py::GcCollector> session;
    auto capture = std::make_shared<EventCapture>();
    session.add_sink(capture);
    session.start();
    EXPECT_EQ(PyList_GET_SIZE(callbacks.get()), before + 1);
    Ref collected(PyObject_CallMethod(gc.get(), "collect", nullptr));
    session.stop();
    EXPECT_EQ(PyList_GET_SIZE(callbacks.get()), before);
    Ref again(PyObject_CallMethod(gc.get(), "collect", nullptr));
    std::uint64_t ends = 0;
    for (const Event& e : capture->all()) {
        ends += is_gc(e) && e.kind == EventKind::zone_end ? 1 : 0;
    }
    EXPECT_EQ(ends, 1u);
}

TEST(GcCollector, SpansNestInsideThePythonFrameThatCollected) {
    ensure_python();
    Ref ns = exec_module(kGcWorkload, "gc_nesting.py");
    ASSERT_TRUE(ns);
    pycroscope::Session<py::PythonTracer, py::GcCollector> session;
    auto capture = std::make_shared<EventCapture>();
    session.add_sink(capture);
    session.collector<py::PythonTracer>().options = profile_options();
    session.start();
    const Py_ssize_t baseline = PyList_GET_SIZE(PyDict_GetItemString(ns.get(), "seen"));
    Ref result = call(ns.get(), "run");
    const std::size_t expected = python_seen(ns.get(), baseline).size();
    session.stop();
    call(ns.get(), "done");
    ASSERT_TRUE(result);
    const Reconstruction r = reconstruct(capture->all());
    EXPECT_EQ(r.unmatched_ends + r.mismatched, 0u) << r.problems;
    std::size_t gc_spans = 0;
    for (std::size_t i = 0; i < r.spans.size(); ++i) {
        const Span& span = r.spans[i];
        if (span.location == nullptr || span.location->kind != LocationKind::gc_collection) {
            continue;
        }
        ++gc_spans;
        ASSERT_GE(span.parent, 0);
        // Collected by gc.collect (a C call) or by an allocation in churn/__init__.
        const std::string parent = r.spans[static_cast<std::size_t>(span.parent)].name();
        EXPECT_TRUE(parent == "gc.collect" || parent == "churn" || parent == "Node.__init__") << parent;
    }
    EXPECT_EQ(gc_spans, expected);
}

} // namespace
} // namespace gc_collector_test
