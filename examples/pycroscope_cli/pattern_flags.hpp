#pragma once
// The pattern-pass flags shared by `pycroscope profile` and `pycroscope
// report` (analysis/findings.hpp): --no-patterns, --patterns LIST,
// --pattern-severity LEVEL, --patterns-include-libraries.

#include "pycroscope/analysis/findings.hpp"

#include <string>

// The flags' lines for a usage text.
extern const char* const pattern_flags_usage;

// Reads the pattern flag at argv[i] (and its value, advancing i): 1 read,
// 0 not a pattern flag, -1 a bad value (error says why).
int parse_pattern_flag(int argc, char** argv, int& i, pycroscope::analysis::FindingOptions& options,
                       std::string& error);
