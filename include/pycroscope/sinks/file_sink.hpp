#pragma once
// A sink that writes one file, committed atomically at close. Derived sinks
// call file() to write and implement the remaining hooks.

#include "pycroscope/sinks/atomic_file.hpp"
#include "pycroscope/sinks/base_sink.hpp"

#include <string>

namespace pycroscope {
namespace sinks {

class FileSink : public BaseSinkMt {
public:
    FileSink(std::string kind, std::string path) : kind_(std::move(kind)), file_(std::move(path)) {}

    std::string describe() const override { return kind_ + " '" + file_.path() + "'"; }
    const std::string& path() const noexcept { return file_.path(); }
    std::string output_path() const override { return file_.path(); }
    // The file of the last session is on disk, complete (its commit succeeded).
    bool written() const noexcept { return file_.committed(); }

protected:
    void open_(const SessionInfo&) override { file_.open(); }
    void abort_() noexcept override { file_.discard(); }
    AtomicFile& file() noexcept { return file_; }

private:
    std::string kind_;
    AtomicFile file_;
};

} // namespace sinks
} // namespace pycroscope
