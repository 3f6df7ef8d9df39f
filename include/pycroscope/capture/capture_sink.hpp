#pragma once
// The capture writer: a sink that streams every event, as recorded, into a
// compact binary file (format.hpp, docs/capture-format.md) that
// capture_reader.hpp replays into the same processors and sinks offline.
//
// It consumes events before the EventProcessors rewrite them
// (consumes_recorded_events()), so a replay that feeds the same processors
// gets the same results. Events are encoded into a chunk in memory and the
// chunk is written with one write() once it holds chunk_bytes or is
// flush_interval old, so memory stays bounded for any run length.
//
// Unlike the other outputs the file is written under its final name, not
// renamed from a temporary: a run killed by SIGKILL, or a disk that filled,
// leaves every chunk written so far where a reader looks for it. The TAIL
// block, written by close(), is what says the capture is whole; a reader
// reports a file without it as cut. abort() keeps a file that holds events
// (it reads as cut) and removes one that holds none.

#include "pycroscope/capture/chunk_encoder.hpp"
#include "pycroscope/capture/crc32.hpp"
#include "pycroscope/capture/format.hpp"
#include "pycroscope/capture/session_records.hpp"
#include "pycroscope/core/error.hpp"
#include "pycroscope/core/sink.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace pycroscope {
namespace capture {

struct CaptureOptions {
    std::size_t chunk_bytes = 1u << 20;                    // a chunk is written once this large
    std::chrono::milliseconds flush_interval{1000};        // or once this old
};

// Derives from Sink itself, not sinks::BaseSink: capture/ sits below sinks/.
class CaptureSink : public Sink {
public:
    explicit CaptureSink(std::string path, CaptureOptions options = {})
        : path_(std::move(path)), options_(options) {
        if (options_.chunk_bytes == 0 || options_.chunk_bytes > max_block_bytes / 4) {
            options_.chunk_bytes = std::size_t{1} << 20;
        }
    }
    ~CaptureSink() override { close_file(); }

    std::string describe() const override { return "capture '" + path_ + "'"; }
    std::string output_path() const override { return path_; }
    bool consumes_recorded_events() const override { return true; }
    const std::string& path() const noexcept { return path_; }
    // The last session's capture is whole on disk: its trailer was written and synced.
    bool written() const noexcept { return written_.load(); }

    void open(const SessionInfo& info) override {
        std::lock_guard<std::mutex> lock(mutex_);
        open_(info);
    }
    void consume(const ThreadInfo& thread, const Event* events, std::size_t count) override {
        std::lock_guard<std::mutex> lock(mutex_);
        sink_it_(thread, events, count);
    }
    void close(const SessionSummary& summary) override {
        std::lock_guard<std::mutex> lock(mutex_);
        close_(summary);
    }
    void abort() noexcept override {
        std::lock_guard<std::mutex> lock(mutex_);
        abort_();
    }

    // Written so far (for tests and benchmarks).
    std::uint64_t chunks_written() const noexcept { return chunks_; }
    std::uint64_t events_written() const noexcept { return events_; }
    std::uint64_t bytes_written() const noexcept { return offset_; }

private:
    void open_(const SessionInfo& info) {
        close_file();
        if (path_.empty()) {
            throw ConfigError("capture output path is empty");
        }
#if defined(__unix__) || defined(__APPLE__)
        fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd_ < 0) {
            const int error = errno;
            throw ConfigError("cannot write '" + path_ + "': " + std::strerror(error));
        }
        owner_pid_ = ::getpid();
#else
        file_ = std::fopen(path_.c_str(), "wb");
        if (file_ == nullptr) {
            const int error = errno;
            throw ConfigError("cannot write '" + path_ + "': " + std::strerror(error));
        }
#endif
        chunks_ = 0;
        events_ = 0;
        offset_ = 0;
        encoder_.reset_file();
        ByteBuffer prefix;
        prefix.ensure(file_prefix_bytes);
        prefix.put_bytes(file_magic, sizeof file_magic);
        prefix.put_u32(format_version);
        ByteBuffer body;
        write_session_info(body, info);
        try {
            write_all(prefix.data(), prefix.size());
            write_block(header_tag, &body);
        } catch (const SinkError&) {
            const int error = errno;
            close_file();
            std::remove(path_.c_str());
            throw ConfigError("cannot write '" + path_ + "': " + std::strerror(error));
        }
        chunk_started_ = std::chrono::steady_clock::now();
    }

    void sink_it_(const ThreadInfo& thread, const Event* events, std::size_t count) {
        if (!is_open()) {
            throw SinkError("capture '" + path_ + "' written after it was closed");
        }
        while (count > 0) { // an empty batch writes nothing
            const std::size_t n = count < max_batch_events ? count : max_batch_events;
            if (encoder_.empty()) {
                chunk_started_ = std::chrono::steady_clock::now();
            }
            encoder_.add_batch(thread, events, n);
            events += n;
            count -= n;
            if (encoder_.size() >= options_.chunk_bytes) {
                flush_chunk();
            }
        }
        if (!encoder_.empty() && std::chrono::steady_clock::now() - chunk_started_ >= options_.flush_interval) {
            flush_chunk();
        }
    }

