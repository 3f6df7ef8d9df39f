#pragma once
// The git commit and dirty state of the work tree holding a script, for the
// manifest. The commit is read from the repository's files (HEAD, the ref,
// packed-refs): no process. The dirty check is one `git diff --quiet HEAD`
// started by GitProbe::start() and read by finish(), so a caller can overlap
// it with its own work (the command runs the whole profiled program
// meanwhile); it runs detached, so the program never sees a child of ours.

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
extern char** environ; // POSIX: the process's environment, for posix_spawnp
#endif

namespace pycroscope {
namespace store {

struct GitState {
    bool known = false; // the script is inside a git work tree
    std::string commit;
    bool dirty = false;
};

namespace detail {

inline std::string first_line(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::string line;
    if (in) {
        std::getline(in, line);
    }
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) {
        line.pop_back();
    }
    return line;
}

inline bool is_object_name(const std::string& text) {
    if (text.size() != 40 && text.size() != 64) { // SHA-1 or SHA-256
        return false;
    }
    for (const char c : text) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

// The git directory of the work tree holding dir (.git, or the directory a
// .git file names for worktrees and submodules), and its common directory.
inline bool find_git_dir(std::filesystem::path dir, std::filesystem::path& git_dir, std::filesystem::path& common) {
    std::error_code error;
    for (;;) {
        const std::filesystem::path dot_git = dir / ".git";
        if (std::filesystem::is_directory(dot_git, error)) {
            git_dir = dot_git;
            break;
        }
        if (std::filesystem::is_regular_file(dot_git, error)) {
            const std::string line = first_line(dot_git);
            if (line.rfind("gitdir: ", 0) != 0) {
                return false;
            }
            git_dir = std::filesystem::path(line.substr(8));
            if (git_dir.is_relative()) {
                git_dir = dir / git_dir;
            }
            break;
        }
        if (!dir.has_parent_path() || dir.parent_path() == dir) {
            return false;
        }
        dir = dir.parent_path();
    }
    common = git_dir;
    const std::string common_line = first_line(git_dir / "commondir");
    if (!common_line.empty()) {
        common = std::filesystem::path(common_line).is_relative() ? git_dir / common_line
                                                                  : std::filesystem::path(common_line);
    }
    return true;
}

// The commit HEAD names, from the files; empty when they say something this
// reader does not follow (then git itself is asked).
inline std::string read_head_commit(const std::filesystem::path& git_dir, const std::filesystem::path& common) {
    std::string head = first_line(git_dir / "HEAD");
    for (int depth = 0; depth < 5 && head.rfind("ref: ", 0) == 0; ++depth) {
        const std::string ref = head.substr(5);
        if (ref.find("..") != std::string::npos) {
            return {};
        }
        std::string target = first_line(git_dir / ref);
        if (target.empty()) {
            target = first_line(common / ref);
        }
        if (target.empty()) {
            std::ifstream packed(common / "packed-refs", std::ios::binary);
            std::string line;
            while (std::getline(packed, line)) {
                const std::size_t space = line.find(' ');
                if (space != std::string::npos && line.compare(space + 1, std::string::npos, ref) == 0) {
                    target = line.substr(0, space);
                    break;
                }
            }
        }
        head = target;
    }
    return is_object_name(head) ? head : std::string();
}

// The first line a command prints (empty when it fails).
inline std::string git_output(const std::string& dir, const char* arguments, bool& ok) {
    ok = false;
#if defined(__unix__) || defined(__APPLE__)
    std::string command = "git -C '";
    for (char c : dir) {
        command += c == '\'' ? std::string("'\\''") : std::string(1, c);
    }
    command += "' ";
    command += arguments;
    command += " 2>/dev/null";
    std::FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr) {
        return {};
    }
    std::string out;
    char buffer[256];
    std::size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) {
        out.append(buffer, n);
    }
    ok = ::pclose(pipe) == 0;
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) {
        out.pop_back();
    }
    return out;
#else
    (void)dir;
    (void)arguments;
    return {};
#endif
}

} // namespace detail

