#pragma once
// Shared helpers of the report tests: a fresh work directory per test, the
// fixtures of tests/report/data/ copied into it (with "@DIR@" in their text
// replaced by that directory, so session.json names real source paths),
// reading files back, and running a command.

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#ifndef PYCROSCOPE_SOURCE_DIR
#error "PYCROSCOPE_SOURCE_DIR must name the source tree (set by CMakeLists.txt)"
#endif
#ifndef PYCROSCOPE_REPORT_WORK_DIR
#define PYCROSCOPE_REPORT_WORK_DIR "report_tests"
#endif

namespace report_test {

namespace fs = std::filesystem;

inline std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

inline void write_text(const fs::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
}

inline std::string replace_all(std::string text, const std::string& from, const std::string& to) {
    for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
        text.replace(at, from.size(), to);
    }
    return text;
}

// An empty directory named after the running test.
inline fs::path work_dir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    fs::path dir = fs::absolute(fs::path(PYCROSCOPE_REPORT_WORK_DIR) / (std::string(info->test_suite_name()) + "." + info->name()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
}

// Copies tests/report/data/<name>/ into dir, replacing "@DIR@" by dir.
inline void copy_fixture(const std::string& name, const fs::path& dir) {
    const fs::path from = fs::path(PYCROSCOPE_SOURCE_DIR) / "tests" / "report" / "data" / name;
    for (const auto& entry : fs::directory_iterator(from)) {
        write_text(dir / entry.path().filename(), replace_all(read_text(entry.path()), "@DIR@", dir.string()));
    }
}

inline std::size_t count(const std::string& text, const std::string& needle) {
    std::size_t n = 0;
    for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
        ++n;
    }
    return n;
}

// Runs a shell command; returns its exit status (-1 when it could not run).
inline int run(const std::string& command) {
    const int status = std::system(command.c_str());
    if (status == -1) {
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

inline std::string quote(const std::string& text) { return "'" + replace_all(text, "'", "'\\''") + "'"; }

} // namespace report_test
