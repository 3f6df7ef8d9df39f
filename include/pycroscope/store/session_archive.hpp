#pragma once
// One file holding a whole session folder (`pycroscope export-session` /
// `import-session`), so a run can be attached to a bug report or moved
// between machines. A simple format of our own, little-endian throughout:
//
//   "PYCSARC1"                         magic and version (8 bytes)
//   u32 id_length, id                  the session's folder name
//   per file:  u8 1, u32 path_length, path ('/'-separated, relative),
//              u64 size, data, u32 crc32(data)
//   end:       u8 0, u32 file_count, u32 crc32(every byte before this field)
//
// The reader (parse_archive) trusts nothing: every length is checked against
// what is left, paths must be relative with no "." or ".." component and no
// duplicates, every CRC must match, and nothing may follow the end record.
// Damage throws StoreError; unpack_archive() writes nothing unless the whole
// archive was read, into a folder that did not exist.

#include "pycroscope/sinks/gzip_writer.hpp"
#include "pycroscope/store/store_error.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace pycroscope {
namespace store {

struct ArchiveEntry {
    std::string path; // relative, '/'-separated
    std::string data;
};

struct SessionArchive {
    std::string id;
    std::vector<ArchiveEntry> files; // sorted by path
};

constexpr std::string_view archive_magic = "PYCSARC1";
constexpr std::size_t archive_max_path = 4096;

namespace detail {

inline void put_u32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) {
        out += static_cast<char>((v >> (8 * i)) & 0xffu);
    }
}
inline void put_u64(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) {
        out += static_cast<char>((v >> (8 * i)) & 0xffu);
    }
}

// A path component list that cannot escape the folder it is unpacked into.
inline bool safe_relative_path(std::string_view path) {
    if (path.empty() || path.size() > archive_max_path || path.front() == '/') {
        return false;
    }
    std::size_t start = 0;
    while (start <= path.size()) {
        const std::size_t slash = std::min(path.find('/', start), path.size());
        const std::string_view part = path.substr(start, slash - start);
        if (part.empty() || part == "." || part == ".." || part.find('\\') != std::string_view::npos ||
            part.find('\0') != std::string_view::npos) {
            return false;
        }
        start = slash + 1;
    }
    return true;
}

class ArchiveCursor {
public:
    explicit ArchiveCursor(std::string_view bytes) : bytes_(bytes) {}
    std::size_t offset() const noexcept { return pos_; }
    std::size_t left() const noexcept { return bytes_.size() - pos_; }
    std::string_view take(std::size_t n, const char* what) {
        if (n > left()) {
            fail(std::string("truncated ") + what);
        }
        const std::string_view out = bytes_.substr(pos_, n);
        pos_ += n;
        return out;
    }
    std::uint64_t number(std::size_t width, const char* what) {
        const std::string_view b = take(width, what);
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < width; ++i) {
            v |= static_cast<std::uint64_t>(static_cast<unsigned char>(b[i])) << (8 * i);
        }
        return v;
    }
    [[noreturn]] void fail(const std::string& what) const {
        throw StoreError("session archive damaged at byte " + std::to_string(pos_) + ": " + what);
    }

private:
    std::string_view bytes_;
    std::size_t pos_ = 0;
};

} // namespace detail

inline std::string archive_bytes(const SessionArchive& archive) {
    std::string out(archive_magic);
    detail::put_u32(out, static_cast<std::uint32_t>(archive.id.size()));
    out += archive.id;
    for (const ArchiveEntry& e : archive.files) {
        out += '\1';
        detail::put_u32(out, static_cast<std::uint32_t>(e.path.size()));
        out += e.path;
        detail::put_u64(out, e.data.size());
        out += e.data;
        detail::put_u32(out, sinks::gzip::crc32(e.data));
    }
    out += '\0';
    detail::put_u32(out, static_cast<std::uint32_t>(archive.files.size()));
    detail::put_u32(out, sinks::gzip::crc32(out));
    return out;
}

