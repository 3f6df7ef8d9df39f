// `pycroscope report` and `pycroscope export` (see replay_commands.hpp).
// They read the capture, never run the script; `report` starts an
// interpreter only to read the profiled sources again (source_analysis.hpp).

#include "replay_commands.hpp"

#include "pattern_flags.hpp"
#include "source_analysis.hpp"

#include "option_value.hpp"

#include "pycroscope/profile/replay_profile.hpp"
#include "pycroscope/report/terminal_summary.hpp"
#include "pycroscope/report/terminal_text.hpp"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

namespace {

constexpr int exit_usage = 2;
constexpr int exit_output_error = 3;

const char* const report_usage =
    "usage: pycroscope report [--output-dir OUT] [--sinks LIST] [PATTERN OPTIONS] DIR|FILE.pycro\n"
    "\n"
    "Replays a capture (DIR/capture.pycro, recorded by `pycroscope profile --sinks ...,capture`)\n"
    "without running the script again, into session.json, stacks.folded, memory.folded (when\n"
    "the capture tracked memory), then report.html and report.md. A capture cut short (the run\n"
    "was killed) is replayed up to its last whole chunk, and said so. The profiled sources are\n"
    "read again for the findings (the same as the live run's while the files are unchanged).\n"
    "\n"
    "options:\n"
    "  --output-dir OUT   where to write (default: the capture's own folder)\n"
    "  --sinks LIST       comma-separated among json, folded, chrome (trace.json)\n"
    "                     (default: json,folded)\n"
    "%s"
    "  -h, --help         show this help\n"
    "\n"
    "exit status: 0; 2 for a usage error or a capture that cannot be read (nothing written);\n"
    "3 when an output could not be written\n";

const char* const export_usage =
    "usage: pycroscope export --format FMT [-o FILE] DIR|FILE.pycro\n"
    "\n"
    "Replays a capture (DIR/capture.pycro) into one exporter format, without running the\n"
    "script again.\n"
    "\n"
    "options:\n"
    "  --format FMT       chrome, folded, perfetto, speedscope, pprof, pprof-alloc, callgrind\n"
    "  -o, --output FILE  the file to write (default: the format's usual name in the capture's\n"
    "                     folder: trace.json, stacks.folded, trace.perfetto-trace,\n"
    "                     profile.speedscope.json, profile.pb.gz, alloc.pb.gz, callgrind.out)\n"
    "  -h, --help         show this help\n"
    "\n"
    "exit status: 0; 2 for a usage error or a capture that cannot be read (nothing written);\n"
    "3 when the output could not be written\n";

// One line on stderr: `pycroscope: message`.
int fail(std::string message) {
    const std::string prefix = "pycroscope: ";
    if (message.compare(0, prefix.size(), prefix) == 0) {
        message.erase(0, prefix.size()); // ConfigError and CaptureError messages carry it already
    }
    std::fprintf(stderr, "pycroscope: %s\n", pycroscope::report::terminal_text(message).c_str());
    return exit_usage;
}

using pycroscope_cli::option_value;

int print_outcome(const pycroscope::profile::ReplayOutcome& outcome) {
    using pycroscope::report::terminal_text;
    const auto& result = outcome.result;
    std::string out = "pycroscope: replayed " + terminal_text(outcome.capture) + ": " +
                      std::to_string(result.events) + " events in " + std::to_string(result.chunks) + " chunk(s)";
    out += outcome.sampled ? ", a sampling capture\n" : "\n";
    if (!result.complete) {
        out += "pycroscope: the capture was cut at byte " + std::to_string(result.cut_offset) +
               " (no trailer: the run did not finish writing it); every whole chunk was replayed\n";
    }
    for (const auto& error : result.errors) {
        out += "pycroscope: error: " + terminal_text(error) + "\n";
    }
    for (const auto& error : outcome.report_errors) {
        out += "pycroscope: error: " + terminal_text(error) + "\n";
    }
    if (!outcome.written.empty()) {
        out += "pycroscope: wrote\n";
        for (const auto& file : outcome.written) {
            out += "  " + terminal_text(file) + "\n";
        }
    }
    if (!outcome.not_written.empty()) {
        out += "pycroscope: NOT written\n";
        for (const auto& file : outcome.not_written) {
            out += "  " + terminal_text(file) + "\n";
        }
    }
    out += pycroscope::report::terminal_answers(outcome.answers);
    std::fputs(out.c_str(), stdout);
    return outcome.not_written.empty() ? 0 : exit_output_error;
}

int run_report(int argc, char** argv) {
    pycroscope::profile::ReplayOptions options;
    std::string source;
    for (int i = 2; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            std::printf(report_usage, pattern_flags_usage);
            return 0;
        }
        std::string value;
        int found = parse_pattern_flag(argc, argv, i, options.patterns, value);
        if (found < 0) {
            return fail(value + " (see pycroscope report --help)");
        }
        if (found > 0) {
            continue;
        }
        found = option_value(argc, argv, i, "--output-dir", value);
        if (found != 0) {
            if (found < 0 || value.empty()) {
                return fail("--output-dir needs a directory (see pycroscope report --help)");
            }
            options.output_dir = value;
            continue;
        }
        found = option_value(argc, argv, i, "--sinks", value);
        if (found != 0) {
            if (found < 0 || value.empty()) {
                return fail("--sinks needs a list such as json,folded,chrome (see pycroscope report --help)");
            }
            options.json = options.folded = options.chrome = false;
            std::size_t at = 0;
            while (at <= value.size()) {
                const std::size_t end = std::min(value.find(',', at), value.size());
                const std::string sink = value.substr(at, end - at);
                if (sink == "json") {
                    options.json = true;
                } else if (sink == "folded") {
                    options.folded = true;
                } else if (sink == "chrome") {
                    options.chrome = true;
                } else {
                    return fail("unknown sink '" + sink + "' in --sinks (accepted: json, folded, chrome)");
                }
                at = end + 1;
            }
            continue;
        }
        if (arg.size() > 1 && arg[0] == '-') {
            return fail("unknown option '" + std::string(arg) + "' (see pycroscope report --help)");
        }
        if (!source.empty()) {
            return fail("one capture at a time: '" + source + "' and '" + std::string(arg) + "'");
        }
        source = std::string(arg);
    }
    if (source.empty()) {
        return fail("missing DIR or FILE.pycro (see pycroscope report --help)");
    }
    options.source_facts = offline_source_facts();
    int status = exit_usage;
    try {
        status = print_outcome(pycroscope::profile::replay_report(source, options));
    } catch (const std::exception& error) {
        status = fail(error.what());
    }
    finish_offline_source_facts();
    return status;
}

