#pragma once
// ReportError: a report could not be rendered or written (unreadable or
// malformed session.json, a folder that cannot be written). The message names
// the file and the reason.

#include <stdexcept>
#include <string>

namespace pycroscope {
namespace report {

class ReportError : public std::runtime_error {
public:
    explicit ReportError(const std::string& what) : std::runtime_error(what) {}
};

} // namespace report
} // namespace pycroscope
