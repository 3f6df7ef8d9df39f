// The session store's commands (see store_commands.hpp and docs/cli.md).

#include "store_commands.hpp"

#include "option_value.hpp"

#include "pycroscope/analysis/profile_comparison.hpp"
#include "pycroscope/analysis/step_detection.hpp"
#include "pycroscope/report/history_page.hpp"
#include "pycroscope/store/comparison_report.hpp"
#include "pycroscope/store/manifest.hpp"
#include "pycroscope/store/session_archive.hpp"
#include "pycroscope/store/session_runs.hpp"
#include "pycroscope/store/session_store.hpp"
#include "pycroscope/version.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/wait.h>
#include <unistd.h>
#endif

namespace {

namespace fs = std::filesystem;
namespace st = pycroscope::store;
namespace an = pycroscope::analysis;

constexpr int exit_regression = 1;
constexpr int exit_usage = 2;

const char* const list_usage =
    "usage: pycroscope list [--sessions-dir DIR] [--script SCRIPT]\n"
    "\n"
    "Lists the stored sessions, newest first, one line each: id, start time, duration, runs,\n"
    "exit status, git commit (+ when dirty), script and arguments.\n"
    "\n"
    "options:\n"
    "  --sessions-dir DIR  the store (default: ./profiling_results)\n"
    "  --script SCRIPT     only the sessions of this script\n";

const char* const show_usage =
    "usage: pycroscope show [--sessions-dir DIR] [--top N] ID|DIR\n"
    "\n"
    "Prints a stored session's manifest and summary: runs, wall time, peak memory and the\n"
    "functions with the most self time (medians over the runs).\n";

const char* const export_session_usage =
    "usage: pycroscope export-session [--sessions-dir DIR] ID|DIR FILE\n"
    "\n"
    "Packs a session folder (every file, run sub-folders included) into one archive file\n"
    "(format in docs/cli.md).\n";

const char* const import_session_usage =
    "usage: pycroscope import-session FILE [DIR]\n"
    "\n"
    "Unpacks an archive written by export-session into DIR/<id> (default DIR:\n"
    "./profiling_results). A damaged archive is refused and nothing is written.\n";

const char* const compare_usage =
    "usage: pycroscope compare [OPTIONS] BASE CANDIDATE\n"
    "       pycroscope compare --runs N [OPTIONS] [PROFILE OPTIONS] BASE_SCRIPT [ARGS...]\n"
    "                          --versus CANDIDATE_SCRIPT [ARGS...]\n"
    "\n"
    "Compares two sessions: per function self and total time, calls and allocated bytes;\n"
    "whole-run wall time and peak memory. BASE and CANDIDATE are session folders (or ids in\n"
    "the store), or a script path: that script's latest session (when both name the same\n"
    "script: its second latest against its latest). A change counts when its median moves\n"
    "beyond the threshold; with several runs a side (profile --runs N) it is significant when\n"
    "the Mann-Whitney U test also gives p < alpha (docs/compare.md).\n"
    "\n"
    "With --versus, both scripts are profiled here, N runs each, interleaved (base, candidate,\n"
    "candidate, base, ...) so that a change in the machine's load falls on both sides alike;\n"
    "the sessions go to OUT/base and OUT/candidate (--output-dir OUT) or into the store, and are\n"
    "compared as above. PROFILE OPTIONS are those of `pycroscope profile`, given to every run.\n"
    "\n"
    "options:\n"
    "  --json              print JSON: {\"regressions\", \"improvements\", \"summary\"}\n"
    "  --threshold PCT     minimum change of the median, in percent (default 5)\n"
    "  --alpha A           significance level (default 0.01)\n"
    "  --min-share PCT     skip functions under this share of the wall time (default 1)\n"
    "  --sessions-dir DIR  the store (default: ./profiling_results)\n"
    "\n"
    "exit status: 0 no significant regression; 1 a significant regression; 2 usage or input error\n";

const char* const history_usage =
    "usage: pycroscope history [--sessions-dir DIR] [--top N] [--html FILE] SCRIPT\n"
    "\n"
    "The trend of a script's stored sessions, oldest first: wall time, peak memory and the top\n"
    "functions' self time (medians over each session's runs), and for each series the session\n"
    "where a step (a regression or an improvement) began (docs/compare.md). --html FILE also\n"
    "writes the same as a page of charts with the steps drawn on them.\n";

const char* const runs_usage =
    "usage: pycroscope profile --runs N [OPTIONS] SCRIPT [ARGS...]\n"
    "\n"
    "Runs SCRIPT N times, each in a fresh `pycroscope profile` process, into run-1 .. run-N\n"
    "of one session folder (--output-dir, or a new one under ./profiling_results), and writes\n"
    "runs.json (every run's wall time, peak memory and per-function times) and manifest.json.\n";

int fail(std::string message) {
    const std::string prefix = "pycroscope: ";
    if (message.compare(0, prefix.size(), prefix) == 0) {
        message.erase(0, prefix.size());
    }
    std::fprintf(stderr, "pycroscope: %s\n", message.c_str());
    return exit_usage;
}

int usage(const std::string& message, const char* text) {
    std::fprintf(stderr, "pycroscope: %s\n\n%s", message.c_str(), text);
    return exit_usage;
}

using pycroscope_cli::option_value;

bool parse_number(const std::string& text, double& out) {
    char* end = nullptr;
    out = std::strtod(text.c_str(), &end);
    return !text.empty() && end != nullptr && *end == '\0' && std::isfinite(out);
}

std::string local_time(std::int64_t unix_ns, const char* format) {
    const std::time_t t = static_cast<std::time_t>(unix_ns / 1000000000);
    std::tm tm{};
    localtime_r(&t, &tm);
    char text[40];
    std::strftime(text, sizeof text, format, &tm);
    return text;
}

std::string seconds(double ns) {
    char text[32];
    std::snprintf(text, sizeof text, "%.3f s", ns / 1e9);
    return text;
}

std::string mebibytes(double bytes) {
    char text[32];
    std::snprintf(text, sizeof text, "%.2f MiB", bytes / (1024.0 * 1024.0));
    return text;
}

std::string git_label(const st::Manifest& m) {
    if (!m.git.known) {
        return "-";
    }
    return m.git.commit.substr(0, 10) + (m.git.dirty ? "+" : "");
}

std::string command_line(const st::Manifest& m) {
    std::string line = m.script;
    for (const auto& a : m.args) {
        line += " " + a;
    }
    return line;
}

// Medians over runs of one function's measure.
double median_of(const std::vector<st::StoredRun>& runs, const an::FunctionId& id, double an::FunctionMeasures::*field) {
    std::vector<double> values;
    for (const auto& r : runs) {
        const auto it = r.measures.functions.find(id);
        values.push_back(it == r.measures.functions.end() ? 0.0 : it->second.*field);
    }
    return an::median(values);
}

double median_of(const std::vector<st::StoredRun>& runs, double an::RunMeasures::*field) {
    std::vector<double> values;
    for (const auto& r : runs) {
        values.push_back(r.measures.*field);
    }
    return an::median(values);
}

// The top functions of a session by median self time.
std::vector<an::FunctionId> top_functions(const std::vector<st::StoredRun>& runs, std::size_t top) {
    std::vector<std::pair<double, an::FunctionId>> all;
    for (const auto& r : runs) {
        for (const auto& f : r.measures.functions) {
            if (std::none_of(all.begin(), all.end(), [&](const auto& e) { return e.second == f.first; })) {
                all.emplace_back(median_of(runs, f.first, &an::FunctionMeasures::self_ns), f.first);
            }
        }
    }
    std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    std::vector<an::FunctionId> out;
    for (std::size_t i = 0; i < all.size() && i < top; ++i) {
        out.push_back(all[i].second);
    }
    return out;
}

// ---- list ------------------------------------------------------------------

int run_list(int argc, char** argv) {
    std::string dir = st::default_sessions_dir, script;
    for (int i = 2; i < argc; ++i) {
        const std::string_view arg = argv[i];
        std::string value;
        int m = 0;
        if (arg == "-h" || arg == "--help") {
            std::fputs(list_usage, stdout);
            return 0;
        } else if ((m = option_value(argc, argv, i, "--sessions-dir", value)) != 0) {
            if (m < 0 || value.empty()) {
                return usage("--sessions-dir needs a folder", list_usage);
            }
            dir = value;
        } else if ((m = option_value(argc, argv, i, "--script", value)) != 0) {
            if (m < 0 || value.empty()) {
                return usage("--script needs a script path", list_usage);
            }
            script = value;
        } else {
            return usage("unexpected argument '" + std::string(arg) + "'", list_usage);
        }
    }
    st::SessionStore store(dir);
    const auto sessions = script.empty() ? store.sessions() : store.sessions_of(script);
    for (const auto& p : store.problems()) {
        std::fprintf(stderr, "pycroscope: warning: skipped %s\n", p.c_str());
    }
    for (const auto& s : sessions) {
        const st::Manifest& m = s.manifest;
        const std::string status = m.finished ? "exit " + std::to_string(m.exit_status) : "unfinished";
        std::printf("%-20s  %s  %9s  %3llu run%s  %-10s  %-11s  %s\n", s.id.c_str(),
                    local_time(m.start_unix_ns, "%Y-%m-%d %H:%M:%S").c_str(),
                    m.finished ? seconds(static_cast<double>(m.duration_ns)).c_str() : "?",
                    static_cast<unsigned long long>(m.runs), m.runs == 1 ? " " : "s", status.c_str(),
                    git_label(m).c_str(), command_line(m).c_str());
    }
    if (sessions.empty()) {
        std::fprintf(stderr, "pycroscope: no sessions in '%s'%s\n", dir.c_str(),
                     script.empty() ? "" : (" for " + st::normalise_script_path(script)).c_str());
    }
    return 0;
}

// ---- show ------------------------------------------------------------------

int run_show(int argc, char** argv) {
    std::string dir = st::default_sessions_dir, id;
    std::size_t top = 10;
    for (int i = 2; i < argc; ++i) {
        const std::string_view arg = argv[i];
        std::string value;
        int m = 0;
        if (arg == "-h" || arg == "--help") {
            std::fputs(show_usage, stdout);
            return 0;
        } else if ((m = option_value(argc, argv, i, "--sessions-dir", value)) != 0) {
            if (m < 0 || value.empty()) {
                return usage("--sessions-dir needs a folder", show_usage);
            }
            dir = value;
        } else if ((m = option_value(argc, argv, i, "--top", value)) != 0) {
            double n = 0;
            if (m < 0 || !parse_number(value, n) || n < 0) {
                return usage("--top needs a number", show_usage);
            }
            top = static_cast<std::size_t>(n);
        } else if (!arg.empty() && arg[0] == '-') {
            return usage("unknown option '" + std::string(arg) + "'", show_usage);
        } else if (id.empty()) {
            id = std::string(arg);
        } else {
            return usage("one session at a time", show_usage);
        }
    }
    if (id.empty()) {
        return usage("missing session ID", show_usage);
    }
    const st::StoredSession s = st::SessionStore(dir).find(id);
    const auto runs = st::load_session_runs(s.path);
    const st::Manifest& m = s.manifest;
    std::printf("session:   %s (%s)\n", s.id.c_str(), s.path.c_str());
    if (!m.script.empty()) {
        std::printf("script:    %s\n", command_line(m).c_str());
        std::printf("cwd:       %s\n", m.cwd.c_str());
        if (m.finished) {
            std::printf("started:   %s, %s, exit status %d\n",
                        local_time(m.start_unix_ns, "%Y-%m-%d %H:%M:%S").c_str(),
                        seconds(static_cast<double>(m.duration_ns)).c_str(), m.exit_status);
        } else {
            std::printf("started:   %s, unfinished: the run is still going, or was killed before it could exit\n",
                        local_time(m.start_unix_ns, "%Y-%m-%d %H:%M:%S").c_str());
        }
        std::string options;
        for (const auto& o : m.options) {
            options += (options.empty() ? "" : " ") + o;
        }
        std::printf("options:   %s\n", options.empty() ? "(none)" : options.c_str());
        std::printf("python:    %s, pycroscope %s, host %s\n", m.python_version.c_str(), m.pycroscope_version.c_str(),
                    m.host.c_str());
        std::printf("git:       %s\n", m.git.known ? (m.git.commit + (m.git.dirty ? " (dirty)" : "")).c_str()
                                                   : "(not in a git work tree)");
    } else {
        std::printf("(no manifest.json: a session written without the store)\n");
    }
    std::printf("runs:      %zu\n", runs.size());
    std::vector<double> walls;
    for (const auto& r : runs) {
        walls.push_back(r.measures.wall_ns);
    }
    std::printf("wall time: median %s (min %s, max %s)\n", seconds(an::median(walls)).c_str(),
                seconds(*std::min_element(walls.begin(), walls.end())).c_str(),
                seconds(*std::max_element(walls.begin(), walls.end())).c_str());
    const double peak = median_of(runs, &an::RunMeasures::peak_bytes);
    std::printf("peak memory: %s\n", peak > 0 ? mebibytes(peak).c_str() : "(not tracked)");
    const auto functions = top_functions(runs, top);
    if (!functions.empty()) {
        std::printf("%12s %12s %10s  %s\n", "self", "total", "calls", "function");
    }
    for (const auto& f : functions) {
        std::printf("%12s %12s %10.0f  %s  %s:%u\n",
                    seconds(median_of(runs, f, &an::FunctionMeasures::self_ns)).c_str(),
                    seconds(median_of(runs, f, &an::FunctionMeasures::total_ns)).c_str(),
                    median_of(runs, f, &an::FunctionMeasures::calls), f.name.c_str(), f.file.c_str(), f.line);
    }
    return 0;
}

// ---- export-session / import-session -------------------------------------

int run_export_session(int argc, char** argv) {
    std::string dir = st::default_sessions_dir;
    std::vector<std::string> positional;
    for (int i = 2; i < argc; ++i) {
        const std::string_view arg = argv[i];
        std::string value;
        int m = 0;
        if (arg == "-h" || arg == "--help") {
            std::fputs(export_session_usage, stdout);
            return 0;
        } else if ((m = option_value(argc, argv, i, "--sessions-dir", value)) != 0) {
            if (m < 0 || value.empty()) {
                return usage("--sessions-dir needs a folder", export_session_usage);
            }
            dir = value;
        } else if (!arg.empty() && arg[0] == '-' && arg != "-") {
            return usage("unknown option '" + std::string(arg) + "'", export_session_usage);
        } else {
            positional.emplace_back(arg);
        }
    }
    if (positional.size() != 2) {
        return usage("needs a session and a file", export_session_usage);
    }
    const st::StoredSession s = st::SessionStore(dir).find(positional[0]);
    st::write_archive_file(s.path, positional[1]);
    std::fprintf(stderr, "pycroscope: session %s written to %s\n", s.id.c_str(), positional[1].c_str());
    return 0;
}

int run_import_session(int argc, char** argv) {
    std::vector<std::string> positional;
    for (int i = 2; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            std::fputs(import_session_usage, stdout);
            return 0;
        }
        if (!arg.empty() && arg[0] == '-' && arg != "-") {
            return usage("unknown option '" + std::string(arg) + "'", import_session_usage);
        }
        positional.emplace_back(arg);
    }
    if (positional.empty() || positional.size() > 2) {
        return usage("needs an archive file and optionally a folder", import_session_usage);
    }
    const std::string target =
        st::unpack_archive_file(positional[0], positional.size() == 2 ? positional[1] : st::default_sessions_dir);
    std::printf("%s\n", target.c_str());
    return 0;
}

