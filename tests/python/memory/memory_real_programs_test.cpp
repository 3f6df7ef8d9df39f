// `pycroscope profile` in its default mode (full allocation tracking, the
// tracer, every collector) on two real programs that crashed inside the
// allocation hooks: a sympy script, and part of CPython's test_pickle run
// through test.libregrtest (its imports reach enum._convert_ in socket).
// Each must exit as the plain interpreter does and print the same output.
// Skipped when sympy or the interpreter's test suite is not installed
// (Debian: python3-sympy, libpython3.11-testsuite).

#include "support/sanitizers.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace memory_real_programs_test {
namespace {

namespace fs = std::filesystem;

#if defined(PYCROSCOPE_CLI_PATH) && defined(PYCROSCOPE_PYTHON_EXECUTABLE)

std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

class RealPrograms : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               std::string("pycroscope_real_programs_")
                   .append(std::to_string(::testing::UnitTest::GetInstance()->random_seed()))
                   .append("_")
                   .append(::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override {
        if (!HasFailure()) {
            fs::remove_all(dir_);
        }
    }

    fs::path write_script(const std::string& name, const std::string& text) {
        const fs::path path = dir_ / name;
        std::ofstream(path) << text;
        return path;
    }

    struct Outcome {
        int status;
        std::string out;
        std::string err;
    };
    // command in dir_; stdout and stderr kept apart (the profiler reports on stderr).
    Outcome run(const std::string& command, const std::string& name) {
        const fs::path out = dir_ / (name + ".out");
        const fs::path err = dir_ / (name + ".err");
        // LeakSanitizer would report libpython's never-freed allocations.
        const std::string line = "cd '" + dir_.string() + "' && ASAN_OPTIONS=detect_leaks=0 " + command + " > '" +
                                 out.string() + "' 2> '" + err.string() + "'";
        const int status = std::system(line.c_str());
        return Outcome{status, read_text(out), read_text(err)};
    }
    bool python_can_import(const std::string& modules) {
        return run(std::string(PYCROSCOPE_PYTHON_EXECUTABLE) + " -c 'import " + modules + "'", "probe").status == 0;
    }
    // The plain run and the profiled run of script (default mode) exit alike
    // and print the same, once normalize() is applied.
    template <class Normalize>
    void expect_same_as_python(const fs::path& script, const std::string& args, Normalize normalize) {
        const Outcome plain = run(std::string(PYCROSCOPE_PYTHON_EXECUTABLE) + " " + script.string() + " " + args, "plain");
        const Outcome profiled = run(std::string(PYCROSCOPE_CLI_PATH) + " profile --top 0 --output-dir out " +
                                         script.string() + " " + args,
                                     "profiled");
        ASSERT_EQ(plain.status, 0) << plain.out << plain.err;
        EXPECT_EQ(profiled.status, plain.status) << profiled.err;
        EXPECT_EQ(normalize(profiled.out), normalize(plain.out)) << profiled.err;
        EXPECT_TRUE(fs::exists(dir_ / "out" / "session.json")) << profiled.err;
    }

    fs::path dir_;
};

std::string unchanged(const std::string& text) { return text; }

// Whole programs under TSan take many minutes and test no thread the ASan and
// plain builds do not: the crash these tests guard against is memory misuse.
using pycroscope_test::under_thread_sanitizer;

TEST_F(RealPrograms, SympyFactorsUnderFullTrackingAsWithoutIt) {
    if (under_thread_sanitizer) {
        GTEST_SKIP() << "a whole program under TSan: run by the plain and ASan builds";
    }
    if (!python_can_import("sympy")) {
        GTEST_SKIP() << "sympy is not installed for " << PYCROSCOPE_PYTHON_EXECUTABLE << " (Debian: python3-sympy)";
    }
    const fs::path script = write_script("factor.py", "from sympy import symbols, factor\n"
                                                      "x, y = symbols('x y')\n"
                                                      "print(factor(x**16 - y**16))\n");
    expect_same_as_python(script, "", unchanged);
}

// libregrtest prints load averages and durations: those lines differ. Parsed by hand:
// std::regex trips g++ 12's -Wmaybe-uninitialized inside libstdc++ under ASan.
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Skips [0-9.]+ from `at`; returns where the run ends.
size_t skip_number(const std::string& text, size_t at) {
    while (at < text.size() && (is_digit(text[at]) || text[at] == '.')) {
        ++at;
    }
    return at;
}

// Removes a leading "H:MM:SS " and an optional "load avg: N.NN ".
std::string without_clock(const std::string& line) {
    size_t at = 0;
    while (at < line.size() && is_digit(line[at])) {
        ++at;
    }
    const bool clock = at > 0 && line.size() >= at + 7 && line[at] == ':' && is_digit(line[at + 1]) &&
                       is_digit(line[at + 2]) && line[at + 3] == ':' && is_digit(line[at + 4]) &&
                       is_digit(line[at + 5]) && line[at + 6] == ' ';
    if (!clock) {
        return line;
    }
    at += 7;
    const std::string load = "load avg: ";
    if (line.compare(at, load.size(), load) == 0) {
        const size_t end = skip_number(line, at + load.size());
        if (end < line.size() && line[end] == ' ') {
            at = end + 1;
        }
    }
    return line.substr(at);
}

// Removes every " in N.N sec|ms|min" and an optional " N sec" after "min".
std::string without_durations(const std::string& line) {
    std::string kept;
    size_t at = 0;
    while (true) {
        const size_t found = line.find(" in ", at);
        if (found == std::string::npos) {
            break;
        }
        size_t end = skip_number(line, found + 4);
        bool matched = false;
        if (end > found + 4) {
            for (const char* unit : {" sec", " ms", " min"}) {
                if (line.compare(end, std::char_traits<char>::length(unit), unit) == 0) {
                    end += std::char_traits<char>::length(unit);
                    matched = true;
                    if (std::string(unit) == " min" && end + 1 < line.size() && line[end] == ' ') {
                        const size_t seconds = skip_number(line, end + 1);
                        if (seconds > end + 1 && line.compare(seconds, 4, " sec") == 0) {
                            end = seconds + 4;
                        }
                    }
                    break;
                }
            }
        }
        kept += line.substr(at, found - at);
        kept += matched ? "" : line.substr(found, 4);
        at = matched ? end : found + 4;
    }
    return kept + line.substr(at);
}

std::string without_timings(const std::string& text) {
    std::istringstream lines(text);
    std::string line, kept;
    while (std::getline(lines, line)) {
        if (line.rfind("Total duration", 0) == 0) {
            continue;
        }
        kept += without_durations(without_clock(line)) + "\n";
    }
    return kept;
}

TEST_F(RealPrograms, TestPickleThroughLibregrtestPassesUnderFullTracking) {
    if (under_thread_sanitizer) {
        GTEST_SKIP() << "a whole program under TSan: run by the plain and ASan builds";
    }
    if (!python_can_import("test.libregrtest, test.test_pickle")) {
        GTEST_SKIP() << "the test suite of " << PYCROSCOPE_PYTHON_EXECUTABLE
                     << " is not installed (Debian: libpython3.11-testsuite)";
    }
    const fs::path script = write_script("regrtest.py", "from test.libregrtest import main\n"
                                                        "main()\n");
    // A few tests of every pickler class (19 in 3.11): the crash was in the
    // imports, and the whole module takes minutes under full tracking. Not
    // test_bad_getattr: it calls sys.settrace, which the tracer refuses.
    expect_same_as_python(script,
                          "test_pickle -m test_dump_closed_file -m test_load_closed_file -m test_recursive_list "
                          "-m test_misc -m test_unicode",
                          without_timings);
}

#endif

} // namespace
} // namespace memory_real_programs_test