int run_export(int argc, char** argv) {
    std::string format, output, source;
    for (int i = 2; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            std::fputs(export_usage, stdout);
            return 0;
        }
        std::string value;
        int found = option_value(argc, argv, i, "--format", value);
        if (found != 0) {
            if (found < 0 || value.empty()) {
                return fail("--format needs a format among " + pycroscope::sinks::export_format_list());
            }
            format = value;
            continue;
        }
        found = option_value(argc, argv, i, "--output", value);
        if (found == 0) {
            found = option_value(argc, argv, i, "-o", value);
        }
        if (found != 0) {
            if (found < 0 || value.empty()) {
                return fail("-o needs a file name (see pycroscope export --help)");
            }
            output = value;
            continue;
        }
        if (arg.size() > 1 && arg[0] == '-') {
            return fail("unknown option '" + std::string(arg) + "' (see pycroscope export --help)");
        }
        if (!source.empty()) {
            return fail("one capture at a time: '" + source + "' and '" + std::string(arg) + "'");
        }
        source = std::string(arg);
    }
    if (format.empty()) {
        return fail("missing --format (one of " + pycroscope::sinks::export_format_list() + ")");
    }
    if (source.empty()) {
        return fail("missing DIR or FILE.pycro (see pycroscope export --help)");
    }
    try {
        return print_outcome(pycroscope::profile::replay_export(source, format, output));
    } catch (const std::exception& error) {
        return fail(error.what());
    }
}

} // namespace

const char* const replay_commands_overview =
    "  pycroscope report [--output-dir OUT] [--sinks LIST] [PATTERN OPTIONS] DIR|FILE.pycro\n"
    "                     session.json, stacks.folded, report.html, report.md from a capture\n"
    "  pycroscope export --format FMT [-o FILE] DIR|FILE.pycro\n"
    "                     one exporter format (perfetto, speedscope, pprof, callgrind, ...) from a capture\n";

bool is_replay_command(const char* verb) {
    const std::string_view name = verb;
    return name == "report" || name == "export";
}

int run_replay_command(int argc, char** argv) {
    try {
        return std::string_view(argv[1]) == "report" ? run_report(argc, argv) : run_export(argc, argv);
    } catch (const std::exception& error) {
        return fail(error.what());
    }
}
