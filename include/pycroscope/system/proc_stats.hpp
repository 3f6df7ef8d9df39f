#pragma once
// Reading this process's resource counters from Linux /proc: pure parsers of
// the file formats (testable on fixture text, usable on any platform) and a
// reader that keeps the files open and re-reads them from offset 0, so one
// sample costs a few pread() calls and no allocation.
//
// What each file measures:
//   /proc/self/stat     utime + stime of the whole process (all threads, live
//                       and exited), in clock ticks; number of threads.
//   /proc/self/statm    resident set size, in pages.
//   /proc/self/io       rchar/wchar: bytes passed to read()/write()-like calls
//                       (page cache, pipes and sockets included; ProcReader
//                       takes its own /proc reads out of rchar); read_bytes/
//                       write_bytes: bytes the process made the storage layer
//                       fetch or dirty (0 on tmpfs; writes are counted when
//                       pages are dirtied, reads only on a cache miss).
//   /proc/self/net/dev  bytes received and sent per interface. This is per
//                       NETWORK NAMESPACE, not per process: every process in
//                       the namespace (the whole host, outside containers)
//                       adds to it.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <string_view>

#if defined(__linux__)
#include <cerrno>
#include <fcntl.h>
#include <unistd.h>
#endif

namespace pycroscope {
namespace proc {

// The part of /proc/self/stat a monitor needs.
struct StatFields {
    std::uint64_t utime_ticks = 0; // field 14: user CPU time
    std::uint64_t stime_ticks = 0; // field 15: system CPU time
    std::uint64_t threads = 0;     // field 20: num_threads
};

struct IoCounters {
    std::uint64_t rchar = 0;
    std::uint64_t wchar = 0;
    std::uint64_t read_bytes = 0;
    std::uint64_t write_bytes = 0;
    std::uint64_t cancelled_write_bytes = 0;
};

struct NetCounters {
    std::uint64_t rx_bytes = 0;
    std::uint64_t tx_bytes = 0;
    std::uint32_t interfaces = 0; // interfaces summed
};

namespace detail {

inline bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Next whitespace-separated token of text from pos, or empty at the end.
inline std::string_view next_token(std::string_view text, std::size_t& pos) noexcept {
    while (pos < text.size() && is_space(text[pos])) {
        ++pos;
    }
    const std::size_t begin = pos;
    while (pos < text.size() && !is_space(text[pos])) {
        ++pos;
    }
    return text.substr(begin, pos - begin);
}

// A whole token of decimal digits; false on anything else or on overflow.
inline bool parse_u64(std::string_view token, std::uint64_t& out) noexcept {
    if (token.empty()) {
        return false;
    }
    std::uint64_t value = 0;
    for (const char c : token) {
        if (c < '0' || c > '9') {
            return false;
        }
        const auto digit = static_cast<std::uint64_t>(c - '0');
        if (value > (UINT64_MAX - digit) / 10) {
            return false;
        }
        value = value * 10 + digit;
    }
    out = value;
    return true;
}

} // namespace detail

// /proc/[pid]/stat: "pid (comm) state ppid ...". comm is the thread name and
// may hold spaces and parentheses ("(my (odd) name)"), so fields are counted
// from the LAST ')'. Returns false when the text is not in that format.
inline bool parse_stat(std::string_view text, StatFields& out) noexcept {
    const std::size_t close = text.rfind(')');
    if (close == std::string_view::npos || text.find('(') == std::string_view::npos || text.find('(') > close) {
        return false;
    }
    std::size_t pos = close + 1;
    // Field 3 (state) is the first after comm; utime is field 14.
    StatFields fields;
    for (int field = 3; field <= 20; ++field) {
        const std::string_view token = detail::next_token(text, pos);
        if (token.empty()) {
            return false;
        }
        if (field == 14 && !detail::parse_u64(token, fields.utime_ticks)) {
            return false;
        }
        if (field == 15 && !detail::parse_u64(token, fields.stime_ticks)) {
            return false;
        }
        if (field == 20 && !detail::parse_u64(token, fields.threads)) {
            return false;
        }
    }
    out = fields;
    return true;
}

// /proc/[pid]/statm: "size resident shared text lib data dt", in pages.
inline bool parse_statm_resident_pages(std::string_view text, std::uint64_t& pages) noexcept {
    std::size_t pos = 0;
    std::uint64_t size = 0;
    if (!detail::parse_u64(detail::next_token(text, pos), size)) {
        return false;
    }
    return detail::parse_u64(detail::next_token(text, pos), pages);
}

// /proc/[pid]/io: "key: value" lines. rchar, wchar, read_bytes and
// write_bytes must all be present; cancelled_write_bytes is optional.
inline bool parse_io(std::string_view text, IoCounters& out) noexcept {
    IoCounters counters;
    unsigned found = 0;
    std::size_t line_start = 0;
    while (line_start < text.size()) {
        std::size_t line_end = text.find('\n', line_start);
        if (line_end == std::string_view::npos) {
            line_end = text.size();
        }
        const std::string_view line = text.substr(line_start, line_end - line_start);
        line_start = line_end + 1;
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) {
            continue;
        }
        const std::string_view key = line.substr(0, colon);
        std::size_t pos = colon + 1;
        std::uint64_t value = 0;
        if (!detail::parse_u64(detail::next_token(line, pos), value)) {
            continue;
        }
        if (key == "rchar") {
            counters.rchar = value;
            found |= 1;
        } else if (key == "wchar") {
            counters.wchar = value;
            found |= 2;
        } else if (key == "read_bytes") {
            counters.read_bytes = value;
            found |= 4;
        } else if (key == "write_bytes") {
            counters.write_bytes = value;
            found |= 8;
        } else if (key == "cancelled_write_bytes") {
            counters.cancelled_write_bytes = value;
        }
    }
    if (found != 15) {
        return false;
    }
    out = counters;
    return true;
}

// /proc/net/dev: two header lines, then "iface: rx_bytes rx_packets ... (8
// receive fields) tx_bytes ...". Sums every interface, the loopback ("lo")
// only when asked: loopback traffic is counted twice (sent and received) and
// is not network I/O in the usual sense.
inline bool parse_net_dev(std::string_view text, NetCounters& out, bool include_loopback = false) noexcept {
    NetCounters counters;
    bool header_seen = false;
    std::size_t line_start = 0;
    while (line_start < text.size()) {
        std::size_t line_end = text.find('\n', line_start);
        if (line_end == std::string_view::npos) {
            line_end = text.size();
        }
        const std::string_view line = text.substr(line_start, line_end - line_start);
        line_start = line_end + 1;
        if (line.find('|') != std::string_view::npos) {
            header_seen = true;
            continue;
        }
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) {
            continue;
        }
        std::size_t name_pos = 0;
        const std::string_view name = detail::next_token(line.substr(0, colon), name_pos);
        std::size_t pos = colon + 1;
        std::uint64_t rx = 0;
        std::uint64_t tx = 0;
        if (!detail::parse_u64(detail::next_token(line, pos), rx)) {
            return false;
        }
        for (int skip = 0; skip < 7; ++skip) {
            if (detail::next_token(line, pos).empty()) {
                return false;
            }
        }
        if (!detail::parse_u64(detail::next_token(line, pos), tx)) {
            return false;
        }
        if (name == "lo" && !include_loopback) {
            continue;
        }
        counters.rx_bytes += rx;
        counters.tx_bytes += tx;
        ++counters.interfaces;
    }
    if (!header_seen) {
        return false;
    }
    out = counters;
    return true;
}