// ---- compare ---------------------------------------------------------------

struct Side {
    std::string label;
    std::string path;
    st::Manifest manifest;
};

// A session folder or id; or a script: its latest session (skip: how many
// of the newest to pass over).
Side resolve_side(st::SessionStore& store, const std::string& what, std::size_t skip) {
    std::error_code error;
    if (fs::is_regular_file(what, error)) {
        const auto sessions = store.sessions_of(what);
        if (sessions.size() <= skip) {
            throw st::StoreError(std::to_string(sessions.size()) + " session" + (sessions.size() == 1 ? "" : "s") +
                                 " of " + st::normalise_script_path(what) + " in '" + store.dir() + "'; " +
                                 std::to_string(skip + 1) + " needed");
        }
        const auto& s = sessions[skip];
        return Side{s.id, s.path, s.manifest};
    }
    const st::StoredSession s = store.find(what);
    return Side{s.path, s.path, s.manifest};
}

// ---- profile --runs N ------------------------------------------------------

// Options of `pycroscope profile` that take a value (main.cpp's parse()).
bool takes_value(std::string_view option) {
    static const char* const with_value[] = {"--output-dir", "--memory-sample", "--system-interval", "--alert",
                                             "--sinks",      "--backend",       "--on-conflict",       "--rate",
                                             "--top",        "--runs",          "--complexity",        "--patterns",
                                             "--pattern-severity", "--clock"};
    for (const char* name : with_value) {
        if (option == name) {
            return true;
        }
    }
    return false;
}

