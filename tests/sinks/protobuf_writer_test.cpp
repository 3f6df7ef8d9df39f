// protobuf::Writer: exact wire bytes for the edge values of each encoding,
// and nested messages long enough to need a multi-byte length, read back by
// the real `protoc --decode_raw`.

#include "sinks/export_tools.hpp"
#include "sinks/sink_test_helpers.hpp"

#include <pycroscope/sinks/protobuf_writer.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace protobuf_writer_test {
namespace {

namespace pb = pycroscope::sinks::protobuf;

std::string hex(const std::string& bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (const char c : bytes) {
        const auto b = static_cast<unsigned char>(c);
        if (!out.empty()) {
            out += ' ';
        }
        out += digits[b >> 4];
        out += digits[b & 15];
    }
    return out;
}

std::string varint(std::uint64_t value) {
    std::string out;
    pb::append_varint(out, value);
    EXPECT_EQ(out.size(), pb::varint_size(value)) << value;
    return hex(out);
}

TEST(ProtobufWriter, VarintsOfEdgeValuesHaveTheirWireBytes) {
    EXPECT_EQ(varint(0), "00");
    EXPECT_EQ(varint(1), "01");
    EXPECT_EQ(varint(127), "7f");
    EXPECT_EQ(varint(128), "80 01");
    EXPECT_EQ(varint(300), "ac 02");
    EXPECT_EQ(varint(16383), "ff 7f");
    EXPECT_EQ(varint(16384), "80 80 01");
    EXPECT_EQ(varint(0xffffffffu), "ff ff ff ff 0f");
    EXPECT_EQ(varint(std::uint64_t{1} << 63), "80 80 80 80 80 80 80 80 80 01");
    EXPECT_EQ(varint(std::numeric_limits<std::uint64_t>::max()), "ff ff ff ff ff ff ff ff ff 01");
}

TEST(ProtobufWriter, ZigzagMapsSmallMagnitudesToSmallNumbers) {
    EXPECT_EQ(pb::zigzag(0), 0u);
    EXPECT_EQ(pb::zigzag(-1), 1u);
    EXPECT_EQ(pb::zigzag(1), 2u);
    EXPECT_EQ(pb::zigzag(-2), 3u);
    EXPECT_EQ(pb::zigzag(std::numeric_limits<std::int64_t>::max()), std::numeric_limits<std::uint64_t>::max() - 1);
    EXPECT_EQ(pb::zigzag(std::numeric_limits<std::int64_t>::min()), std::numeric_limits<std::uint64_t>::max());
}

TEST(ProtobufWriter, FieldsCarryTheirTagAndWireType) {
    std::string out;
    pb::Writer w(out);
    w.uint(1, 150);
    EXPECT_EQ(hex(out), "08 96 01");
    out.clear();
    w.int64(2, -1); // int64: ten bytes, two's complement
    EXPECT_EQ(hex(out), "10 ff ff ff ff ff ff ff ff ff 01");
    out.clear();
    w.sint(3, -1);
    EXPECT_EQ(hex(out), "18 01");
    out.clear();
    w.string(2, "testing");
    EXPECT_EQ(hex(out), "12 07 74 65 73 74 69 6e 67");
    out.clear();
    w.float64(44, 1.5);
    EXPECT_EQ(hex(out), "e1 02 00 00 00 00 00 00 f8 3f");
    out.clear();
    w.fixed64(47, 0x0102030405060708ull);
    EXPECT_EQ(hex(out), "f9 02 08 07 06 05 04 03 02 01");
    out.clear();
    w.packed(4, std::vector<std::uint64_t>{3, 270, 86942});
    EXPECT_EQ(hex(out), "22 06 03 8e 02 9e a7 05");
    out.clear();
    w.uint(536870911, 1); // the largest field number: a five-byte tag
    EXPECT_EQ(hex(out), "f8 ff ff ff 0f 01");
}

TEST(ProtobufWriter, NestedMessagesGrowTheirLengthWhenTheBodyIsLong) {
    for (const std::size_t body : {0u, 1u, 125u, 126u, 127u, 128u, 300u, 16384u, 70000u}) {
        std::string out = "x";
        pb::Writer w(out);
        const auto m = w.begin(5);
        if (body >= 2) {
            w.string(1, std::string(body - 2 - (body - 2 >= 128 ? 1 : 0) - (body - 2 >= 16384 ? 1 : 0), 'a'));
        }
        w.end(m);
        // "x", tag 2a, then the length and the body.
        const std::string rest = out.substr(2);
        std::size_t length = 0;
        unsigned shift = 0;
        std::size_t i = 0;
        for (;; ++i, shift += 7) {
            const auto b = static_cast<unsigned char>(rest[i]);
            length |= static_cast<std::size_t>(b & 0x7f) << shift;
            if ((b & 0x80) == 0) {
                break;
            }
        }
        EXPECT_EQ(length, rest.size() - i - 1) << body;
        EXPECT_EQ(i + 1, pb::varint_size(length)) << body;
    }
}

TEST(ProtobufWriter, ProtocDecodesNestedMessagesAndEveryWireType) {
    EXPORT_TEST_REQUIRE_PROTOC();
    sink_test::TempDir dir;
    std::string out;
    pb::Writer w(out);
    const auto outer = w.begin(1);
    w.uint(1, 300);
    w.string(2, std::string(200, 'z')); // a length of two bytes inside a message of two
    const auto inner = w.begin(3);
    w.sint(1, -5);
    w.float64(2, 2.5);
    w.end(inner);
    w.end(outer);
    w.uint(2, std::numeric_limits<std::uint64_t>::max());
    sink_test::write_file(dir.file("m.bin"), out);
    const auto result = export_test::run("protoc --decode_raw < " + export_test::quote(dir.file("m.bin")));
    ASSERT_EQ(result.status, 0);
    const auto root = export_test::parse_text_format(result.output, true);
    const auto& m = root.at("1");
    EXPECT_EQ(m.s("1"), "300");
    EXPECT_EQ(m.s("2"), std::string(200, 'z'));
    EXPECT_EQ(m.at("3").s("1"), "9"); // zigzag(-5)
    EXPECT_EQ(m.at("3").s("2"), "0x4004000000000000");
    EXPECT_EQ(root.s("2"), "18446744073709551615");
}

} // namespace
} // namespace protobuf_writer_test