inline SessionArchive parse_archive(std::string_view bytes) {
    detail::ArchiveCursor in(bytes);
    if (bytes.size() < archive_magic.size() || bytes.substr(0, archive_magic.size()) != archive_magic) {
        throw StoreError("not a pycroscope session archive (no PYCSARC1 header)");
    }
    in.take(archive_magic.size(), "header");
    SessionArchive archive;
    const std::uint64_t id_length = in.number(4, "session id length");
    if (id_length > 255) {
        in.fail("session id of " + std::to_string(id_length) + " bytes");
    }
    archive.id = std::string(in.take(static_cast<std::size_t>(id_length), "session id"));
    if (archive.id.find('/') != std::string::npos || !detail::safe_relative_path(archive.id)) {
        in.fail("session id is not a plain folder name");
    }
    std::set<std::string> seen;
    for (;;) {
        const std::uint64_t tag = in.number(1, "record tag");
        if (tag == 0) {
            break;
        }
        if (tag != 1) {
            in.fail("unknown record tag " + std::to_string(tag));
        }
        const std::uint64_t path_length = in.number(4, "path length");
        if (path_length > archive_max_path) {
            in.fail("path of " + std::to_string(path_length) + " bytes");
        }
        ArchiveEntry entry;
        entry.path = std::string(in.take(static_cast<std::size_t>(path_length), "path"));
        if (!detail::safe_relative_path(entry.path)) {
            in.fail("unsafe path in the archive");
        }
        if (!seen.insert(entry.path).second) {
            in.fail("the path '" + entry.path + "' appears twice");
        }
        const std::uint64_t size = in.number(8, "file size");
        if (size > in.left()) {
            in.fail("file '" + entry.path + "' claims " + std::to_string(size) + " bytes, " +
                    std::to_string(in.left()) + " are left");
        }
        entry.data = std::string(in.take(static_cast<std::size_t>(size), "file data"));
        const std::uint64_t crc = in.number(4, "file checksum");
        if (crc != sinks::gzip::crc32(entry.data)) {
            in.fail("checksum mismatch in '" + entry.path + "'");
        }
        archive.files.push_back(std::move(entry));
    }
    const std::uint64_t count = in.number(4, "file count");
    if (count != archive.files.size()) {
        in.fail("the end record counts " + std::to_string(count) + " files, the archive holds " +
                std::to_string(archive.files.size()));
    }
    const std::size_t covered = in.offset();
    const std::uint64_t crc = in.number(4, "archive checksum");
    if (crc != sinks::gzip::crc32(bytes.substr(0, covered))) {
        in.fail("archive checksum mismatch");
    }
    if (in.left() != 0) {
        in.fail(std::to_string(in.left()) + " bytes after the end record");
    }
    return archive;
}

// Every regular file under dir (symbolic links and other kinds are skipped).
inline SessionArchive pack_session(const std::string& dir) {
    namespace fs = std::filesystem;
    std::error_code error;
    if (!fs::is_directory(dir, error)) {
        throw StoreError("'" + dir + "' is not a session folder");
    }
    SessionArchive archive;
    fs::path root = fs::path(dir).lexically_normal();
    if (root.filename().empty()) {
        root = root.parent_path();
    }
    archive.id = root.filename().string();
    if (!detail::safe_relative_path(archive.id)) {
        archive.id = "session";
    }
    for (fs::recursive_directory_iterator it(root, error), end; !error && it != end; it.increment(error)) {
        if (!it->is_regular_file(error) || it->is_symlink(error)) {
            continue;
        }
        const std::string relative = fs::relative(it->path(), root, error).generic_string();
        std::ifstream in(it->path(), std::ios::binary);
        if (!in) {
            throw StoreError("cannot read '" + it->path().string() + "'");
        }
        std::ostringstream data;
        data << in.rdbuf();
        archive.files.push_back(ArchiveEntry{relative, data.str()});
    }
    if (error) {
        throw StoreError("cannot list '" + dir + "': " + error.message());
    }
    std::sort(archive.files.begin(), archive.files.end(),
              [](const ArchiveEntry& a, const ArchiveEntry& b) { return a.path < b.path; });
    return archive;
}

inline void write_archive_file(const std::string& dir, const std::string& file) {
    const std::string bytes = archive_bytes(pack_session(dir));
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
        std::remove(file.c_str());
        throw StoreError("cannot write '" + file + "'");
    }
}

// Unpacks into parent/<id>, which must not exist; returns that folder.
// The files go to a temporary folder renamed into place once all are written.
inline std::string unpack_archive_file(const std::string& file, const std::string& parent) {
    namespace fs = std::filesystem;
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        throw StoreError("cannot open '" + file + "'");
    }
    std::ostringstream buffer;
    buffer << in.rdbuf();
    SessionArchive archive;
    try {
        archive = parse_archive(buffer.str());
    } catch (const StoreError& e) {
        throw StoreError(file + ": " + e.detail());
    }
    std::error_code error;
    const fs::path target = fs::path(parent) / archive.id;
    if (fs::exists(target, error)) {
        throw StoreError("'" + target.string() + "' exists already (import into another folder)");
    }
    fs::create_directories(parent, error);
    const fs::path temporary = fs::path(parent) / ("." + archive.id + ".import.tmp");
    fs::remove_all(temporary, error);
    try {
        for (const ArchiveEntry& e : archive.files) {
            const fs::path path = temporary / fs::path(e.path);
            fs::create_directories(path.parent_path());
            std::ofstream out(path, std::ios::binary | std::ios::trunc);
            out.write(e.data.data(), static_cast<std::streamsize>(e.data.size()));
            out.close();
            if (!out) {
                throw StoreError("cannot write '" + path.string() + "'");
            }
        }
        fs::create_directories(temporary);
        fs::rename(temporary, target);
    } catch (const std::exception& e) {
        fs::remove_all(temporary, error);
        throw StoreError("cannot import into '" + target.string() + "': " + e.what());
    }
    return target.string();
}

} // namespace store
} // namespace pycroscope
