#pragma once
// The 1-based line of a test script that carries the comment "# <marker>",
// so assertions name lines by meaning rather than by number.

#include <gtest/gtest.h>

#include <cstdint>
#include <sstream>
#include <string>

namespace pycroscope_test {

inline std::uint32_t line_of(const std::string& source, const std::string& marker) {
    std::istringstream in(source);
    std::string line;
    for (std::uint32_t n = 1; std::getline(in, line); ++n) {
        if (line.find("# " + marker) != std::string::npos) {
            return n;
        }
    }
    ADD_FAILURE() << "no line marked " << marker;
    return 0;
}

} // namespace pycroscope_test
