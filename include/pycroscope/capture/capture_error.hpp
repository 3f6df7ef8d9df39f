#pragma once
// The error a capture reader throws for a file it will not read: not a
// capture, a newer format, or a damaged block. The message names the file and
// the byte offset where reading stopped.

#include <cstdint>
#include <stdexcept>
#include <string>

namespace pycroscope {
namespace capture {

class CaptureError : public std::runtime_error {
public:
    CaptureError(const std::string& file, std::uint64_t offset, const std::string& what)
        : std::runtime_error("pycroscope: capture '" + file + "' at offset " + std::to_string(offset) + ": " + what),
          file_(file), offset_(offset) {}

    const std::string& file() const noexcept { return file_; }
    std::uint64_t offset() const noexcept { return offset_; }

private:
    std::string file_;
    std::uint64_t offset_;
};

} // namespace capture
} // namespace pycroscope