// Index of SCRIPT in argv of `profile`, and whether --runs is among the options.
int find_script(int argc, char** argv, bool& has_runs) {
    has_runs = false;
    int i = 2;
    for (; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--") {
            return i + 1;
        }
        if (arg.empty() || arg[0] != '-' || arg == "-") {
            return i;
        }
        if (arg == "--runs" || arg.rfind("--runs=", 0) == 0) {
            has_runs = true;
        }
        if (takes_value(arg)) {
            ++i;
        }
    }
    return i;
}

std::string self_executable(const char* argv0) {
#if defined(__linux__)
    std::error_code error;
    const fs::path self = fs::read_symlink("/proc/self/exe", error);
    if (!error) {
        return self.string();
    }
#endif
    return argv0;
}

fs::path new_session_dir() {
    const fs::path root(st::default_sessions_dir);
    fs::create_directories(root);
    const std::string stamp = local_time(unix_time_ns(), "%Y%m%d-%H%M%S");
    for (int attempt = 1; attempt <= 1000; ++attempt) {
        const fs::path candidate = root / (attempt == 1 ? stamp : stamp + "-" + std::to_string(attempt));
        std::error_code error;
        if (fs::create_directory(candidate, error)) {
            return candidate;
        }
        if (error) {
            throw st::StoreError("cannot create '" + candidate.string() + "': " + error.message());
        }
    }
    throw st::StoreError("cannot create a session folder under '" + root.string() + "'");
}

