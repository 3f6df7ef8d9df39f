#pragma once
// Writes a rendered report under its final name only when complete: the
// text goes to "<path>.tmp" and is renamed over path, so a reader never
// opens half a page.

#include "pycroscope/report/report_error.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

namespace pycroscope {
namespace report {

inline void write_report_file(const std::string& path, std::string_view text) {
    const std::string temporary = path + ".tmp";
    std::FILE* file = std::fopen(temporary.c_str(), "wb");
    if (file == nullptr) {
        const int error = errno;
        throw ReportError("cannot write '" + path + "': " + std::strerror(error));
    }
    const bool written = text.empty() || std::fwrite(text.data(), 1, text.size(), file) == text.size();
    const bool closed = std::fclose(file) == 0;
    if (!written || !closed) {
        const int error = errno;
        std::remove(temporary.c_str());
        throw ReportError("writing '" + path + "' failed: " + std::strerror(error));
    }
    if (std::rename(temporary.c_str(), path.c_str()) != 0) {
        const int error = errno;
        std::remove(temporary.c_str());
        throw ReportError("cannot rename '" + temporary + "' to '" + path + "': " + std::strerror(error));
    }
}

} // namespace report
} // namespace pycroscope
