#pragma once
// The protocol buffers wire format, written by hand so that the Perfetto and
// pprof exporters need no protobuf library: varints, zigzag, fixed64/double,
// length-delimited strings and nested messages, packed repeated varints.
// Only encoding; the tests check the output with the real protoc.
//
// A nested message is opened with begin() and closed with end(): its length
// is not known in advance, so begin() leaves one byte for it and end() moves
// the body when the length needs more (rare: most messages are < 128 bytes).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace pycroscope {
namespace sinks {
namespace protobuf {

enum class WireType : std::uint32_t { varint = 0, fixed64 = 1, length_delimited = 2, fixed32 = 5 };

constexpr std::uint64_t zigzag(std::int64_t value) noexcept {
    return (static_cast<std::uint64_t>(value) << 1) ^ static_cast<std::uint64_t>(value >> 63);
}

// Bytes a varint of value takes (1..10).
constexpr std::size_t varint_size(std::uint64_t value) noexcept {
    std::size_t n = 1;
    while (value >= 0x80) {
        value >>= 7;
        ++n;
    }
    return n;
}

inline char* write_varint(char* p, std::uint64_t value) noexcept {
    while (value >= 0x80) {
        *p++ = static_cast<char>(static_cast<std::uint8_t>(value) | 0x80);
        value >>= 7;
    }
    *p++ = static_cast<char>(value);
    return p;
}

inline void append_varint(std::string& out, std::uint64_t value) {
    char buffer[10];
    out.append(buffer, static_cast<std::size_t>(write_varint(buffer, value) - buffer));
}

class Writer {
public:
    // A nested message in progress: where its length byte is.
    struct Mark {
        std::size_t length_at;
    };

    explicit Writer(std::string& out) : out_(&out) {}

    std::string& buffer() noexcept { return *out_; }

    void tag(std::uint32_t field, WireType type) {
        append_varint(*out_, (static_cast<std::uint64_t>(field) << 3) | static_cast<std::uint32_t>(type));
    }

    // uint32/uint64/int32 (non-negative)/bool/enum.
    void uint(std::uint32_t field, std::uint64_t value) {
        char buffer[20];
        char* p = write_varint(buffer, (static_cast<std::uint64_t>(field) << 3));
        p = write_varint(p, value);
        out_->append(buffer, static_cast<std::size_t>(p - buffer));
    }
    // int32/int64: two's complement as a 10-byte varint when negative.
    void int64(std::uint32_t field, std::int64_t value) { uint(field, static_cast<std::uint64_t>(value)); }
    // sint32/sint64.
    void sint(std::uint32_t field, std::int64_t value) { uint(field, zigzag(value)); }
    void boolean(std::uint32_t field, bool value) { uint(field, value ? 1 : 0); }

    void fixed64(std::uint32_t field, std::uint64_t value) {
        tag(field, WireType::fixed64);
        char bytes[8];
        for (int i = 0; i < 8; ++i) {
            bytes[i] = static_cast<char>(static_cast<std::uint8_t>(value >> (8 * i)));
        }
        out_->append(bytes, 8);
    }
    void float64(std::uint32_t field, double value) {
        std::uint64_t bits;
        std::memcpy(&bits, &value, sizeof bits);
        fixed64(field, bits);
    }

    void bytes(std::uint32_t field, std::string_view value) {
        tag(field, WireType::length_delimited);
        append_varint(*out_, value.size());
        out_->append(value.data(), value.size());
    }
    void string(std::uint32_t field, std::string_view value) { bytes(field, value); }

    // A packed repeated varint field (proto3's default for scalars).
    template <class Range>
    void packed(std::uint32_t field, const Range& values) {
        const Mark mark = begin(field);
        for (const auto v : values) {
            append_varint(*out_, static_cast<std::uint64_t>(v));
        }
        end(mark);
    }

    Mark begin(std::uint32_t field) {
        tag(field, WireType::length_delimited);
        out_->push_back('\0');
        return Mark{out_->size() - 1};
    }

    void end(Mark mark) {
        const std::size_t body_at = mark.length_at + 1;
        const std::size_t length = out_->size() - body_at;
        const std::size_t extra = varint_size(length) - 1;
        if (extra > 0) {
            out_->insert(body_at, extra, '\0');
        }
        write_varint(&(*out_)[mark.length_at], length);
    }

private:
    std::string* out_;
};

} // namespace protobuf
} // namespace sinks
} // namespace pycroscope