// Runs args to completion; its exit status (128 + signal), or -1. With
// stdout_to_stderr the child's stdout goes to our stderr (compare keeps its
// own stdout for the comparison).
int run_child(const std::vector<std::string>& args, bool stdout_to_stderr = false) {
#if defined(__unix__) || defined(__APPLE__)
    std::vector<char*> argv;
    for (const auto& a : args) {
        argv.push_back(const_cast<char*>(a.c_str()));
    }
    argv.push_back(nullptr);
    std::fflush(stdout);
    std::fflush(stderr);
    const pid_t pid = ::fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        if (stdout_to_stderr && ::dup2(2, 1) < 0) {
            ::_exit(126);
        }
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            return -1;
        }
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
#else
    (void)args;
    return -1;
#endif
}

// One side's runs: SCRIPT run again and again, each time in a fresh
// `pycroscope profile` process, into run-1 .. run-N of one session folder.
class RunSeries {
public:
    RunSeries(std::string self, fs::path session, std::vector<std::string> options, std::vector<std::string> command,
              bool stdout_to_stderr = false)
        : self_(std::move(self)), session_(std::move(session)), options_(std::move(options)),
          command_(std::move(command)), start_(unix_time_ns()), stdout_to_stderr_(stdout_to_stderr) {}

    const fs::path& session() const noexcept { return session_; }
    const std::vector<st::StoredRun>& stored() const noexcept { return stored_; }

    // Run number k (from 1); label names the side in messages.
    void run(long k, long total, const char* label) {
        const std::string run_dir = "run-" + std::to_string(k);
        std::vector<std::string> child{self_, "profile", "--top", "0", "--output-dir", (session_ / run_dir).string()};
        child.insert(child.end(), options_.begin(), options_.end());
        child.emplace_back("--");
        child.insert(child.end(), command_.begin(), command_.end());
        const int status = run_child(child, stdout_to_stderr_);
        std::fprintf(stderr, "pycroscope: %srun %ld of %ld: exit status %d\n", label, k, total, status);
        if (status != 0 && first_failure_ == 0) {
            first_failure_ = status < 0 ? 1 : status;
        }
        st::StoredRun run;
        run.dir = run_dir;
        run.exit_status = status;
        try {
            run.measures = st::read_run_measures((session_ / run_dir / st::session_file_name).string());
        } catch (const st::StoreError& e) {
            std::fprintf(stderr, "pycroscope: warning: %srun %ld left out: %s\n", label, k, e.detail().c_str());
            return;
        }
        stored_.push_back(std::move(run));
    }

    // Writes runs.json and the session's manifest (the command line of
    // `profile --runs N` that runs this side alone); the exit status of the
    // first failed run, 0, or 1 when no run wrote a readable session.json.
    int finish(long runs) {
        const std::int64_t end = unix_time_ns();
        if (stored_.empty()) {
            std::fprintf(stderr, "pycroscope: no run in %s wrote a readable session.json\n", session_.string().c_str());
            return first_failure_ != 0 ? first_failure_ : 1;
        }
        st::write_runs(session_.string(), stored_);
        std::vector<std::string> words{"pycroscope", "profile", "--runs", std::to_string(runs)};
        words.insert(words.end(), options_.begin(), options_.end());
        words.emplace_back("--");
        const int script_index = static_cast<int>(words.size());
        words.insert(words.end(), command_.begin(), command_.end());
        std::vector<char*> argv;
        for (auto& w : words) {
            argv.push_back(w.data());
        }
        argv.push_back(nullptr);
        record_session_manifest(session_.string(), static_cast<int>(words.size()), argv.data(), script_index, "",
                                start_, first_failure_);
        try {
            // The runs' interpreter, as their own manifests recorded it.
            st::Manifest m = st::read_manifest(session_.string());
            const fs::path first = session_ / stored_.front().dir;
            if (fs::exists(first / st::manifest_file_name)) {
                m.python_version = st::read_manifest(first.string()).python_version;
            }
            m.duration_ns = end - start_;
            m.runs = stored_.size();
            st::write_manifest(session_.string(), m);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "pycroscope: warning: manifest not completed: %s\n", e.what());
        }
        std::vector<double> walls;
        for (const auto& r : stored_) {
            walls.push_back(r.measures.wall_ns);
        }
        std::fprintf(stderr, "pycroscope: %zu runs: wall time median %s (min %s, max %s); session %s\n",
                     stored_.size(), seconds(an::median(walls)).c_str(),
                     seconds(*std::min_element(walls.begin(), walls.end())).c_str(),
                     seconds(*std::max_element(walls.begin(), walls.end())).c_str(), session_.string().c_str());
        return first_failure_;
    }

