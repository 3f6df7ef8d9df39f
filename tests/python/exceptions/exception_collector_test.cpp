// ExceptionCollector: raised / caught / uncaught per site with the exception
// type, for exceptions caught by a caller, caught where raised, re-raised
// bare, passed through a finally, swallowed by C code and escaping to C++;
// the "exceptions" section agrees.

#include "support/marked_line.hpp"
#include "python/event_capture.hpp"
#include "support/json.hpp"

#include <pycroscope/python/exceptions/exception_collector.hpp>

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <tuple>

namespace exception_collector_test {
namespace {

namespace py = pycroscope::python;
using namespace pycroscope_test;

constexpr const char* kExceptions = R"PY(
class AppError(Exception):
    pass

def thrower(i):
    raise AppError(i)  # @app

def middle(i):
    return thrower(i)

def catcher(n):
    caught = 0
    for i in range(n):
        try:
            middle(i)
        except AppError:
            caught += 1
    return caught

def caught_here(n):
    d = {}
    for i in range(n):
        try:
            d[i]  # @key
        except KeyError:
            pass

def reraiser():
    try:
        raise ValueError("x")  # @value
    except ValueError:
        raise

def outer(n):
    for _ in range(n):
        try:
            reraiser()
        except ValueError:
            pass

def through_finally():
    try:
        raise TypeError("t")  # @type
    finally:
        pass

def outer_finally(n):
    for _ in range(n):
        try:
            through_finally()
        except TypeError:
            pass

class Lazy:
    def __getattr__(self, name):
        raise AttributeError(name)  # @attr

def swallowed_by_c(n):
    lazy = Lazy()
    for _ in range(n):
        hasattr(lazy, "missing")
        try:
            raise LookupError("after")  # @lookup
        except LookupError:
            pass

def main():
    catcher(5)
    caught_here(4)
    outer(3)
    outer_finally(2)
    swallowed_by_c(3)

def escapes():
    raise RuntimeError("to C++")  # @runtime
)PY";

using pycroscope_test::line_of;

// (type, function, line) -> (raised, caught)
using Key = std::tuple<std::string, std::string, std::uint32_t>;
using Counts = std::map<Key, std::pair<std::uint64_t, std::uint64_t>>;

TEST(ExceptionCollector, CountsRaisedAndCaughtPerSite) {
    ensure_python();
    const std::string file = "exception_sites.py";
    Ref ns = exec_module(kExceptions, file);
    ASSERT_TRUE(ns);
    TempDir dir;
    pycroscope::Session<py::PythonTracer, py::ExceptionCollector> session;
    auto model = std::make_shared<pycroscope::model::ExceptionModel>();
    auto summary = std::make_shared<pycroscope::sinks::JsonSummarySink>(dir.file("session.json"));
    pycroscope::model::add_exceptions_section(*summary, *model);
    session.core().add_processor(model);
    session.add_sink(summary);
    auto& tracer = session.collector<py::PythonTracer>();
    tracer.options = profile_options();
    tracer.options.exceptions = true;
    session.start();
    Ref result = call(ns.get(), "main");
    Ref escaped(PyObject_CallObject(PyDict_GetItemString(ns.get(), "escapes"), nullptr));
    const bool raised_to_cpp = !escaped && PyErr_ExceptionMatches(PyExc_RuntimeError);
    PyErr_Clear();
    session.stop();
    ASSERT_TRUE(result);
    EXPECT_TRUE(raised_to_cpp);

    const std::string source = kExceptions;
    const Counts expected = {
        {Key{"workload.AppError", "thrower", line_of(source, "@app")}, {5, 5}}, // module.qualname
        {Key{"KeyError", "caught_here", line_of(source, "@key")}, {4, 4}},
        {Key{"ValueError", "reraiser", line_of(source, "@value")}, {3, 3}},
        {Key{"TypeError", "through_finally", line_of(source, "@type")}, {2, 2}},
        {Key{"AttributeError", "Lazy.__getattr__", line_of(source, "@attr")}, {3, 0}},
        {Key{"LookupError", "swallowed_by_c", line_of(source, "@lookup")}, {3, 3}},
        {Key{"RuntimeError", "escapes", line_of(source, "@runtime")}, {1, 0}},
    };

    Counts from_model;
    for (const auto& site : model->sites()) {
        if (site.function == nullptr || site.function->file != file) {
            continue;
        }
        ASSERT_NE(site.type, nullptr);
        from_model[Key{site.type->display_name(), site.function->display_name(), site.line}] = {site.raised,
                                                                                                 site.caught};
    }
    EXPECT_EQ(from_model, expected);

    const json::Value doc = json::parse_file(dir.file("session.json"));
    Counts from_json;
    for (const auto& site : doc.at("exceptions").items()) {
        if (site.at("file").as_string() != file) {
            continue;
        }
        const Key key{site.at("type").as_string(), site.at("function").as_string(),
                      static_cast<std::uint32_t>(site.at("line").as_uint())};
        from_json[key] = {site.at("raised").as_uint(), site.at("caught").as_uint()};
        EXPECT_EQ(site.at("uncaught").as_uint(), site.at("raised").as_uint() - site.at("caught").as_uint());
        if (site.at("caught").as_uint() > 0) {
            const double mean = site.at("mean_raise_to_handler_ns").as_number();
            EXPECT_GT(mean, 0.0);
            EXPECT_LE(mean, site.at("max_raise_to_handler_ns").as_number() + 1.0);
        } else {
            EXPECT_TRUE(site.at("mean_raise_to_handler_ns").is_null());
        }
    }
    EXPECT_EQ(from_json, expected);
}

TEST(ExceptionCollector, RefusesToStartWithoutExceptionTracing) {
    ensure_python();
    pycroscope::Session<py::PythonTracer, py::ExceptionCollector> session;
    session.collector<py::PythonTracer>().options = profile_options(); // exceptions off
    EXPECT_THROW(session.start(), pycroscope::ConfigError);
    EXPECT_FALSE(session.running());
}

} // namespace
} // namespace exception_collector_test
