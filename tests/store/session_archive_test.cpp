// export-session / import-session: the archive round trip, and a reader that
// refuses every kind of damage with a StoreError instead of crashing or
// writing outside its folder.

#include "store/store_test_helpers.hpp"

#include <pycroscope/store/session_archive.hpp>

#include <gtest/gtest.h>

#include <string>

namespace session_archive_test {
namespace {

namespace st = pycroscope::store;
using namespace store_test;

st::SessionArchive sample_archive() {
    st::SessionArchive a;
    a.id = "20260101-120000";
    a.files.push_back({"manifest.json", "{\"format\": \"pycroscope-manifest\"}\n"});
    a.files.push_back({"run-1/session.json", session_json(100000000, 30000000)});
    a.files.push_back({"run-1/empty.txt", ""});
    a.files.push_back({"capture.pycro", std::string("\0\1\2binary\xff", 10)});
    return a;
}

TEST(SessionArchive, BytesRoundTripKeepsIdPathsAndContents) {
    const st::SessionArchive a = sample_archive();
    const st::SessionArchive b = st::parse_archive(st::archive_bytes(a));
    EXPECT_EQ(b.id, a.id);
    ASSERT_EQ(b.files.size(), a.files.size());
    for (std::size_t i = 0; i < a.files.size(); ++i) {
        EXPECT_EQ(b.files[i].path, a.files[i].path);
        EXPECT_EQ(b.files[i].data, a.files[i].data);
    }
}

TEST(SessionArchive, FolderRoundTripRestoresEveryFileUnderItsId) {
    TempDir tmp("folder_round_trip");
    const fs::path session = tmp.path() / "store" / "20260101-120000";
    write_text(session / "session.json", session_json(1, 1));
    write_text(session / "run-2" / "session.json", "run two");
    write_text(session / "run-2" / "stacks.folded", "a;b 1\n");
    const std::string file = (tmp.path() / "s.pycsession").string();
    st::write_archive_file(session.string(), file);
    const std::string target = st::unpack_archive_file(file, (tmp.path() / "elsewhere").string());
    EXPECT_EQ(fs::path(target), tmp.path() / "elsewhere" / "20260101-120000");
    EXPECT_EQ(read_text(fs::path(target) / "session.json"), session_json(1, 1));
    EXPECT_EQ(read_text(fs::path(target) / "run-2" / "session.json"), "run two");
    EXPECT_EQ(read_text(fs::path(target) / "run-2" / "stacks.folded"), "a;b 1\n");
    // A second import does not overwrite the first.
    EXPECT_THROW(st::unpack_archive_file(file, (tmp.path() / "elsewhere").string()), st::StoreError);
}

TEST(SessionArchive, EveryTruncationIsRefused) {
    const std::string bytes = st::archive_bytes(sample_archive());
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        EXPECT_THROW(st::parse_archive(bytes.substr(0, n)), st::StoreError) << "length " << n;
    }
}

TEST(SessionArchive, EveryFlippedByteIsRefused) {
    const std::string bytes = st::archive_bytes(sample_archive());
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        std::string damaged = bytes;
        damaged[i] = static_cast<char>(damaged[i] ^ 0x20);
        EXPECT_THROW(st::parse_archive(damaged), st::StoreError) << "byte " << i;
    }
}

TEST(SessionArchive, TrailingBytesAreRefused) {
    EXPECT_THROW(st::parse_archive(st::archive_bytes(sample_archive()) + "x"), st::StoreError);
}

TEST(SessionArchive, PathsThatEscapeTheFolderAreRefused) {
    for (const char* path : {"../evil", "/etc/passwd", "a/../../b", "a//b", "./a", "a\\b", ""}) {
        st::SessionArchive a;
        a.id = "s";
        a.files.push_back({path, "x"});
        EXPECT_THROW(st::parse_archive(st::archive_bytes(a)), st::StoreError) << path;
    }
    st::SessionArchive bad_id;
    bad_id.id = "..";
    EXPECT_THROW(st::parse_archive(st::archive_bytes(bad_id)), st::StoreError);
}

TEST(SessionArchive, DuplicatePathsAreRefused) {
    st::SessionArchive a;
    a.id = "s";
    a.files.push_back({"x", "1"});
    a.files.push_back({"x", "2"});
    EXPECT_THROW(st::parse_archive(st::archive_bytes(a)), st::StoreError);
}

TEST(SessionArchive, ADamagedFileIsNotImportedAndNothingIsWritten) {
    TempDir tmp("damaged_import");
    std::string bytes = st::archive_bytes(sample_archive());
    bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 1);
    write_text(tmp.path() / "bad.pycsession", bytes);
    try {
        st::unpack_archive_file((tmp.path() / "bad.pycsession").string(), (tmp.path() / "into").string());
        FAIL() << "a damaged archive was imported";
    } catch (const st::StoreError& e) {
        EXPECT_NE(std::string(e.what()).find("damaged"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(tmp.path() / "into" / "20260101-120000"));
    write_text(tmp.path() / "text.json", "{\"not\": \"an archive\"}");
    EXPECT_THROW(st::unpack_archive_file((tmp.path() / "text.json").string(), tmp.path().string()), st::StoreError);
    EXPECT_THROW(st::unpack_archive_file((tmp.path() / "missing").string(), tmp.path().string()), st::StoreError);
}

} // namespace
} // namespace session_archive_test