private:
    std::string self_;
    fs::path session_;
    std::vector<std::string> options_; // `pycroscope profile` options, given to every run
    std::vector<std::string> command_; // SCRIPT [ARGS...]
    std::int64_t start_;
    bool stdout_to_stderr_;
    std::vector<st::StoredRun> stored_;
    int first_failure_ = 0;
};

// A run folder: DIR (created) or, when empty, a new session in the store.
fs::path make_session_dir(const std::string& dir) {
    if (dir.empty()) {
        return new_session_dir();
    }
    std::error_code error;
    fs::create_directories(dir, error);
    if (error || !fs::is_directory(dir)) {
        throw st::StoreError("cannot create output directory '" + dir + "'");
    }
    return fs::path(dir);
}

// Parses the `profile` options of argv[first, end) into options (those
// passed to every run), runs and output_dir; a usage message, or empty.
std::string parse_run_options(int argc, char** argv, int first, int end, long& runs, std::string& output_dir,
                              std::vector<std::string>& options) {
    for (int i = first; i < end; ++i) {
        const std::string_view arg = argv[i];
        std::string value;
        int m = 0;
        if (arg == "--") {
            break;
        }
        if ((m = option_value(argc, argv, i, "--runs", value)) != 0) {
            char* stop = nullptr;
            runs = m > 0 ? std::strtol(value.c_str(), &stop, 10) : 0;
            if (m < 0 || value.empty() || stop == nullptr || *stop != '\0' || runs < 1 || runs > 1000) {
                return "--runs needs a number of runs from 1 to 1000";
            }
        } else if ((m = option_value(argc, argv, i, "--output-dir", value)) != 0) {
            if (m < 0 || value.empty()) {
                return "--output-dir needs a directory";
            }
            output_dir = value;
        } else if (arg == "--sample") {
            return "--runs compares traced times; it cannot be combined with --sample";
        } else {
            options.emplace_back(arg);
            if (takes_value(arg) && i + 1 < end) {
                options.emplace_back(argv[++i]);
            }
        }
    }
    return {};
}

int run_profile_runs(int argc, char** argv) {
    bool has_runs = false;
    const int script_index = find_script(argc, argv, has_runs);
    long runs = 0;
    std::string output_dir;
    std::vector<std::string> options;
    const std::string problem = parse_run_options(argc, argv, 2, script_index, runs, output_dir, options);
    if (!problem.empty()) {
        return usage(problem, runs_usage);
    }
    if (script_index >= argc) {
        return usage("missing SCRIPT", runs_usage);
    }
    if (!fs::is_regular_file(argv[script_index])) {
        return fail("can't open file '" + std::string(argv[script_index]) + "'");
    }
    RunSeries series(self_executable(argv[0]), make_session_dir(output_dir), options,
                     std::vector<std::string>(argv + script_index, argv + argc));
    for (long k = 1; k <= runs; ++k) {
        series.run(k, runs, "");
    }
    return series.finish(runs);
}

// Compares two resolved sessions and prints the result; compare's exit status.
int compare_sides(const Side& base, const Side& candidate, st::ComparisonLabels labels,
                  const an::CompareOptions& options, bool as_json) {
    if (!base.manifest.script.empty() && !candidate.manifest.script.empty() &&
        base.manifest.script != candidate.manifest.script) {
        labels.warnings.push_back("the sessions ran different scripts (" + base.manifest.script + ", " +
                                  candidate.manifest.script + "): functions are matched by name, file and line");
    }
    const auto base_runs = st::load_session_runs(base.path);
    const auto candidate_runs = st::load_session_runs(candidate.path);
    for (const auto* side : {&base_runs, &candidate_runs}) {
        for (const auto& r : *side) {
            if (r.exit_status != 0) {
                labels.warnings.push_back("a run of " + std::string(side == &base_runs ? "the base" : "the candidate") +
                                          " exited with status " + std::to_string(r.exit_status));
                break;
            }
        }
    }
    const an::Comparison result = an::compare_runs(st::measures_of(base_runs), st::measures_of(candidate_runs), options);
    if (as_json) {
        std::fputs(st::comparison_json(result, labels).c_str(), stdout);
        for (const auto& w : labels.warnings) {
            std::fprintf(stderr, "pycroscope: warning: %s\n", w.c_str());
        }
    } else {
        std::fputs(st::comparison_text(result, labels).c_str(), stdout);
    }
    return result.has_significant_regression() ? exit_regression : 0;
}

struct CompareFlags {
    bool as_json = false;
    std::string sessions_dir = st::default_sessions_dir;
    an::CompareOptions options;
};

// Takes argv[i] (and its value) when it is one of compare's own options:
// 1 taken, 0 not one of them, -1 a usage error (message set).
int compare_flag(int argc, char** argv, int& i, CompareFlags& flags, std::string& message) {
    const std::string_view arg = argv[i];
    std::string value;
    int m = 0;
    double number = 0;
    if (arg == "--json") {
        flags.as_json = true;
    } else if ((m = option_value(argc, argv, i, "--sessions-dir", value)) != 0) {
        if (m < 0 || value.empty()) {
            message = "--sessions-dir needs a folder";
            return -1;
        }
        flags.sessions_dir = value;
    } else if ((m = option_value(argc, argv, i, "--threshold", value)) != 0) {
        if (m < 0 || !parse_number(value, number) || number < 0 || number > 1000) {
            message = "--threshold needs a percentage from 0 to 1000";
            return -1;
        }
        flags.options.threshold = number / 100.0;
    } else if ((m = option_value(argc, argv, i, "--alpha", value)) != 0) {
        if (m < 0 || !parse_number(value, number) || number <= 0 || number >= 1) {
            message = "--alpha needs a number between 0 and 1 (e.g. 0.01)";
            return -1;
        }
        flags.options.alpha = number;
    } else if ((m = option_value(argc, argv, i, "--min-share", value)) != 0) {
        if (m < 0 || !parse_number(value, number) || number < 0 || number > 100) {
            message = "--min-share needs a percentage from 0 to 100";
            return -1;
        }
        flags.options.min_share = number / 100.0;
    } else {
        return 0;
    }
    return 1;
}

