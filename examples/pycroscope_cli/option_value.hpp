#pragma once
// Command-line parsing shared by the command's subcommands.

#include <string>
#include <string_view>

namespace pycroscope_cli {

// The value of --name VALUE or --name=VALUE at argv[i]: 1 found (i moves past
// VALUE), 0 not this option, -1 missing value.
inline int option_value(int argc, char** argv, int& i, std::string_view name, std::string& value) {
    const std::string_view arg = argv[i];
    if (arg.size() > name.size() && arg.substr(0, name.size()) == name && arg[name.size()] == '=') {
        value = std::string(arg.substr(name.size() + 1));
        return 1;
    }
    if (arg == name) {
        if (i + 1 >= argc) {
            return -1;
        }
        value = argv[++i];
        return 1;
    }
    return 0;
}

} // namespace pycroscope_cli