// start() reads the commit and starts the dirty check; finish() waits for it.
class GitProbe {
public:
    static GitProbe start(const std::string& script_path) {
        GitProbe probe;
        std::error_code error;
        std::filesystem::path dir = std::filesystem::absolute(script_path, error).parent_path();
        if (error || dir.empty()) {
            dir = std::filesystem::current_path(error);
        }
        probe.dir_ = dir.string();
        std::filesystem::path git_dir, common;
        // GIT_DIR and friends change what git would read: then git answers.
        const bool plain_layout = std::getenv("GIT_DIR") == nullptr && std::getenv("GIT_WORK_TREE") == nullptr;
        if (plain_layout) {
            if (!detail::find_git_dir(dir, git_dir, common)) {
                return probe; // not in a work tree
            }
            probe.state_.commit = detail::read_head_commit(git_dir, common);
        }
        if (probe.state_.commit.empty()) {
            bool ok = false;
            probe.state_.commit = detail::git_output(probe.dir_, "rev-parse HEAD", ok);
            if (!ok || !detail::is_object_name(probe.state_.commit)) {
                probe.state_.commit.clear();
                return probe;
            }
        }
        probe.state_.known = true;
        probe.spawn_dirty_check();
        return probe;
    }

    GitProbe() = default;
    GitProbe(GitProbe&& other) noexcept
        : dir_(std::move(other.dir_)), state_(std::move(other.state_)), result_fd_(other.result_fd_) {
        other.result_fd_ = -1;
    }
    GitProbe& operator=(GitProbe&& other) noexcept {
        if (this != &other) {
            close_result();
            dir_ = std::move(other.dir_);
            state_ = std::move(other.state_);
            result_fd_ = other.result_fd_;
            other.result_fd_ = -1;
        }
        return *this;
    }
    GitProbe(const GitProbe&) = delete;
    GitProbe& operator=(const GitProbe&) = delete;
    ~GitProbe() { close_result(); }

    // The state so far: the commit; dirty only once finish() read it.
    const GitState& state() const noexcept { return state_; }

    // Waits (at most timeout_ms) for the dirty check, once, and returns the state.
    const GitState& finish(int timeout_ms = 5000) {
#if defined(__unix__) || defined(__APPLE__)
        if (result_fd_ >= 0) {
            std::string out;
            char buffer[16];
            pollfd readable{result_fd_, POLLIN, 0};
            for (;;) {
                const int ready = ::poll(&readable, 1, timeout_ms);
                if (ready < 0 && errno == EINTR) {
                    continue;
                }
                if (ready <= 0) {
                    break; // git is stuck (a network file system, a lock): dirty stays unknown
                }
                const ssize_t n = ::read(result_fd_, buffer, sizeof buffer);
                if (n < 0 && errno == EINTR) {
                    continue;
                }
                if (n <= 0) {
                    break;
                }
                out.append(buffer, static_cast<std::size_t>(n));
            }
            // git diff --quiet: 1 when the work tree or the index differs from HEAD.
            state_.dirty = out == "1\n";
            close_result();
        }
#else
        (void)timeout_ms;
#endif
        return state_;
    }

private:
    // `git diff --quiet HEAD` in a job the shell detaches: the shell exits at
    // once and is reaped here, and git's exit goes to init, so the profiled
    // program (its os.wait(), its SIGCHLD handler) never sees a child of ours.
    // The job writes git's exit status to a pipe that finish() reads.
    void spawn_dirty_check() {
#if defined(__unix__) || defined(__APPLE__)
        int fds[2];
        if (::pipe(fds) != 0) {
            return;
        }
        ::fcntl(fds[0], F_SETFD, FD_CLOEXEC);
        ::fcntl(fds[1], F_SETFD, FD_CLOEXEC);
        posix_spawn_file_actions_t actions;
        if (posix_spawn_file_actions_init(&actions) != 0) {
            ::close(fds[0]);
            ::close(fds[1]);
            return;
        }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
        std::string dir = dir_;
        char sh[] = "sh", c[] = "-c",
             script[] = "(git -C \"$0\" diff --quiet HEAD -- >/dev/null 2>&1; echo $?) &";
        char* argv[] = {sh, c, script, &dir[0], nullptr};
        pid_t pid = -1;
        const bool spawned = posix_spawn(&pid, "/bin/sh", &actions, nullptr, argv, environ) == 0;
        posix_spawn_file_actions_destroy(&actions);
        ::close(fds[1]);
        if (!spawned) {
            ::close(fds[0]);
            return;
        }
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        result_fd_ = fds[0];
#endif
    }

    void close_result() noexcept {
#if defined(__unix__) || defined(__APPLE__)
        if (result_fd_ >= 0) {
            ::close(result_fd_);
        }
#endif
        result_fd_ = -1;
    }

    std::string dir_;
    GitState state_;
    int result_fd_ = -1;
};

// The commit and dirty state of the git work tree holding the script, when
// the script is in one (and, for the dirty state, git is installed).
inline GitState git_state(const std::string& script_path) { return GitProbe::start(script_path).finish(); }

} // namespace store
} // namespace pycroscope
