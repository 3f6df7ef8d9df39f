#pragma once
// Runs a program the way the CLI tests need it: argv in a working directory,
// stdin from /dev/null, stdout and stderr captured through files in that
// directory, killed after a timeout so a hung child fails its test instead of
// the suite. POSIX only.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace pycroscope_test {

namespace fs = std::filesystem;

struct ProcessResult {
    int status = -1; // exit status, or 128 + signal
    std::string out;
    std::string err;
};

inline std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// Runs argv[0] with argv in cwd, stdin from /dev/null; kills it (by pid)
// after timeout so a hung child fails the test instead of the suite.
inline ProcessResult run_process(const std::vector<std::string>& argv, const fs::path& cwd,
                                 std::chrono::seconds timeout = std::chrono::seconds(120)) {
    const fs::path out_path = cwd / ".stdout";
    const fs::path err_path = cwd / ".stderr";
    const std::string out_file = out_path.string(), err_file = err_path.string(), dir = cwd.string();
    std::vector<char*> args;
    for (const auto& a : argv) {
        args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    // Under ASan, LeakSanitizer reports libpython's own never-freed allocations
    // (`import threading` is enough), which would change the exit status.
    std::vector<std::string> env_storage;
    bool asan_options = false;
    for (char** e = environ; *e != nullptr; ++e) {
        std::string entry = *e;
        if (entry.rfind("ASAN_OPTIONS=", 0) == 0) {
            entry += ":detect_leaks=0";
            asan_options = true;
        }
        env_storage.push_back(std::move(entry));
    }
    if (!asan_options) {
        env_storage.push_back("ASAN_OPTIONS=detect_leaks=0");
    }
    std::vector<char*> env;
    for (auto& entry : env_storage) {
        env.push_back(entry.data());
    }
    env.push_back(nullptr);
    std::fflush(stdout);
    std::fflush(stderr);
    const pid_t pid = ::fork();
    if (pid == 0) {
        // Only async-signal-safe calls until exec.
        const int in = ::open("/dev/null", O_RDONLY);
        const int out = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int err = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0 || err < 0 || ::chdir(dir.c_str()) != 0 || ::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 ||
            ::dup2(err, 2) < 0) {
            ::_exit(126);
        }
        ::execve(args[0], args.data(), env.data());
        ::_exit(127);
    }
    ProcessResult run;
    if (pid < 0) {
        ADD_FAILURE() << "fork failed";
        return run;
    }
    int wstatus = 0;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const pid_t done = ::waitpid(pid, &wstatus, WNOHANG);
        if (done == pid) {
            break;
        }
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &wstatus, 0);
            ADD_FAILURE() << "timed out: " << argv[0] << " " << (argv.size() > 1 ? argv[1] : "");
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    run.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
    run.out = read_file(out_path);
    run.err = read_file(err_path);
    return run;
}

} // namespace pycroscope_test
