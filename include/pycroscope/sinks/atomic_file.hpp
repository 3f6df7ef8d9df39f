#pragma once
// An output file that appears under its final name only when complete: data
// goes to "<path>.tmp.<pid>" and is renamed over <path> by commit(). A failed
// or interrupted run leaves at most the temporary file, never a truncated
// file that looks whole.

#include "pycroscope/core/error.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#if defined(__unix__) || defined(__APPLE__)
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

    // Throws ConfigError when the file cannot be created (bad directory,
    // no permission): checked before profiling starts.
    void open() {
        discard();
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
};

} // namespace sinks
} // namespace pycroscope
