#pragma once
// The one error type of the store layer: a session that cannot be read, an
// archive that is damaged, a session that does not exist. The message is
// for the user ("pycroscope: <what is wrong>").

#include <stdexcept>
#include <string>

namespace pycroscope {
namespace store {

class StoreError : public std::runtime_error {
public:
    explicit StoreError(const std::string& what) : std::runtime_error("pycroscope: " + what), detail_(what) {}
    // The message without the "pycroscope: " prefix.
    const std::string& detail() const noexcept { return detail_; }

private:
    std::string detail_;
};

} // namespace store
} // namespace pycroscope
