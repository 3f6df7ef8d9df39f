// Overhead calibration (python/calibration/overhead_calibration.hpp) on the
// embedded interpreter: each backend is measured; inside a StandardProfile
// the probe's calls never reach the profile and call counts stay exact;
// session.json says what was subtracted, or why nothing was.

#include "python/python_environment.hpp"
#include "support/json.hpp"
#include "support/sanitizers.hpp"

#include <pycroscope.hpp>
#include <pycroscope/profile/standard_profile.hpp>
#include <pycroscope/python/python.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace overhead_calibration_test {
namespace {

namespace fs = std::filesystem;
using namespace pycroscope;
using python::Backend;

class OverheadCalibrationTest : public ::testing::Test {
protected:
    void SetUp() override {
        pycroscope_test::ensure_python();
        dir_ = fs::temp_directory_path() /
               ("pycroscope_calibration_test_" + std::to_string(::getpid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    profile::ProfileOptions options(bool minimal) const {
        profile::ProfileOptions o;
        o.output_dir = dir_.string();
        o.minimal = minimal;
        o.clear_sinks();
        o.json = true;
        o.system = false;
        o.patterns.enabled = false;
        return o;
    }

    // Runs code (defining and calling user_fn) under a profile; returns it stopped.
    void run(profile::StandardProfile& p, const char* code) {
        p.start();
        PyObject* globals = PyDict_New();
        PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins());
        PyObject* result = PyRun_String(code, Py_file_input, globals, globals);
        if (result == nullptr) {
            PyErr_Print();
        }
        EXPECT_NE(result, nullptr);
        Py_XDECREF(result);
        Py_DECREF(globals);
        p.stop();
    }

    fs::path dir_;
};

constexpr const char* user_code = "def user_fn(n):\n"
                                  "    return n + 1\n"
                                  "for i in range(7):\n"
                                  "    user_fn(i)\n";

TEST_F(OverheadCalibrationTest, EveryAvailableBackendIsMeasured) {
    const std::vector<Backend> backends = python::available_backends();
    ASSERT_FALSE(backends.empty());
    for (const Backend backend : backends) {
        const python::OverheadMeasurement m = python::measure_backend_overhead(backend);
        ASSERT_TRUE(m.valid) << python::to_string(backend) << ": " << m.error;
        EXPECT_EQ(m.backend, backend);
        EXPECT_EQ(m.calls, python::CalibrationOptions{}.calls);
        EXPECT_GT(m.untraced_ns_per_call, 0.0);
        EXPECT_GE(m.ns_per_event, 0.0);
        EXPECT_DOUBLE_EQ(m.ns_per_event, std::max(0.0, (m.traced_ns_per_call - m.untraced_ns_per_call) / 2));
        std::printf("  %-10s untraced %.1f ns/call, traced %.1f ns/call: %.1f ns/event\n", python::to_string(backend),
                    m.untraced_ns_per_call, m.traced_ns_per_call, m.ns_per_event);
    }
}

TEST_F(OverheadCalibrationTest, ProbeCallsStayOutOfTheProfileAndCountsStayExact) {
    for (const bool minimal : {true, false}) {
        profile::StandardProfile p(options(minimal));
        run(p, user_code);
        const model::Profile& profile = p.profile();
        for (const model::Function& f : profile.functions) {
            EXPECT_EQ(f.name.find("_pycroscope_calibration"), std::string::npos) << f.name;
            EXPECT_NE(f.file, "<pycroscope calibration>") << f.name;
        }
        const std::uint32_t user = profile.find("user_fn");
        ASSERT_NE(user, model::no_index);
        EXPECT_EQ(profile.functions[user].calls, 7u);
        EXPECT_EQ(profile.unmatched_ends, 0u);
        ASSERT_TRUE(p.overhead().valid) << p.overhead().error;
        EXPECT_EQ(p.overhead().backend, p.backend());

        const json::Value doc = json::parse_file((dir_ / "session.json").string());
        const json::Value& section = doc.at("overhead_compensation");
        EXPECT_EQ(section.at("backend").as_string(), python::to_string(p.backend()));
        EXPECT_DOUBLE_EQ(section.at("ns_per_event").as_number(), p.overhead().ns_per_event);
        if (p.overhead().ns_per_event > 0) {
            EXPECT_TRUE(section.at("enabled").as_bool());
            // user_fn's 7 calls and returns at least; the probe's thousands are not there.
            EXPECT_GE(section.at("events").as_uint(), 14u);
            EXPECT_LT(section.at("events").as_uint(), 1000u);
        }
    }
}

TEST_F(OverheadCalibrationTest, TurnedOffNothingIsMeasuredNorSubtracted) {
    profile::ProfileOptions o = options(true);
    o.compensate_overhead = false;
    profile::StandardProfile p(o);
    run(p, user_code);
    EXPECT_FALSE(p.overhead().valid);
    const json::Value doc = json::parse_file((dir_ / "session.json").string());
    const json::Value& section = doc.at("overhead_compensation");
    EXPECT_FALSE(section.at("enabled").as_bool());
    EXPECT_EQ(section.at("reason").as_string(), "turned off");
    EXPECT_FALSE(section.contains("events"));
    const std::uint32_t user = p.profile().find("user_fn");
    ASSERT_NE(user, model::no_index);
    EXPECT_EQ(p.profile().functions[user].calls, 7u);
}

TEST_F(OverheadCalibrationTest, ModuleKeywordTurnsItOff) {
    PyObject* kwargs = PyDict_New();
    PyDict_SetItemString(kwargs, "compensate", Py_False);
    EXPECT_FALSE(profile::profile_options_from_kwargs(kwargs).compensate_overhead);
    PyDict_SetItemString(kwargs, "compensate", Py_True);
    EXPECT_TRUE(profile::profile_options_from_kwargs(kwargs).compensate_overhead);
    Py_DECREF(kwargs);
    EXPECT_TRUE(profile::ProfileOptions{}.compensate_overhead);
}

} // namespace
} // namespace overhead_calibration_test
