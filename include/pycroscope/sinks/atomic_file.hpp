#pragma once
// An output file that appears under its final name only when complete: data
// goes to "<path>.tmp.<pid>" and is renamed over <path> by commit(). A failed
// or interrupted run leaves at most the temporary file, never a truncated
// file that looks whole; one killed outright (SIGKILL) leaves it behind, and
// remove_stale_temporaries() clears those of processes that are gone.

#include "pycroscope/core/error.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include <filesystem>
#include <system_error>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <signal.h>
#include <unistd.h>
#endif

namespace pycroscope {
namespace sinks {

class AtomicFile {
public:
    explicit AtomicFile(std::string path) : path_(std::move(path)) {}
    ~AtomicFile() { discard(); }
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    const std::string& path() const noexcept { return path_; }
    const std::string& temporary_path() const noexcept { return temporary_; }
    bool is_open() const noexcept { return file_ != nullptr; }
    // The last open() ended in a successful commit(): the file is on disk, whole.
    bool committed() const noexcept { return committed_; }

    // Throws ConfigError when the file cannot be created (bad directory,
    // no permission): checked before profiling starts.
    void open() {
        discard();
        committed_ = false;
        if (path_.empty()) {
            throw ConfigError("output path is empty");
        }
        owner_pid_ = pid();
        temporary_ = path_ + ".tmp." + std::to_string(owner_pid_);
        file_ = std::fopen(temporary_.c_str(), "wb");
        if (file_ == nullptr) {
            const int error = errno;
            throw ConfigError("cannot write '" + path_ + "': " + std::strerror(error));
        }
        std::setvbuf(file_, nullptr, _IOFBF, 1 << 20);
    }

    void write(std::string_view data) {
        if (file_ == nullptr) {
            throw SinkError("write to '" + path_ + "' after it was closed");
        }
        if (!data.empty() && std::fwrite(data.data(), 1, data.size(), file_) != data.size()) {
            const int error = errno;
            throw SinkError("writing '" + temporary_ + "' failed: " + std::strerror(error));
        }
    }

    // Flushes, syncs and renames the file into place.
    void commit() {
        if (file_ == nullptr) {
            throw SinkError("commit of '" + path_ + "' without an open file");
        }
        bool ok = std::fflush(file_) == 0;
#if defined(__unix__) || defined(__APPLE__)
        ok = ok && ::fsync(fileno(file_)) == 0;
#endif
        int error = errno;
        ok = (std::fclose(file_) == 0) && ok;
        file_ = nullptr;
        if (ok && std::rename(temporary_.c_str(), path_.c_str()) == 0) {
            temporary_.clear();
            committed_ = true;
            return;
        }
        error = errno != 0 ? errno : error;
        std::remove(temporary_.c_str());
        temporary_.clear();
        throw SinkError("could not complete '" + path_ + "': " + std::strerror(error));
    }

    // Drops what was written; the final path is left untouched.
    void discard() noexcept {
        if (file_ != nullptr && pid() != owner_pid_) {
            // Inherited through fork(): closing would flush the parent's
            // buffered bytes into its file a second time. Leave it be.
            file_ = nullptr;
            temporary_.clear();
            return;
        }
        if (file_ != nullptr) {
            std::fclose(file_);
            file_ = nullptr;
        }
        if (!temporary_.empty()) {
            std::remove(temporary_.c_str());
            temporary_.clear();
        }
    }

private:
    static long pid() noexcept {
#if defined(__unix__) || defined(__APPLE__)
        return static_cast<long>(::getpid());
#else
        return 0;
#endif
    }

    std::string path_;
    std::string temporary_;
    std::FILE* file_ = nullptr;
    long owner_pid_ = 0;
    bool committed_ = false;
};

// Removes "<name>.tmp.<pid>" files in dir, for each of names, whose process
// no longer exists (a run killed before it could clean up). Returns the
// paths removed; files it cannot remove are left, and so are those of live
// processes (another run writing to the same folder).
inline std::vector<std::string> remove_stale_temporaries(const std::string& dir,
                                                         const std::vector<std::string>& names) {
    std::vector<std::string> removed;
#if defined(__unix__) || defined(__APPLE__)
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
        const std::string file = entry.path().filename().string();
        for (const auto& name : names) {
            const std::string prefix = name + ".tmp.";
            if (file.size() <= prefix.size() || file.compare(0, prefix.size(), prefix) != 0) {
                continue;
            }
            const std::string digits = file.substr(prefix.size());
            if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) {
                continue;
            }
            const auto pid = static_cast<pid_t>(std::stol(digits));
            const bool gone = pid > 0 && pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH;
            if (gone && std::remove(entry.path().c_str()) == 0) {
                removed.push_back(entry.path().string());
            }
        }
    }
#else
    (void)dir;
    (void)names;
#endif
    return removed;
}

} // namespace sinks
} // namespace pycroscope
