// gzip::compress and the DEFLATE encoder: the output inflated by the real
// `gzip -dc` and by Python's zlib equals the input, for random, repetitive,
// empty and window-edge inputs; repetitive input really shrinks.

#include "sinks/export_tools.hpp"
#include "sinks/sink_test_helpers.hpp"

#include <pycroscope/sinks/gzip_writer.hpp>

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace gzip_writer_test {
namespace {

namespace gz = pycroscope::sinks::gzip;

std::string random_bytes(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::string out(n, '\0');
    for (auto& c : out) {
        c = static_cast<char>(rng() & 0xff);
    }
    return out;
}

// Text with the repeats of a profile: names, ids, numbers.
std::string repetitive(std::size_t n) {
    std::string out;
    std::mt19937 rng(7);
    const char* words[] = {"compute_statistics", "normalize", "/home/user/project/analysis.py", "len", "fib"};
    while (out.size() < n) {
        out += words[rng() % 5];
        out += ' ';
        out += std::to_string(rng() % 100);
        out += '\n';
    }
    out.resize(n);
    return out;
}

std::vector<std::pair<std::string, std::string>> inputs() {
    std::string runs;
    for (int i = 0; i < 50; ++i) {
        runs += std::string(static_cast<std::size_t>(1 + i * 37 % 600), static_cast<char>('a' + i % 3));
    }
    // A block repeated at exactly the window's distance and a bit beyond.
    const std::string block = random_bytes(32768, 3);
    return {{"empty", ""},
            {"one byte", "x"},
            {"three bytes", "abc"},
            {"random", random_bytes(100000, 1)},
            {"repetitive", repetitive(1 << 20)},
            {"runs", runs},
            {"zeros", std::string(70000, '\0')},
            {"window edge", block + block + random_bytes(5, 4) + block}};
}

TEST(GzipWriter, Crc32MatchesTheStandardCheckValue) {
    EXPECT_EQ(gz::crc32("123456789"), 0xCBF43926u);
    EXPECT_EQ(gz::crc32(""), 0u);
    EXPECT_EQ(gz::crc32_update(gz::crc32("12345"), "6789"), 0xCBF43926u);
}

TEST(GzipWriter, GzipDecompressesToTheInput) {
    EXPORT_TEST_REQUIRE_COMMAND("gzip");
    sink_test::TempDir dir;
    for (const auto& input : inputs()) {
        sink_test::write_file(dir.file("in.gz"), gz::compress(input.second));
        ASSERT_EQ(export_test::run("gzip -t " + export_test::quote(dir.file("in.gz"))).status, 0) << input.first;
        const auto out = export_test::run("gzip -dc " + export_test::quote(dir.file("in.gz")));
        ASSERT_EQ(out.status, 0) << input.first;
        EXPECT_TRUE(out.output == input.second) << input.first << ": " << out.output.size() << " bytes back of "
                                                << input.second.size();
    }
}

TEST(GzipWriter, PythonZlibInflatesTheRawDeflateStream) {
    if (!export_test::have_command("/usr/bin/python3")) {
        GTEST_SKIP() << "/usr/bin/python3 is not installed";
    }
    sink_test::TempDir dir;
    for (const auto& input : inputs()) {
        sink_test::write_file(dir.file("in.deflate"), gz::deflate(input.second));
        sink_test::write_file(dir.file("in.raw"), input.second);
        const std::string script = "import sys, zlib; d = zlib.decompress(open(sys.argv[1], 'rb').read(), -15); "
                                   "sys.exit(0 if d == open(sys.argv[2], 'rb').read() else 3)";
        EXPECT_EQ(export_test::run("/usr/bin/python3 -c " + export_test::quote(script) + " " +
                                   export_test::quote(dir.file("in.deflate")) + " " +
                                   export_test::quote(dir.file("in.raw")))
                      .status,
                  0)
            << input.first;
    }
}

TEST(GzipWriter, RepetitiveInputShrinksAndRandomInputBarelyGrows) {
    const std::string text = repetitive(1 << 20);
    EXPECT_LT(gz::compress(text).size() * 4, text.size()); // stored blocks would not shrink at all
    EXPECT_LT(gz::compress(std::string(100000, 'a')).size(), 1000u);
    const std::string noise = random_bytes(100000, 2);
    EXPECT_LT(gz::compress(noise).size(), noise.size() + noise.size() / 8 + 64); // at most 9 bits a byte
}

} // namespace
} // namespace gzip_writer_test