// compare --runs N ... BASE_SCRIPT [ARGS] --versus CANDIDATE_SCRIPT [ARGS]:
// both sides profiled here, their runs interleaved (base, candidate,
// candidate, base, ...), so a change in the machine's load over the minutes
// the runs take falls on both sides alike instead of on one.
int run_interleaved_compare(int argc, char** argv, int versus) {
    CompareFlags flags;
    std::vector<std::string> words; // `profile` options
    int base_index = versus;
    for (int i = 2; i < versus; ++i) {
        std::string message;
        const int taken = compare_flag(argc, argv, i, flags, message);
        if (taken < 0) {
            return usage(message, compare_usage);
        }
        if (taken > 0) {
            continue;
        }
        const std::string_view arg = argv[i];
        if (arg == "--") {
            base_index = i + 1;
            break;
        }
        if (arg.empty() || arg[0] != '-' || arg == "-") {
            base_index = i;
            break;
        }
        words.emplace_back(arg);
        if (arg.find('=') == std::string_view::npos && takes_value(arg) && i + 1 < versus) {
            words.emplace_back(argv[++i]);
        }
    }
    std::vector<char*> word_argv;
    for (auto& w : words) {
        word_argv.push_back(w.data());
    }
    word_argv.push_back(nullptr);
    long runs = 0;
    std::string output_dir;
    std::vector<std::string> options;
    const std::string problem = parse_run_options(static_cast<int>(words.size()), word_argv.data(), 0,
                                                  static_cast<int>(words.size()), runs, output_dir, options);
    if (!problem.empty()) {
        return usage(problem, compare_usage);
    }
    if (runs < 1) {
        return usage("--versus needs --runs N (runs a side)", compare_usage);
    }
    if (base_index >= versus) {
        return usage("missing BASE_SCRIPT before --versus", compare_usage);
    }
    if (versus + 1 >= argc) {
        return usage("missing CANDIDATE_SCRIPT after --versus", compare_usage);
    }
    for (const int script : {base_index, versus + 1}) {
        if (!fs::is_regular_file(argv[script])) {
            return fail("can't open file '" + std::string(argv[script]) + "'");
        }
    }
    const std::string self = self_executable(argv[0]);
    RunSeries base(self, make_session_dir(output_dir.empty() ? "" : (fs::path(output_dir) / "base").string()),
                   options, std::vector<std::string>(argv + base_index, argv + versus), true);
    RunSeries candidate(self,
                        make_session_dir(output_dir.empty() ? "" : (fs::path(output_dir) / "candidate").string()),
                        options, std::vector<std::string>(argv + versus + 1, argv + argc), true);
    for (long k = 1; k <= runs; ++k) {
        if (k % 2 == 1) {
            base.run(k, runs, "base ");
            candidate.run(k, runs, "candidate ");
        } else {
            candidate.run(k, runs, "candidate ");
            base.run(k, runs, "base ");
        }
    }
    if (base.finish(runs) != 0 && base.stored().empty()) {
        return fail("no run of the base wrote a session");
    }
    if (candidate.finish(runs) != 0 && candidate.stored().empty()) {
        return fail("no run of the candidate wrote a session");
    }
    const std::string base_dir = base.session().string(), candidate_dir = candidate.session().string();
    const Side base_side{base_dir, base_dir, st::read_manifest(base_dir)};
    const Side candidate_side{candidate_dir, candidate_dir, st::read_manifest(candidate_dir)};
    return compare_sides(base_side, candidate_side, st::ComparisonLabels{base_dir, candidate_dir, {}}, flags.options,
                         flags.as_json);
}

int run_compare(int argc, char** argv) {
    for (int i = 2; i < argc; ++i) {
        if (std::string_view(argv[i]) == "--versus") {
            return run_interleaved_compare(argc, argv, i);
        }
    }
    CompareFlags flags;
    std::vector<std::string> positional;
    for (int i = 2; i < argc; ++i) {
        const std::string_view arg = argv[i];
        std::string message;
        const int taken = compare_flag(argc, argv, i, flags, message);
        if (taken < 0) {
            return usage(message, compare_usage);
        }
        if (arg == "-h" || arg == "--help") {
            std::fputs(compare_usage, stdout);
            return 0;
        } else if (taken == 0 && (arg == "--runs" || arg.rfind("--runs=", 0) == 0)) {
            return usage("--runs goes with --versus: compare --runs N BASE_SCRIPT --versus CANDIDATE_SCRIPT",
                         compare_usage);
        } else if (taken == 0 && !arg.empty() && arg[0] == '-') {
            return usage("unknown option '" + std::string(arg) + "'", compare_usage);
        } else if (taken == 0) {
            positional.emplace_back(arg);
        }
    }
    if (positional.size() != 2) {
        return usage("needs BASE and CANDIDATE", compare_usage);
    }
    st::SessionStore store(flags.sessions_dir);
    std::error_code error;
    const bool same_script = fs::is_regular_file(positional[0], error) && fs::is_regular_file(positional[1], error) &&
                             st::normalise_script_path(positional[0]) == st::normalise_script_path(positional[1]);
    const Side base = resolve_side(store, positional[0], same_script ? 1 : 0);
    const Side candidate = resolve_side(store, positional[1], 0);
    return compare_sides(base, candidate, st::ComparisonLabels{base.label, candidate.label, {}}, flags.options,
                         flags.as_json);
}

// ---- history ---------------------------------------------------------------

