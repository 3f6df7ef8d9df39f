#pragma once
// pycroscope.profile() without a host handler: the standard profile, with
// its options read from profile()'s keyword arguments. Including this header
// installs it as the builtin module's fallback handler.

#include "pycroscope/profile/standard_profile.hpp"
#include "pycroscope/python/module/module.hpp"

#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

namespace pycroscope {
namespace profile {

using python::OptionError;
using python::PythonErrorSet;
using python::ProfileResult;
using python::ProfileHandler;
namespace pydetail = ::pycroscope::python::detail;

// Reads the keyword arguments of pycroscope.profile(**options) for the
// default handler. Accepted: output_dir (str/PathLike/None), the modes
// minimal and full, lines, c_calls, memory, exceptions (bools), memory_sample
// (bytes), compensate (bool: subtract the tracer's own cost), backend ("auto", "eval_frame", "profile"), sinks ("json,folded,chrome"
// or an iterable of those names), sample, rate, and the pattern pass's
// patterns (bool or the command's --patterns list), pattern_severity and
// patterns_include_libraries. GIL held.
inline ProfileOptions profile_options_from_kwargs(PyObject* options) {
    ProfileOptions result;
    result.config.process_name = "python";
    if (options == nullptr) {
        return result;
    }
    Py_ssize_t pos = 0;
    PyObject* key = nullptr;
    PyObject* value = nullptr;
    while (PyDict_Next(options, &pos, &key, &value)) {
        const std::string name(pydetail::str_arg(key, "option name"));
        if (name == "output_dir") {
            result.output_dir = value == Py_None ? std::string() : pydetail::path_arg(value);
        } else if (name == "minimal") {
            result.minimal = pydetail::truth_arg(value);
        } else if (name == "full") {
            result.full = pydetail::truth_arg(value);
        } else if (name == "compensate") {
            result.compensate_overhead = pydetail::truth_arg(value);
        } else if (name == "memory") {
            if (value != Py_None) {
                result.memory = pydetail::truth_arg(value);
            }
        } else if (name == "memory_sample") {
            // Bytes per allocation record (0: every allocation); None: the mode's choice.
            if (value != Py_None) {
                const long long bytes = PyLong_Check(value) ? PyLong_AsLongLong(value) : -1;
                if (bytes == -1 && PyErr_Occurred()) {
                    throw PythonErrorSet();
                }
                if (!PyLong_Check(value) || bytes < 0) {
                    throw ConfigError("memory_sample must be a number of bytes, 0 or more (0: every allocation)");
                }
                result.memory_sample_bytes = static_cast<std::uint64_t>(bytes);
            }
        } else if (name == "exceptions") {
            if (value != Py_None) {
                result.exceptions = pydetail::truth_arg(value);
            }
        } else if (name == "lines") {
            result.lines = pydetail::truth_arg(value);
        } else if (name == "c_calls") {
            if (value != Py_None) {
                result.c_calls = pydetail::truth_arg(value);
            }
        } else if (name == "backend") {
            const std::string_view backend = pydetail::str_arg(value, "backend");
            if (backend == "auto" || backend == "automatic") {
                result.backend = Backend::automatic;
            } else if (backend == "eval_frame") {
                result.backend = Backend::eval_frame;
            } else if (backend == "profile") {
                result.backend = Backend::profile;
            } else if (backend == "monitoring" && PYCROSCOPE_HAS_SYS_MONITORING) {
                result.backend = Backend::monitoring;
            } else if (backend == "monitoring") {
                throw ConfigError("the monitoring backend needs Python 3.12 or newer (this is " PY_VERSION ")");
            } else {
                throw ConfigError("unknown backend '" + std::string(backend) +
                                  "' (accepted: auto, eval_frame, profile, monitoring)");
            }
        } else if (name == "sample") {
            result.sample = pydetail::truth_arg(value);
        } else if (name == "rate") {
            if (!PyLong_Check(value) && !PyFloat_Check(value)) {
                PyErr_Format(PyExc_TypeError, "profile(): rate must be a number (Hz), not %.100s",
                             Py_TYPE(value)->tp_name);
                throw PythonErrorSet();
            }
            result.sample_rate = PyFloat_AsDouble(value);
            if (result.sample_rate == -1.0 && PyErr_Occurred()) {
                throw PythonErrorSet();
            }
            python::detail::validate_rate(result.sample_rate);
        } else if (name == "sinks") {
            std::vector<std::string> names;
            if (PyUnicode_Check(value)) {
                const std::string text(pydetail::str_arg(value, "sinks"));
                std::size_t start = 0;
                while (start <= text.size()) {
                    const std::size_t comma = std::min(text.find(',', start), text.size());
                    names.push_back(text.substr(start, comma - start));
                    start = comma + 1;
                }
            } else {
                PyObject* iterator = PyObject_GetIter(value);
                if (iterator == nullptr) {
                    throw PythonErrorSet();
                }
                PyObject* item = nullptr;
                try {
                    while ((item = PyIter_Next(iterator)) != nullptr) {
                        names.emplace_back(pydetail::str_arg(item, "a sink name"));
                        Py_DECREF(item);
                        item = nullptr;
                    }
                } catch (...) {
                    Py_XDECREF(item);
                    Py_DECREF(iterator);
                    throw;
                }
                Py_DECREF(iterator);
                if (PyErr_Occurred()) {
                    throw PythonErrorSet();
                }
            }
            result.clear_sinks();
            for (const auto& sink : names) {
                if (!result.select_sink(sink)) {
                    throw ConfigError("unknown sink '" + sink + "' (accepted: " + ProfileOptions::sink_names + ")");
                }
            }
        } else if (name == "patterns") {
            // False or None: no pattern pass; True: every detector; a str as
            // the command's --patterns ("performance", "nested_loop,-dead_code").
            if (value == Py_None || value == Py_False) {
                result.patterns.enabled = false;
            } else if (value == Py_True) {
                result.patterns.enabled = true;
            } else {
                const std::string list(pydetail::str_arg(value, "patterns"));
                std::string error;
                if (list.empty() || !result.patterns.select(list, error)) {
                    throw ConfigError(list.empty() ? "patterns needs a list such as 'performance' or 'nested_loop,dead_code'"
                                                   : error);
                }
                result.patterns.enabled = true;
            }
        } else if (name == "pattern_severity") {
            const std::string level(pydetail::str_arg(value, "pattern_severity"));
            if (!analysis::parse_severity(level, result.patterns.threshold)) {
                throw ConfigError("unknown pattern_severity '" + level + "' (accepted: low, medium, high, critical)");
            }
        } else if (name == "patterns_include_libraries") {
            result.patterns.include_libraries = pydetail::truth_arg(value);
        } else {
            throw OptionError("profile() got an unexpected keyword argument '" + name +
                              "' (accepted: output_dir, minimal, full, lines, c_calls, memory, memory_sample, exceptions, "
                              "backend, sinks, sample, rate, compensate, "
                              "patterns, pattern_severity, patterns_include_libraries)");
        }
    }
    (void)result.tracer_options(); // contradictions are errors now, not at start
    return result;
}


namespace detail {

inline std::unique_ptr<StandardProfile>& module_profile() {
    static auto* profile = new std::unique_ptr<StandardProfile>(); // outlives atexit handlers
    return *profile;
}

inline void default_check(PyObject* options) { (void)profile_options_from_kwargs(options); }

inline std::string default_start(PyObject* options) {
    std::unique_ptr<StandardProfile>& standard = module_profile();
    if (standard != nullptr && standard->running()) {
        throw SessionError("pycroscope.profile() is already running; profiles do not nest");
    }
    if (::pycroscope::detail::session_slot_taken().load()) {
        throw SessionError("another session is already recording in this process; stop it first");
    }
    ProfileOptions parsed = profile_options_from_kwargs(options);
    const bool default_dir = parsed.output_dir.empty();
    auto profile = std::make_unique<StandardProfile>(std::move(parsed));
    try {
        profile->start();
    } catch (...) {
        if (default_dir) {
            std::error_code ignored;
            std::filesystem::remove(profile->output_dir(), ignored); // only if still empty
        }
        throw;
    }
    standard = std::move(profile);
    return standard->output_dir();
}

inline ProfileResult default_stop() {
    std::unique_ptr<StandardProfile> profile = std::move(module_profile());
    if (profile == nullptr) {
        return {};
    }
    ProfileResult result{profile->collectors(), profile->files()};
    profile->stop();
    return result;
}

} // namespace detail

// Makes the standard profile what pycroscope.profile() runs when the host set no handler.
inline void install_module_profile() {
    python::set_fallback_profile_handler({&detail::default_check, &detail::default_start, &detail::default_stop, [] {
        if (detail::module_profile() != nullptr) {
            detail::default_stop();
        }
    }});
}

namespace detail {
inline const bool module_profile_installed = (install_module_profile(), true);
} // namespace detail

} // namespace profile
} // namespace pycroscope
