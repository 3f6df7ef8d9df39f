#pragma once
// Session folders for the store tests: a minimal session.json with a
// "profile" and a "memory" section, written where a test wants it.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include <unistd.h>

namespace store_test {

namespace fs = std::filesystem;

// wall_ns for the run; stage_ns the self time of "stage" (called 3 times).
inline std::string session_json(std::uint64_t wall_ns, std::uint64_t stage_ns, std::uint64_t peak_bytes = 123456) {
    const std::string wall = std::to_string(wall_ns), stage = std::to_string(stage_ns);
    const std::string main_self = std::to_string(wall_ns / 10);
    const std::string main_total = std::to_string(wall_ns / 10 + stage_ns);
    return R"({"format": "pycroscope-session", "version": 1, "duration_ns": )" + wall +
           R"(, "profile": {"schema": 1, "unit": "ns", "wall_ns": )" + wall + R"(, "total": )" + main_total +
           R"(, "unclosed_spans": 0, "unmatched_ends": 0, "max_depth": 2, "tree_pruned": 0,
  "threads": [{"index": 0, "os_tid": 1, "name": "MainThread", "total": )" + main_total + R"(}],
  "functions": [
    {"id": 0, "name": "main", "file": "/w/app.py", "line": 1, "kind": "python", "calls": 1, "resumes": 0,
     "self": )" + main_self + R"(, "inclusive": )" + main_total + R"(, "unclosed": 0, "threads": []},
    {"id": 1, "name": "stage", "file": "/w/app.py", "line": 5, "kind": "python", "calls": 3, "resumes": 0,
     "self": )" + stage + R"(, "inclusive": )" + stage + R"(, "unclosed": 0, "threads": []}],
  "edges": [[0, 1, 3, )" + stage + ", " + stage + R"(]], "tree": [], "lines": []},
 "memory": {"peak_bytes": )" + std::to_string(peak_bytes) + R"(, "sites": [
    {"file": "/w/app.py", "line": 7, "function": "stage", "bytes": 5000, "count": 2}]}}
)";
}

inline void write_text(const fs::path& path, const std::string& text) {
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << text;
}

inline std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A fresh folder under the temporary directory, removed by the destructor.
class TempDir {
public:
    explicit TempDir(const std::string& name)
        : path_(fs::temp_directory_path() / ("pycroscope_store_test_" + std::to_string(::getpid()) + "_" + name)) {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
        fs::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

} // namespace store_test
