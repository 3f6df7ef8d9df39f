#include "pattern_flags.hpp"

#include <string_view>

const char* const pattern_flags_usage =
    "  --no-patterns      no findings, recommendations or health score (no source analysis)\n"
    "  --patterns LIST    detectors, comma-separated: all (default), performance, maintainability, or\n"
    "                     kinds (nested_loop, membership_in_list, string_concat_in_loop, list_front_ops,\n"
    "                     loop_invariant, redundant_call, global_in_loop, exception_in_loop,\n"
    "                     high_complexity, dead_code, unused_import); -KIND turns one off\n"
    "  --pattern-severity LEVEL  report findings of this severity and above: low (default), medium,\n"
    "                     high, critical\n"
    "  --patterns-include-libraries  analyse the standard library and installed packages too\n";

int parse_pattern_flag(int argc, char** argv, int& i, pycroscope::analysis::FindingOptions& options,
                       std::string& error) {
    const std::string_view arg = argv[i];
    if (arg == "--no-patterns") {
        options.enabled = false;
        return 1;
    }
    if (arg == "--patterns-include-libraries") {
        options.include_libraries = true;
        return 1;
    }
    for (const std::string_view name : {std::string_view("--patterns"), std::string_view("--pattern-severity")}) {
        std::string value;
        if (arg.size() > name.size() && arg.substr(0, name.size()) == name && arg[name.size()] == '=') {
            value = std::string(arg.substr(name.size() + 1));
        } else if (arg == name) {
            if (i + 1 >= argc) {
                error = std::string(name) + " needs a value";
                return -1;
            }
            value = argv[++i];
        } else {
            continue;
        }
        if (name == "--patterns") {
            if (value.empty()) {
                error = "--patterns needs a list such as performance or nested_loop,dead_code";
                return -1;
            }
            options.enabled = true;
            return options.select(value, error) ? 1 : -1;
        }
        if (!pycroscope::analysis::parse_severity(value, options.threshold)) {
            error = "--pattern-severity needs a level: low, medium, high or critical";
            return -1;
        }
        return 1;
    }
    return 0;
}