    void close_(const SessionSummary& summary) {
        written_ = false;
        if (!is_open()) {
            throw SinkError("capture '" + path_ + "' closed twice or after a failure");
        }
        flush_chunk();
        TrailerRecord record;
        record.summary = summary;
        record.chunks = chunks_;
        record.events = events_;
        ByteBuffer body;
        write_trailer(body, record);
        write_block(trailer_tag, &body);
#if defined(__unix__) || defined(__APPLE__)
        if (::fsync(fd_) != 0) {
            const int error = errno;
            close_file();
            throw SinkError("could not sync '" + path_ + "': " + std::strerror(error));
        }
        // Writes to a file removed during the run (its folder deleted) succeed
        // on the open descriptor: only the name tells whether it is still there.
        struct stat opened {};
        struct stat named {};
        if (::fstat(fd_, &opened) != 0 || ::stat(path_.c_str(), &named) != 0 || opened.st_ino != named.st_ino ||
            opened.st_dev != named.st_dev) {
            close_file();
            throw SinkError("capture '" + path_ + "' was removed during the run");
        }
#endif
        close_file();
        written_ = true;
    }

    void abort_() noexcept {
        const bool had_file = is_open();
        close_file();
#if defined(__unix__) || defined(__APPLE__)
        const bool owner = ::getpid() == owner_pid_;
#else
        const bool owner = true;
#endif
        if (had_file && owner && chunks_ == 0) {
            std::remove(path_.c_str());
        }
    }

    bool is_open() const noexcept {
#if defined(__unix__) || defined(__APPLE__)
        return fd_ >= 0;
#else
        return file_ != nullptr;
#endif
    }

    void close_file() noexcept {
#if defined(__unix__) || defined(__APPLE__)
        if (fd_ >= 0) {
            ::close(fd_); // in a forked child too: closing our copy of the descriptor writes nothing
            fd_ = -1;
        }
#else
        if (file_ != nullptr) {
            std::fclose(file_);
            file_ = nullptr;
        }
#endif
    }

    void flush_chunk() {
        if (encoder_.empty()) {
            return;
        }
        ByteBuffer count;
        count.varint(encoder_.new_locations());
        write_block(chunk_tag, &count, &encoder_.definitions(), &encoder_.batches());
        ++chunks_;
        events_ += encoder_.events();
        encoder_.start_chunk();
    }

    // One block, written with as few write() calls as the parts allow. A
    // failed write cuts the file back to the last whole block.
    void write_block(std::uint32_t tag, const ByteBuffer* first, const ByteBuffer* second = nullptr,
                     const ByteBuffer* third = nullptr) {
        const ByteBuffer* const parts[] = {first, second, third};
        std::uint64_t length = 0;
        std::uint32_t body_crc = 0;
        for (const ByteBuffer* part : parts) {
            if (part != nullptr) {
                length += part->size();
                body_crc = crc32(part->data(), part->size(), body_crc);
            }
        }
        if (length > max_block_bytes) {
            throw SinkError("capture '" + path_ + "': a block of " + std::to_string(length) +
                            " bytes exceeds the format's limit");
        }
        unsigned char frame[block_frame_bytes];
        put_le32(frame, tag);
        put_le32(frame + 4, static_cast<std::uint32_t>(length));
        put_le32(frame + 8, crc32(frame, 8));
        put_le32(frame + 12, body_crc);
        const std::uint64_t block_start = offset_;
        try {
            write_all(frame, sizeof frame);
            for (const ByteBuffer* part : parts) {
                if (part != nullptr) {
                    write_all(part->data(), part->size());
                }
            }
        } catch (...) {
#if defined(__unix__) || defined(__APPLE__)
            if (::ftruncate(fd_, static_cast<off_t>(block_start)) == 0) {
                offset_ = block_start;
            }
#endif
            throw;
        }
    }

    static void put_le32(unsigned char* out, std::uint32_t value) noexcept {
        for (int i = 0; i < 4; ++i) {
            out[i] = static_cast<unsigned char>(value >> (8 * i));
        }
    }

    void write_all(const void* data, std::size_t size) {
        const auto* p = static_cast<const unsigned char*>(data);
#if defined(__unix__) || defined(__APPLE__)
        while (size > 0) {
            const ::ssize_t n = ::write(fd_, p, size);
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                const int error = errno;
                throw SinkError("writing '" + path_ + "' failed: " + std::strerror(error));
            }
            p += n;
            size -= static_cast<std::size_t>(n);
            offset_ += static_cast<std::uint64_t>(n);
        }
#else
        if (size > 0 && std::fwrite(p, 1, size, file_) != size) {
            const int error = errno;
            throw SinkError("writing '" + path_ + "' failed: " + std::strerror(error));
        }
        offset_ += size;
#endif
    }

    std::mutex mutex_;
    std::atomic<bool> written_{false};
    std::string path_;
    CaptureOptions options_;
    ChunkEncoder encoder_;
    std::chrono::steady_clock::time_point chunk_started_{};
    std::uint64_t chunks_ = 0;
    std::uint64_t events_ = 0;
    std::uint64_t offset_ = 0;
#if defined(__unix__) || defined(__APPLE__)
    int fd_ = -1;
    ::pid_t owner_pid_ = 0;
#else
    std::FILE* file_ = nullptr;
#endif
};

} // namespace capture
} // namespace pycroscope