void print_step(const char* what, const std::vector<std::string>& ids, const std::vector<double>& series) {
    const an::Step step = an::detect_step(series);
    if (series.size() < 4) {
        std::printf("  %-40s too few sessions for step detection (4 needed)\n", what);
    } else if (!step.found) {
        std::printf("  %-40s no step\n", what);
    } else {
        std::printf("  %-40s %s began at %s: %+.1f%% (median before %.4g, after %.4g; score %.1f)\n", what,
                    step.change > 0 ? "regression" : "improvement", ids[step.index].c_str(), step.change * 100.0,
                    step.before, step.after, step.score);
    }
}

int run_history(int argc, char** argv) {
    std::string dir = st::default_sessions_dir, script, html;
    std::size_t top = 3;
    for (int i = 2; i < argc; ++i) {
        const std::string_view arg = argv[i];
        std::string value;
        int m = 0;
        if (arg == "-h" || arg == "--help") {
            std::fputs(history_usage, stdout);
            return 0;
        } else if ((m = option_value(argc, argv, i, "--sessions-dir", value)) != 0) {
            if (m < 0 || value.empty()) {
                return usage("--sessions-dir needs a folder", history_usage);
            }
            dir = value;
        } else if ((m = option_value(argc, argv, i, "--top", value)) != 0) {
            double n = 0;
            if (m < 0 || !parse_number(value, n) || n < 0) {
                return usage("--top needs a number", history_usage);
            }
            top = static_cast<std::size_t>(n);
        } else if ((m = option_value(argc, argv, i, "--html", value)) != 0) {
            if (m < 0 || value.empty()) {
                return usage("--html needs a file", history_usage);
            }
            html = value;
        } else if (!arg.empty() && arg[0] == '-') {
            return usage("unknown option '" + std::string(arg) + "'", history_usage);
        } else if (script.empty()) {
            script = std::string(arg);
        } else {
            return usage("one script at a time", history_usage);
        }
    }
    if (script.empty()) {
        return usage("missing SCRIPT", history_usage);
    }
    st::SessionStore store(dir);
    auto sessions = store.sessions_of(script);
    if (sessions.empty()) {
        return fail("no sessions of " + st::normalise_script_path(script) + " in '" + dir + "'");
    }
    std::reverse(sessions.begin(), sessions.end()); // oldest first
    std::vector<std::vector<st::StoredRun>> runs;
    std::vector<std::string> ids;
    for (const auto& s : sessions) {
        try {
            runs.push_back(st::load_session_runs(s.path));
            ids.push_back(s.id);
        } catch (const st::StoreError& e) {
            std::fprintf(stderr, "pycroscope: warning: skipped %s\n", e.detail().c_str());
        }
    }
    if (runs.empty()) {
        return fail("no readable sessions of " + st::normalise_script_path(script));
    }
    const auto functions = top_functions(runs.back(), top);
    std::printf("history of %s (%zu sessions, oldest first; medians over each session's runs)\n",
                st::normalise_script_path(script).c_str(), runs.size());
    std::printf("%-20s %-19s %-11s %4s %11s %11s", "session", "started", "git", "runs", "wall", "peak");
    for (std::size_t f = 0; f < functions.size(); ++f) {
        std::printf(" %11s", ("self#" + std::to_string(f + 1)).c_str());
    }
    std::printf("\n");
    std::vector<double> walls, peaks;
    std::vector<std::vector<double>> selfs(functions.size());
    for (std::size_t k = 0; k < runs.size(); ++k) {
        const st::Manifest& m = sessions[k].manifest;
        walls.push_back(median_of(runs[k], &an::RunMeasures::wall_ns));
        peaks.push_back(median_of(runs[k], &an::RunMeasures::peak_bytes));
        std::printf("%-20s %-19s %-11s %4zu %11s %11s", ids[k].c_str(),
                    local_time(m.start_unix_ns, "%Y-%m-%d %H:%M:%S").c_str(), git_label(m).c_str(), runs[k].size(),
                    seconds(walls.back()).c_str(), peaks.back() > 0 ? mebibytes(peaks.back()).c_str() : "-");
        for (std::size_t f = 0; f < functions.size(); ++f) {
            selfs[f].push_back(median_of(runs[k], functions[f], &an::FunctionMeasures::self_ns));
            std::printf(" %11s", seconds(selfs[f].back()).c_str());
        }
        std::printf("\n");
    }
    for (std::size_t f = 0; f < functions.size(); ++f) {
        std::printf("self#%zu: %s  %s:%u\n", f + 1, functions[f].name.c_str(), functions[f].file.c_str(),
                    functions[f].line);
    }
    std::printf("steps:\n");
    using pycroscope::report::HistoryUnit;
    pycroscope::report::HistoryPage page;
    page.script = st::normalise_script_path(script);
    for (std::size_t k = 0; k < runs.size(); ++k) {
        const st::Manifest& m = sessions[k].manifest;
        page.sessions.push_back(
            {ids[k], local_time(m.start_unix_ns, "%Y-%m-%d %H:%M:%S"), git_label(m), runs[k].size()});
    }
    const auto add_series = [&](std::string name, HistoryUnit unit, const std::vector<double>& values) {
        print_step(name.c_str(), ids, values);
        page.series.push_back({std::move(name), unit, values, an::detect_step(values)});
    };
    add_series("wall time", HistoryUnit::nanoseconds, walls);
    if (std::any_of(peaks.begin(), peaks.end(), [](double p) { return p > 0; })) {
        add_series("peak memory", HistoryUnit::bytes, peaks);
    }
    for (std::size_t f = 0; f < functions.size(); ++f) {
        add_series("self time of " + functions[f].name, HistoryUnit::nanoseconds, selfs[f]);
    }
    if (!html.empty()) {
        pycroscope::report::write_history_page(html, page);
        std::printf("wrote %s\n", html.c_str());
    }
    return 0;
}

} // namespace