// One reading of every counter. A has_* flag is false when that source could
// not be read (a kernel without task I/O accounting has no /proc/self/io).
struct ProcSample {
    std::uint64_t wall_ns = 0;  // steady clock
    double cpu_seconds = 0;     // user + system CPU of all threads
    std::uint64_t rss_bytes = 0;
    std::uint64_t threads = 0;
    IoCounters io;
    NetCounters net;
    bool has_cpu = false;
    bool has_rss = false;
    bool has_threads = false;
    bool has_io = false;
    bool has_net = false;
};

// True where ProcReader reads real data.
constexpr bool supported() noexcept {
#if defined(__linux__)
    return true;
#else
    return false;
#endif
}

// Reads /proc/self/{stat,statm,io,net/dev}. Not thread-safe: one reader per
// thread. Opening happens in the constructor; read() makes no allocation.
class ProcReader {
public:
    explicit ProcReader(bool include_loopback = false) : include_loopback_(include_loopback) {
#if defined(__linux__)
        stat_fd_ = open_proc("/proc/self/stat");
        statm_fd_ = open_proc("/proc/self/statm");
        io_fd_ = open_proc("/proc/self/io");
        net_fd_ = open_proc("/proc/self/net/dev");
        const long ticks = ::sysconf(_SC_CLK_TCK);
        ticks_per_second_ = ticks > 0 ? static_cast<double>(ticks) : 100.0;
        const long page = ::sysconf(_SC_PAGESIZE);
        page_size_ = page > 0 ? static_cast<std::uint64_t>(page) : 4096;
#endif
    }
    ~ProcReader() {
#if defined(__linux__)
        for (const int fd : {stat_fd_, statm_fd_, io_fd_, net_fd_}) {
            if (fd >= 0) {
                ::close(fd);
            }
        }
#endif
    }
    ProcReader(const ProcReader&) = delete;
    ProcReader& operator=(const ProcReader&) = delete;

