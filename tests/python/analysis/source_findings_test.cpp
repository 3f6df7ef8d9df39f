// python::collect_source_facts in the test's interpreter: the candidate
// sites and definitions of a file, a file that cannot be parsed or read
// skipped with its reason (the others still analysed), library files skipped
// unless asked, and the caller's pending Python exception left as it was.

#include "python/python_environment.hpp"

#include <pycroscope/python/analysis/source_findings.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

namespace source_findings_test {
namespace {

namespace fs = std::filesystem;
using pycroscope::analysis::SourceFacts;

class SourceFindings : public ::testing::Test {
protected:
    void SetUp() override {
        pycroscope_test::ensure_python();
        dir_ = fs::temp_directory_path() / ("pycroscope_source_findings_" + std::to_string(::getpid()));
        fs::create_directories(dir_);
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    std::string write(const std::string& name, const std::string& text) {
        const fs::path path = dir_ / name;
        std::ofstream(path) << text;
        return path.string();
    }
    fs::path dir_;
};

TEST_F(SourceFindings, AFileGivesItsSitesAndDefinitions) {
    const std::string file = write("a.py", "import sys\n"
                                           "\n"
                                           "def f(xs):\n"
                                           "    out = ''\n"
                                           "    for x in xs:\n"
                                           "        out += str(x)\n"
                                           "    return out\n");
    const SourceFacts facts = pycroscope::python::collect_source_facts({file}, false);
    ASSERT_EQ(facts.files.size(), 1u);
    const auto& f = facts.files[0];
    EXPECT_EQ(f.skipped, "");
    ASSERT_EQ(f.sites.size(), 2u);
    EXPECT_EQ(f.sites[0].kind, "unused_import");
    EXPECT_EQ(f.sites[0].line, 1u);
    EXPECT_EQ(f.sites[1].kind, "string_concat_in_loop");
    EXPECT_EQ(f.sites[1].line, 6u);
    EXPECT_EQ(f.sites[1].function, "f");
    EXPECT_EQ(f.sites[1].function_line, 3u);
    ASSERT_EQ(f.functions.size(), 1u);
    EXPECT_EQ(f.functions[0].name, "f");
    EXPECT_EQ(f.functions[0].end_line, 7u);
    EXPECT_EQ(f.functions[0].complexity, 2u);
    EXPECT_GT(facts.seconds, 0.0);
}

TEST_F(SourceFindings, UnreadableAndLibraryFilesAreSkippedWithTheirReason) {
    const std::string broken = write("broken.py", "def f(:\n");
    const std::string good = write("good.py", "def g():\n    return 1\n");
    const std::string missing = (dir_ / "missing.py").string();
    // A standard-library file, found by the interpreter itself.
    PyObject* os = PyImport_ImportModule("os");
    ASSERT_NE(os, nullptr);
    PyObject* path = PyObject_GetAttrString(os, "__file__");
    ASSERT_NE(path, nullptr);
    const std::string library = PyUnicode_AsUTF8(path);
    Py_DECREF(path);
    Py_DECREF(os);

    const SourceFacts facts = pycroscope::python::collect_source_facts({broken, good, missing, library}, false);
    ASSERT_EQ(facts.files.size(), 4u);
    EXPECT_EQ(facts.files[0].skipped.rfind("unreadable: ", 0), 0u) << facts.files[0].skipped;
    EXPECT_EQ(facts.files[1].skipped, "");
    EXPECT_EQ(facts.files[1].functions.size(), 1u);
    EXPECT_EQ(facts.files[2].skipped.rfind("unreadable: ", 0), 0u) << facts.files[2].skipped;
    EXPECT_EQ(facts.files[3].skipped, "library");

    const SourceFacts with_libraries = pycroscope::python::collect_source_facts({library}, true);
    EXPECT_EQ(with_libraries.files[0].skipped, "");
    EXPECT_FALSE(with_libraries.files[0].functions.empty());
}

TEST_F(SourceFindings, ThePendingExceptionOfTheCallerIsKept) {
    const std::string good = write("good.py", "def g():\n    return 1\n");
    PyErr_SetString(PyExc_KeyError, "the caller's");
    const SourceFacts facts = pycroscope::python::collect_source_facts({good}, false);
    EXPECT_EQ(facts.files.size(), 1u);
    ASSERT_NE(PyErr_Occurred(), nullptr);
    EXPECT_TRUE(PyErr_ExceptionMatches(PyExc_KeyError));
    PyErr_Clear();
}

} // namespace
} // namespace source_findings_test
