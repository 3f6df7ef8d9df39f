#pragma once
// `pycroscope report` and `pycroscope export`: a recorded capture
// (capture.pycro) replayed into outputs, with no Python and no re-run
// (profile/replay_profile.hpp; docs/cli.md).

// True when argv[1] names one of these commands.
bool is_replay_command(const char* verb);
// Runs the command of argv[1]; the exit status: 0, 2 (usage error or a capture
// that cannot be read: nothing written), 3 (an output could not be written).
int run_replay_command(int argc, char** argv);
// The commands' lines of `pycroscope --help`.
extern const char* const replay_commands_overview;