const char* const store_commands_overview =
    "  pycroscope profile --runs N [OPTIONS] SCRIPT [ARGS...]\n"
    "                     runs SCRIPT N times (fresh processes) into one session\n"
    "  pycroscope list [--sessions-dir DIR] [--script SCRIPT]\n"
    "                     lists the stored sessions, newest first\n"
    "  pycroscope show ID\n"
    "                     prints a stored session's summary\n"
    "  pycroscope export-session ID FILE | import-session FILE [DIR]\n"
    "                     packs a session into one file / unpacks it\n"
    "  pycroscope compare [--json] [--threshold PCT] [--alpha A] BASE CANDIDATE\n"
    "                     compares two sessions (exit 1 on a significant regression)\n"
    "  pycroscope compare --runs N [OPTIONS] BASE_SCRIPT [ARGS] --versus CANDIDATE_SCRIPT [ARGS]\n"
    "                     profiles both, runs interleaved, and compares them\n"
    "  pycroscope history SCRIPT\n"
    "                     the trend of a script's sessions and where a step began\n";

bool is_store_command(int argc, char** argv) {
    if (argc < 2) {
        return false;
    }
    const std::string_view verb = argv[1];
    if (verb == "profile") {
        bool has_runs = false;
        find_script(argc, argv, has_runs);
        return has_runs;
    }
    return verb == "list" || verb == "show" || verb == "export-session" || verb == "import-session" ||
           verb == "compare" || verb == "history";
}

int run_store_command(int argc, char** argv) {
    const std::string_view verb = argv[1];
    try {
        if (verb == "profile") {
            return run_profile_runs(argc, argv);
        }
        if (verb == "list") {
            return run_list(argc, argv);
        }
        if (verb == "show") {
            return run_show(argc, argv);
        }
        if (verb == "export-session") {
            return run_export_session(argc, argv);
        }
        if (verb == "import-session") {
            return run_import_session(argc, argv);
        }
        if (verb == "compare") {
            return run_compare(argc, argv);
        }
        if (verb == "history") {
            return run_history(argc, argv);
        }
    } catch (const std::exception& error) {
        return fail(error.what());
    }
    return fail("unknown command '" + std::string(verb) + "'");
}

std::int64_t unix_time_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

namespace {

// The manifest of a run started at start_unix_ns, before its end is known.
st::Manifest begin_manifest(int argc, char** argv, int script_index, const char* python_version,
                            std::int64_t start_unix_ns) {
    st::Manifest m;
    m.script = st::normalise_script_path(argv[script_index]);
    for (int i = script_index + 1; i < argc; ++i) {
        m.args.emplace_back(argv[i]);
    }
    std::error_code error;
    m.cwd = fs::current_path(error).string();
    m.start_unix_ns = start_unix_ns;
    m.python_version = python_version;
    m.pycroscope_version = PYCROSCOPE_VERSION_STRING;
    for (int i = 2; i < script_index; ++i) {
        if (std::string_view(argv[i]) != "--") {
            m.options.emplace_back(argv[i]);
        }
    }
    m.host = st::host_name();
    return m;
}

void write_manifest_or_warn(const std::string& dir, const st::Manifest& m) {
    try {
        st::write_manifest(dir, m);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "pycroscope: warning: manifest.json not written in %s: %s\n", dir.c_str(), e.what());
    }
}

} // namespace

void record_session_manifest(const std::string& dir, int argc, char** argv, int script_index,
                             const char* python_version, std::int64_t start_unix_ns, int exit_status) {
    try {
        st::Manifest m = begin_manifest(argc, argv, script_index, python_version, start_unix_ns);
        m.git = st::git_state(m.script);
        m.duration_ns = unix_time_ns() - start_unix_ns;
        m.exit_status = exit_status;
        write_manifest_or_warn(dir, m);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "pycroscope: warning: manifest.json not written in %s: %s\n", dir.c_str(), e.what());
    }
}

namespace {

struct PendingManifest {
    std::string dir;
    st::Manifest manifest;
    st::GitProbe git;
    long long pid = 0;
    bool armed = false;
};
PendingManifest pending_manifest;

void write_pending_manifest(int status) {
    PendingManifest& p = pending_manifest;
    if (!p.armed || static_cast<long long>(::getpid()) != p.pid) {
        return; // a fork child exiting: the session is the parent's
    }
    p.armed = false;
    p.manifest.git = p.git.finish();
    p.manifest.duration_ns = unix_time_ns() - p.manifest.start_unix_ns;
    p.manifest.exit_status = status;
    p.manifest.finished = true;
    write_manifest_or_warn(p.dir, p.manifest);
}

#if defined(__GLIBC__)
void manifest_on_exit(int status, void*) { write_pending_manifest(status); }
#else
void manifest_at_exit() { write_pending_manifest(-1); }
#endif

} // namespace

void record_session_manifest_at_exit(const std::string& dir, int argc, char** argv, int script_index,
                                     const char* python_version, std::int64_t start_unix_ns) {
    try {
        pending_manifest.manifest = begin_manifest(argc, argv, script_index, python_version, start_unix_ns);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "pycroscope: warning: manifest.json not written in %s: %s\n", dir.c_str(), e.what());
        return;
    }
    // git's dirty check runs beside the profiled program; its answer is in
    // the manifest written at exit.
    pending_manifest.git = st::GitProbe::start(pending_manifest.manifest.script);
    pending_manifest.dir = dir;
    pending_manifest.pid = static_cast<long long>(::getpid());
    pending_manifest.armed = true;
    // Written now as well, unfinished: a run killed by a signal (SIGKILL, a
    // crash) never reaches exit, and its folder still says what it was.
    st::Manifest started = pending_manifest.manifest;
    started.git = pending_manifest.git.state();
    started.finished = false;
    started.exit_status = -1;
    write_manifest_or_warn(dir, started);
#if defined(__GLIBC__)
    ::on_exit(&manifest_on_exit, nullptr);
#else
    std::atexit(&manifest_at_exit);
#endif
}