    bool has_io() const noexcept { return io_fd_ >= 0; }
    bool has_net() const noexcept { return net_fd_ >= 0; }

    // Fills every field it can; wall_ns is left to the caller.
    void read(ProcSample& sample) noexcept {
        sample.has_cpu = sample.has_rss = sample.has_threads = sample.has_io = sample.has_net = false;
        StatFields stat;
        if (parse_stat(read_fd(stat_fd_), stat)) {
            sample.threads = stat.threads;
            sample.has_threads = true;
            sample.cpu_seconds = static_cast<double>(stat.utime_ticks + stat.stime_ticks) / ticks_per_second_;
            sample.has_cpu = true;
        }
        // Same quantity as utime + stime (CLOCK_PROCESS_CPUTIME_ID under
        // glibc), but in microseconds instead of 10 ms ticks: at a 100 ms
        // interval, ticks would quantise CPU % to steps of 10%.
        const std::clock_t cpu = std::clock();
        if (cpu != static_cast<std::clock_t>(-1)) {
            sample.cpu_seconds = static_cast<double>(cpu) / CLOCKS_PER_SEC;
            sample.has_cpu = true;
        }
        std::uint64_t pages = 0;
        if (parse_statm_resident_pages(read_fd(statm_fd_), pages)) {
            sample.rss_bytes = pages * page_size_;
            sample.has_rss = true;
        }
        // rchar counts every read() of the process, this reader's own /proc
        // reads too: take those out (all of them up to this file's, exactly).
        const std::uint64_t own_reads = bytes_read_;
        sample.has_io = io_fd_ >= 0 && parse_io(read_fd(io_fd_), sample.io);
        if (sample.has_io) {
            sample.io.rchar -= std::min(sample.io.rchar, own_reads);
        }
        sample.has_net = net_fd_ >= 0 && parse_net_dev(read_fd(net_fd_), sample.net, include_loopback_);
    }

private:
#if defined(__linux__)
    static int open_proc(const char* path) noexcept { return ::open(path, O_RDONLY | O_CLOEXEC); }
#endif

    // The whole file from offset 0 into buffer_ (truncated at its size:
    // net/dev with hundreds of interfaces loses the last ones).
    std::string_view read_fd(int fd) noexcept {
#if defined(__linux__)
        if (fd < 0) {
            return {};
        }
        std::size_t used = 0;
        while (used < sizeof buffer_) {
            const ssize_t n = ::pread(fd, buffer_ + used, sizeof buffer_ - used, static_cast<off_t>(used));
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                break;
            }
            used += static_cast<std::size_t>(n);
        }
        bytes_read_ += used;
        return std::string_view(buffer_, used);
#else
        (void)fd;
        return {};
#endif
    }

    bool include_loopback_;
    int stat_fd_ = -1;
    int statm_fd_ = -1;
    int io_fd_ = -1;
    int net_fd_ = -1;
    double ticks_per_second_ = 100.0;
    std::uint64_t page_size_ = 4096;
    std::uint64_t bytes_read_ = 0; // by this reader, over its lifetime
#if defined(__linux__)
    char buffer_[16384];
#endif
};

} // namespace proc
} // namespace pycroscope
