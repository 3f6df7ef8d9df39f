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
#include <sys/resource.h>
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

// The environment a child gets: ours, with LeakSanitizer off. Under ASan it
// reports libpython's own never-freed allocations (`import threading` is
// enough), which would change the exit status.
inline std::vector<std::string> child_environment() {
    std::vector<std::string> entries;
    bool asan_options = false;
    for (char** e = environ; *e != nullptr; ++e) {
        std::string entry = *e;
        if (entry.rfind("ASAN_OPTIONS=", 0) == 0) {
            entry += ":detect_leaks=0";
            asan_options = true;
        }
        entries.push_back(std::move(entry));
    }
    if (!asan_options) {
        entries.push_back("ASAN_OPTIONS=detect_leaks=0");
    }
    return entries;
}

// A started child: argv[0] with argv in cwd, stdin from /dev/null, stdout and
// stderr into cwd/.stdout and cwd/.stderr. A test can signal it while it runs;
// wait() kills it (by pid) after the timeout so a hung child fails the test
// instead of the suite. file_size_limit (RLIMIT_FSIZE, with SIGXFSZ ignored)
// makes writes past it fail with EFBIG, as on a full disk.
class ChildProcess {
public:
    ChildProcess(const std::vector<std::string>& argv, const fs::path& cwd, rlim_t file_size_limit = RLIM_INFINITY)
        : cwd_(cwd), name_(argv.empty() ? std::string() : argv.front()) {
        const std::string out_file = (cwd / ".stdout").string(), err_file = (cwd / ".stderr").string();
        const std::string dir = cwd.string();
        std::vector<char*> args;
        for (const auto& a : argv) {
            args.push_back(const_cast<char*>(a.c_str()));
        }
        args.push_back(nullptr);
        std::vector<std::string> env_storage = child_environment();
        std::vector<char*> env;
        for (auto& entry : env_storage) {
            env.push_back(entry.data());
        }
        env.push_back(nullptr);
        std::fflush(stdout);
        std::fflush(stderr);
        pid_ = ::fork();
        if (pid_ == 0) {
            // Only async-signal-safe calls until exec.
            const int in = ::open("/dev/null", O_RDONLY);
            const int out = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            const int err = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (in < 0 || out < 0 || err < 0 || ::chdir(dir.c_str()) != 0 || ::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 ||
                ::dup2(err, 2) < 0) {
                ::_exit(126);
            }
            if (file_size_limit != RLIM_INFINITY) {
                ::signal(SIGXFSZ, SIG_IGN);
                struct rlimit limit {file_size_limit, file_size_limit};
                ::setrlimit(RLIMIT_FSIZE, &limit);
            }
            ::execve(args[0], args.data(), env.data());
            ::_exit(127);
        }
        if (pid_ < 0) {
            ADD_FAILURE() << "fork failed";
        }
    }
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    pid_t pid() const noexcept { return pid_; }
    void signal(int signo) const {
        if (pid_ > 0) {
            ::kill(pid_, signo);
        }
    }

    ProcessResult wait(std::chrono::seconds timeout = std::chrono::seconds(120)) {
        ProcessResult run;
        if (pid_ <= 0) {
            return run;
        }
        int wstatus = 0;
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (::waitpid(pid_, &wstatus, WNOHANG) != pid_) {
            if (std::chrono::steady_clock::now() > deadline) {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, &wstatus, 0);
                ADD_FAILURE() << "timed out: " << name_;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        pid_ = -1;
        run.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
        run.out = read_file(cwd_ / ".stdout");
        run.err = read_file(cwd_ / ".stderr");
        return run;
    }

private:
    fs::path cwd_;
    std::string name_;
    pid_t pid_ = -1;
};

// Runs argv to completion (see ChildProcess).
inline ProcessResult run_process(const std::vector<std::string>& argv, const fs::path& cwd,
                                 std::chrono::seconds timeout = std::chrono::seconds(120)) {
    return ChildProcess(argv, cwd).wait(timeout);
}

} // namespace pycroscope_test
