#pragma once
// Bytes in and out of a capture: LEB128 varints, zigzag for signed values,
// little-endian fixed words and length-prefixed strings. The writer side
// (ByteBuffer) reserves room once per event and then writes without checks;
// the reader side (ByteReader) checks every byte against the end of its block
// and throws CaptureError, so no input can make it read out of bounds.

#include "pycroscope/capture/capture_error.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

namespace pycroscope {
namespace capture {

constexpr std::uint64_t zigzag(std::int64_t value) noexcept {
    return (static_cast<std::uint64_t>(value) << 1) ^ static_cast<std::uint64_t>(value >> 63);
}
constexpr std::int64_t unzigzag(std::uint64_t value) noexcept {
    return static_cast<std::int64_t>(value >> 1) ^ -static_cast<std::int64_t>(value & 1);
}

// A growable byte buffer. ensure(n) before up to n bytes of put_*().
class ByteBuffer {
public:
    static constexpr std::size_t max_varint = 10;

    ByteBuffer() = default;
    ByteBuffer(const ByteBuffer&) = delete;
    ByteBuffer& operator=(const ByteBuffer&) = delete;

    const unsigned char* data() const noexcept { return data_.get(); }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    void clear() noexcept { size_ = 0; }

    void ensure(std::size_t more) {
        if (capacity_ - size_ >= more) {
            return;
        }
        std::size_t capacity = capacity_ == 0 ? 4096 : capacity_;
        while (capacity - size_ < more) {
            capacity *= 2;
        }
        std::unique_ptr<unsigned char[]> grown(new unsigned char[capacity]);
        if (size_ > 0) {
            std::memcpy(grown.get(), data_.get(), size_);
        }
        data_ = std::move(grown);
        capacity_ = capacity;
    }

    void put_byte(std::uint8_t value) noexcept { data_[size_++] = value; }
    void put_varint(std::uint64_t value) noexcept {
        unsigned char* p = data_.get() + size_;
        while (value >= 0x80) {
            *p++ = static_cast<unsigned char>(value | 0x80);
            value >>= 7;
        }
        *p++ = static_cast<unsigned char>(value);
        size_ = static_cast<std::size_t>(p - data_.get());
    }
    void put_u32(std::uint32_t value) noexcept {
        for (int i = 0; i < 4; ++i) {
            data_[size_++] = static_cast<unsigned char>(value >> (8 * i));
        }
    }
    void put_u64(std::uint64_t value) noexcept {
        for (int i = 0; i < 8; ++i) {
            data_[size_++] = static_cast<unsigned char>(value >> (8 * i));
        }
    }
    void put_bytes(const void* bytes, std::size_t n) noexcept {
        if (n > 0) {
            std::memcpy(data_.get() + size_, bytes, n);
            size_ += n;
        }
    }

    // Checked helpers for records written once (header, trailer, definitions).
    void varint(std::uint64_t value) {
        ensure(max_varint);
        put_varint(value);
    }
    void byte(std::uint8_t value) {
        ensure(1);
        put_byte(value);
    }
    void u64(std::uint64_t value) {
        ensure(8);
        put_u64(value);
    }
    // A string: varint length then its bytes.
    void string(std::string_view text) {
        varint(text.size());
        ensure(text.size());
        put_bytes(text.data(), text.size());
    }
    // A C string that may be null: varint 0 for null, else length + 1, bytes.
    void nullable_string(const char* text) {
        if (text == nullptr) {
            varint(0);
            return;
        }
        const std::size_t n = std::strlen(text);
        varint(n + 1);
        ensure(n);
        put_bytes(text, n);
    }

private:
    std::unique_ptr<unsigned char[]> data_;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};

// Reads one block's bytes; offset() is the file offset of the next byte.
class ByteReader {
public:
    ByteReader(const std::string& file, std::uint64_t file_offset, const unsigned char* data, std::size_t size) noexcept
        : file_(&file), base_(file_offset), begin_(data), p_(data), end_(data + size) {}

    std::uint64_t offset() const noexcept { return base_ + static_cast<std::uint64_t>(p_ - begin_); }
    std::size_t remaining() const noexcept { return static_cast<std::size_t>(end_ - p_); }
    bool at_end() const noexcept { return p_ == end_; }

    [[noreturn]] void fail(const std::string& what) const { throw CaptureError(*file_, offset(), what); }

    std::uint8_t byte() {
        if (p_ == end_) {
            fail("record runs past the end of its block");
        }
        return *p_++;
    }
    std::uint64_t varint() {
        std::uint64_t value = 0;
        for (unsigned shift = 0; shift < 64; shift += 7) {
            if (p_ == end_) {
                fail("varint runs past the end of its block");
            }
            const unsigned char b = *p_++;
            value |= static_cast<std::uint64_t>(b & 0x7F) << shift;
            if ((b & 0x80) == 0) {
                if (shift == 63 && b > 1) {
                    fail("varint overflows 64 bits");
                }
                return value;
            }
        }
        fail("varint longer than 10 bytes");
    }
    std::uint32_t varint32(const char* what) {
        const std::uint64_t value = varint();
        if (value > 0xFFFFFFFFu) {
            fail(std::string(what) + " does not fit 32 bits");
        }
        return static_cast<std::uint32_t>(value);
    }
    std::uint64_t u64() {
        if (remaining() < 8) {
            fail("record runs past the end of its block");
        }
        std::uint64_t value = 0;
        for (int i = 0; i < 8; ++i) {
            value |= static_cast<std::uint64_t>(p_[i]) << (8 * i);
        }
        p_ += 8;
        return value;
    }
    std::string string() {
        const std::uint64_t n = varint();
        if (n > remaining()) {
            fail("string runs past the end of its block");
        }
        std::string text(reinterpret_cast<const char*>(p_), static_cast<std::size_t>(n));
        p_ += n;
        return text;
    }
    // nullable_string(): false for null.
    bool nullable_string(std::string& out) {
        const std::uint64_t n = varint();
        if (n == 0) {
            return false;
        }
        if (n - 1 > remaining()) {
            fail("string runs past the end of its block");
        }
        out.assign(reinterpret_cast<const char*>(p_), static_cast<std::size_t>(n - 1));
        p_ += n - 1;
        return true;
    }

    // Unchecked fast path for the event decoder: the caller checked that at
    // least `n` bytes remain.
    const unsigned char*& cursor() noexcept { return p_; }
    const unsigned char* end() const noexcept { return end_; }

private:
    const std::string* file_;
    std::uint64_t base_;
    const unsigned char* begin_;
    const unsigned char* p_;
    const unsigned char* end_;
};

} // namespace capture
} // namespace pycroscope
