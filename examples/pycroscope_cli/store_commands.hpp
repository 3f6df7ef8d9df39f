#pragma once
// The session store's commands: `pycroscope list`, `show`, `export-session`,
// `import-session`, `compare`, `history`, and `profile --runs N` (the script
// run N times, each in a fresh process, into one session). Python-free: they
// read session folders (include/pycroscope/store/; docs/cli.md, docs/compare.md).

#include <cstdint>
#include <string>

// True when argv holds one of these commands (`profile` only with --runs).
bool is_store_command(int argc, char** argv);
// Runs it; the exit status: 0; 1 (compare: a significant regression; profile
// --runs: a run failed); 2 (usage error or input that cannot be read).
int run_store_command(int argc, char** argv);
// The commands' lines of `pycroscope --help`.
extern const char* const store_commands_overview;

// Wall clock now, for the manifest's start time.
std::int64_t unix_time_ns();
// Writes dir/manifest.json for a finished `pycroscope profile` run: argv as
// the command got it, SCRIPT at argv[script_index]. A failure is a warning
// on stderr (the profile itself is written).
void record_session_manifest(const std::string& dir, int argc, char** argv, int script_index,
                             const char* python_version, std::int64_t start_unix_ns, int exit_status);
// The same, done when this process exits, with the status it exits with
// (glibc's on_exit; elsewhere atexit and exit_status -1): Python's
// sys.exit() ends the process inside Py_RunMain, never returning to main.
// Not in a fork child, and not when the process dies by a signal or _exit.
void record_session_manifest_at_exit(const std::string& dir, int argc, char** argv, int script_index,
                                     const char* python_version, std::int64_t start_unix_ns);
