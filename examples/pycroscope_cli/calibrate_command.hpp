#pragma once
// `pycroscope calibrate`: the clock, the per-event cost of each tracing
// backend, and an accuracy check of overhead compensation on a known
// workload (python/calibration/, docs/cli.md).

// True when argv[1] is "calibrate".
bool is_calibrate_command(int argc, char** argv);
// Runs it; the exit status: 0, 1 (the interpreter or the check failed), 2 (usage error).
int run_calibrate_command(int argc, char** argv);
// The command's lines of `pycroscope --help`.
extern const char* const calibrate_command_overview;
