#pragma once
// Errors thrown by Pycroscope. Every failure that happens before profiling
// starts is reported through one of these, with a message a user can act on.

#include <stdexcept>
#include <string>

namespace pycroscope {

// A configuration value or output target that cannot work; thrown by
// Session::start() before any collector or hook is installed.
class ConfigError : public std::invalid_argument {
public:
    explicit ConfigError(const std::string& what) : std::invalid_argument("pycroscope: " + what) {}
};

// Misuse of the session life cycle that cannot be made safe (for example two
// sessions recording at once).
class SessionError : public std::logic_error {
public:
    explicit SessionError(const std::string& what) : std::logic_error("pycroscope: " + what) {}
};

// An output file could not be written or committed.
class SinkError : public std::runtime_error {
public:
    explicit SinkError(const std::string& what) : std::runtime_error("pycroscope: " + what) {}
};

} // namespace pycroscope
