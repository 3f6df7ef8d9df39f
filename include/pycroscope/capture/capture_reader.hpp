#pragma once
// Reads a capture (format.hpp, docs/capture-format.md) back into the batches
// the live drain delivered: same threads, same order, same events (their
// SourceLocation pointers point into locations the reader owns, valid while it
// lives).
//
// A file that is not a capture, has a newer format version, or holds a
// damaged block throws CaptureError (file and offset in the message). A file
// without its trailer (the writer was killed, the disk filled) yields every
// whole chunk and then reports cut(). Whatever the input claims, the reader
// reads within its blocks and allocates at most one block (max_block_bytes)
// plus what the bytes read can describe.

#include "pycroscope/capture/byte_codec.hpp"
#include "pycroscope/capture/capture_error.hpp"
#include "pycroscope/capture/crc32.hpp"
#include "pycroscope/capture/format.hpp"
#include "pycroscope/capture/session_records.hpp"
#include "pycroscope/core/event.hpp"
#include "pycroscope/core/session_info.hpp"
#include "pycroscope/core/source_location.hpp"
#include "pycroscope/core/thread_info.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace pycroscope {
namespace capture {

// One batch as the drain delivered it. events may be rewritten in place (by
// EventProcessors); both stay valid until the next call to next().
struct CaptureBatch {
    const ThreadInfo* thread = nullptr;
    Event* events = nullptr;
    std::size_t count = 0;
};

struct ReadOptions {
    // Off only for fuzzing, so that mutated inputs reach the decoders behind
    // the checksums: the decoders must then stay safe on their own.
    bool verify_checksums = true;
};

class CaptureReader {
public:
    // Opens a file and reads its header.
    explicit CaptureReader(std::string path, ReadOptions options = {}) : name_(std::move(path)), options_(options) {
        file_ = std::fopen(name_.c_str(), "rb");
        if (file_ == nullptr) {
            const int error = errno;
            throw CaptureError(name_, 0, std::string("cannot open: ") + std::strerror(error));
        }
        if (std::fseek(file_, 0, SEEK_END) == 0) {
            const long size = std::ftell(file_);
            size_ = size > 0 ? static_cast<std::uint64_t>(size) : 0;
        }
        std::fseek(file_, 0, SEEK_SET);
        read_header();
    }

    // Reads a capture held in memory (bytes must outlive the reader); name is
    // for messages.
    CaptureReader(std::string name, const void* bytes, std::size_t size, ReadOptions options = {})
        : name_(std::move(name)), options_(options), memory_(static_cast<const unsigned char*>(bytes)), size_(size) {
        read_header();
    }

    ~CaptureReader() {
        if (file_ != nullptr) {
            std::fclose(file_);
        }
    }
    CaptureReader(const CaptureReader&) = delete;
    CaptureReader& operator=(const CaptureReader&) = delete;

    const std::string& name() const noexcept { return name_; }
    std::uint32_t version() const noexcept { return version_; }
    const SessionInfo& info() const noexcept { return info_; }

    // The next batch, in the order the writer saw them; false at the end of
    // the capture (complete() or cut()). Throws CaptureError for damage.
    bool next(CaptureBatch& batch) {
        for (;;) {
            if (in_chunk_) {
                if (!chunk_.at_end()) {
                    decode_batch(batch);
                    return true;
                }
                in_chunk_ = false;
            }
            if (finished_) {
                return false;
            }
            read_block();
        }
    }

    bool finished() const noexcept { return finished_; }
    bool complete() const noexcept { return complete_; }
    bool cut() const noexcept { return finished_ && !complete_; }
    // Where a cut file ends being readable: the end of its last whole block.
    std::uint64_t cut_offset() const noexcept { return cut_offset_; }

    // The session's summary: the trailer's when complete; for a cut capture,
    // one made of what was read (stop at the last timestamp, threads with the
    // events read). Meaningful once finished().
    const SessionSummary& summary() {
        if (!complete_) {
            build_cut_summary();
        }
        return summary_;
    }

    // Every thread seen so far, by index, as of its latest batch.
    std::vector<ThreadInfo> threads() const {
        std::vector<ThreadInfo> out;
        for (const auto& entry : threads_) {
            out.push_back(entry.second.info);
        }
        return out;
    }

    std::uint64_t chunks_read() const noexcept { return chunks_; }
    std::uint64_t events_read() const noexcept { return events_; }
    // Location index i (1-based; 0 is null), as the file numbers them.
    std::size_t location_count() const noexcept { return index_.size() - 1; }
    const SourceLocation* location(std::size_t index) const noexcept {
        return index < index_.size() ? index_[index] : nullptr;
    }

private:
    struct ThreadSlot {
        ThreadInfo info;
        ThreadCodecState codec;
        std::uint64_t chunk = 0; // the chunk whose codec state this is
    };

    // Bytes at the current offset; fewer than n at the end of the input.
    std::size_t read_bytes(void* out, std::size_t n) {
        std::size_t got = 0;
        if (memory_ != nullptr) {
            const std::uint64_t left = offset_ < size_ ? size_ - offset_ : 0;
            got = static_cast<std::size_t>(std::min<std::uint64_t>(left, n));
            if (got > 0) {
                std::memcpy(out, memory_ + offset_, got);
            }
        } else {
            got = std::fread(out, 1, n, file_);
        }
        offset_ += got;
        return got;
    }

    // A block read by the caller must lie within the input; a length past the
    // end means the file was cut.
    bool have(std::uint64_t n) const noexcept { return offset_ <= size_ && size_ - offset_ >= n; }

    static std::uint32_t le32(const unsigned char* p) noexcept {
        return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
               static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
    }

    void read_header() {
        unsigned char prefix[file_prefix_bytes];
        const std::size_t got = read_bytes(prefix, sizeof prefix);
        if (got < sizeof file_magic || std::memcmp(prefix, file_magic, sizeof file_magic) != 0) {
            const bool cut_magic = got < sizeof file_magic && std::memcmp(prefix, file_magic, got) == 0;
            throw CaptureError(name_, 0,
                               cut_magic ? "cut before its header: not a whole capture"
                                         : "not a pycroscope capture (no capture magic at the start)");
        }
        if (got < file_prefix_bytes) {
            throw CaptureError(name_, got, "cut before its header: not a whole capture");
        }
        version_ = le32(prefix + 8);
        if (version_ == 0 || version_ > format_version) {
            throw CaptureError(name_, 8,
                               "format version " + std::to_string(version_) +
                                   (version_ == 0 ? " is not a valid version"
                                                  : " is newer than this reader's (" +
                                                        std::to_string(format_version) +
                                                        "); read it with a newer pycroscope"));
        }
        std::uint32_t tag = 0;
        if (!read_frame(tag) || tag != header_tag) {
            if (!finished_ && tag != header_tag) {
                throw CaptureError(name_, file_prefix_bytes, "the first block is not the header");
            }
            throw CaptureError(name_, offset_, "cut before its header ended: not a whole capture");
        }
        ByteReader in(name_, block_offset_ + block_frame_bytes, body_.data(), body_.size());
        info_ = read_session_info(in);
        if (!in.at_end()) {
            in.fail("header has bytes after its last field");
        }
        index_.assign(1, nullptr);
        finished_ = false;
        cut_offset_ = offset_;
    }

    // Reads the next block's frame and body into body_. false: the input ends
    // (cut) before the block does; finished_ is then set.
    bool read_frame(std::uint32_t& tag) {
        block_offset_ = offset_;
        unsigned char frame[block_frame_bytes];
        const std::size_t got = read_bytes(frame, sizeof frame);
        if (got < sizeof frame) {
            finished_ = true;
            return false;
        }
        tag = le32(frame);
        const std::uint32_t length = le32(frame + 4);
        if (options_.verify_checksums && crc32(frame, 8) != le32(frame + 8)) {
            throw CaptureError(name_, block_offset_, "damaged block frame (checksum mismatch)");
        }
        if (tag != header_tag && tag != chunk_tag && tag != trailer_tag) {
            throw CaptureError(name_, block_offset_, "unknown block tag " + std::to_string(tag));
        }
        if (length > max_block_bytes) {
            throw CaptureError(name_, block_offset_,
                               "block of " + std::to_string(length) + " bytes exceeds the format's limit");
        }
        if (!have(length)) {
            finished_ = true;
            return false;
        }
        body_.resize(length);
        if (read_bytes(body_.data(), length) < length) {
            finished_ = true;
            return false;
        }
        if (options_.verify_checksums && crc32(body_.data(), body_.size()) != le32(frame + 12)) {
            throw CaptureError(name_, block_offset_, "damaged block (body checksum mismatch)");
        }
        return true;
    }

    void read_block() {
        std::uint32_t tag = 0;
        if (!read_frame(tag)) {
            return; // cut: cut_offset_ is the end of the last whole block
        }
        const std::uint64_t body_offset = block_offset_ + block_frame_bytes;
        if (tag == chunk_tag) {
            chunk_ = ByteReader(name_, body_offset, body_.data(), body_.size());
            read_definitions();
            ++chunks_;
            in_chunk_ = true;
            cut_offset_ = offset_;
            return;
        }
        if (tag == header_tag) {
            throw CaptureError(name_, block_offset_, "a second header");
        }
        ByteReader in(name_, body_offset, body_.data(), body_.size());
        TrailerRecord record = read_trailer(in, info_);
        if (!in.at_end()) {
            in.fail("trailer has bytes after its last field");
        }
        if (record.chunks != chunks_ || record.events != events_) {
            throw CaptureError(name_, block_offset_,
                               "the trailer counts " + std::to_string(record.chunks) + " chunks and " +
                                   std::to_string(record.events) + " events but the file holds " +
                                   std::to_string(chunks_) + " and " + std::to_string(events_));
        }
        unsigned char extra = 0;
        if (read_bytes(&extra, 1) != 0) {
            throw CaptureError(name_, offset_ - 1, "data after the trailer");
        }
        summary_ = std::move(record.summary);
        complete_ = true;
        finished_ = true;
        cut_offset_ = offset_;
    }

    void read_definitions() {
        const std::size_t n = read_count(chunk_, "location");
        std::string text;
        for (std::size_t i = 0; i < n; ++i) {
            SourceLocation location{};
            location.kind = static_cast<LocationKind>(chunk_.varint32("location kind"));
            location.line = chunk_.varint32("location line");
            location.name = intern(chunk_);
            location.function = intern(chunk_);
            location.file = intern(chunk_);
            locations_.push_back(location);
            index_.push_back(&locations_.back());
        }
        children_.clear();
    }

    const char* intern(ByteReader& in) {
        std::string text;
        if (!in.nullable_string(text)) {
            return nullptr;
        }
        strings_.push_back(std::move(text));
        return strings_.back().c_str();
    }

    void decode_batch(CaptureBatch& batch) {
        ByteReader& in = chunk_;
        const std::uint32_t index = in.varint32("thread index");
        const std::uint8_t bits = in.byte();
        if ((bits & ~batch_bits::all) != 0) {
            in.fail("unknown batch bits");
        }
        auto found = threads_.find(index);
        if (found == threads_.end()) {
            if (bits != batch_bits::all) {
                in.fail("first batch of thread " + std::to_string(index) + " does not describe it");
            }
            found = threads_.emplace(index, ThreadSlot{}).first;
            found->second.info.index = index;
        }
        ThreadSlot& slot = found->second;
        if ((bits & batch_bits::name) != 0) {
            slot.info.name = in.string();
        }
        if ((bits & batch_bits::os_tid) != 0) {
            slot.info.os_tid = in.varint();
        }
        if ((bits & batch_bits::lost) != 0) {
            slot.info.lost = in.varint();
        }
        const std::uint64_t count = in.varint();
        if (count == 0 || count > max_batch_events || count > in.remaining()) {
            in.fail("batch of " + std::to_string(count) + " events is empty, too large or longer than its chunk");
        }
        if (slot.chunk != chunks_) {
            slot.codec.reset();
            slot.chunk = chunks_;
        }
        events_buffer_.resize(static_cast<std::size_t>(count));
        for (std::size_t i = 0; i < count; ++i) {
            decode(in, slot.codec, events_buffer_[i]);
            if (events_buffer_[i].timestamp > last_timestamp_) {
                last_timestamp_ = events_buffer_[i].timestamp;
            }
        }
        slot.info.events += count;
        events_ += count;
        batch.thread = &slot.info;
        batch.events = events_buffer_.data();
        batch.count = static_cast<std::size_t>(count);
    }

    std::uint32_t location_at(ByteReader& in) {
        const std::uint64_t index = in.varint();
        if (index >= index_.size()) {
            in.fail("location index " + std::to_string(index) + " is not defined");
        }
        return static_cast<std::uint32_t>(index);
    }
    std::uint64_t id_of(std::uint32_t index) const noexcept { return location_id(index_[index]); }

    void decode(ByteReader& in, ThreadCodecState& st, Event& e) {
        std::uint8_t tag = in.byte();
        while ((tag & tag_bits::code_mask) == static_cast<std::uint8_t>(Code::time_back)) {
            if (tag != static_cast<std::uint8_t>(Code::time_back)) {
                in.fail("time step with modifier bits");
            }
            const std::uint64_t back = in.varint();
            st.last_ts -= back;
            tag = in.byte();
        }
        const std::uint8_t code = tag & tag_bits::code_mask;
        const bool a = (tag & tag_bits::a) != 0;
        const bool b = (tag & tag_bits::b) != 0;
        e = Event{};
        st.last_ts += in.varint();
        e.timestamp = st.last_ts;
        const CodeClass cls = code < code_count ? class_of(code) : CodeClass::invalid;
        if (cls == CodeClass::invalid) {
            in.fail("unknown event code " + std::to_string(code));
        }
        if (cls == CodeClass::raw) {
            if ((tag & ~tag_bits::code_mask) != 0) {
                in.fail("raw event with modifier bits");
            }
            e.kind = static_cast<EventKind>(in.byte());
            e.flags = in.byte();
            if (e.kind != EventKind::none && code_of(e.kind) != Code::raw) {
                in.fail("raw event of a kind that has its own code");
            }
            e.id = in.varint();
            e.payload = in.varint();
            read_extras(in, e);
            return;
        }
        e.kind = code_kinds[code];
        if ((tag & tag_bits::flags) != 0) {
            e.flags = in.byte();
            if (e.flags == 0) {
                in.fail("flags byte of 0 announced");
            }
        }
        switch (cls) {
            case CodeClass::open: {
                const std::uint32_t top = st.top();
                std::uint32_t id;
                if (a) {
                    id = children_.get(top);
                    if (id == ChildCache::no_child) {
                        in.fail("predicted child without a previous one");
                    }
                } else {
                    id = location_at(in);
                    children_.set(top, id);
                }
                e.id = id_of(id);
                if (b) {
                    e.payload = in.varint();
                    read_extras(in, e);
                }
                st.open(id);
                break;
            }
            case CodeClass::close: {
                std::uint32_t id;
                if (a) {
                    id = location_at(in);
                    st.close_explicit(id);
                } else {
                    if (st.stack.empty()) {
                        in.fail("implied close with no open span");
                    }
                    id = st.stack.back();
                    st.close_top();
                }
                e.id = id_of(id);
                if (b) {
                    e.payload = in.varint();
                    read_extras(in, e);
                }
                break;
            }
            case CodeClass::line: {
                std::uint32_t id;
                if (a) {
                    id = location_at(in);
                } else {
                    if (st.stack.empty()) {
                        in.fail("implied line location with no open span");
                    }
                    id = st.stack.back();
                }
                e.id = id_of(id);
                st.last_line += static_cast<std::uint64_t>(unzigzag(in.varint()));
                e.payload = st.last_line;
                if (b) {
                    read_extras(in, e);
                }
                break;
            }
            case CodeClass::alloc: {
                if (a) {
                    st.last_site = location_at(in);
                }
                e.id = id_of(st.last_site);
                st.last_address += static_cast<std::uint64_t>(unzigzag(in.varint()));
                e.payload = st.last_address;
                if (!b) {
                    st.last_alloc_bytes = read_bytes_field(in);
                }
                set_memory_bytes(e, st.last_alloc_bytes);
                break;
            }
            case CodeClass::free: {
                e.id = a ? id_of(location_at(in)) : 0;
                st.last_address += static_cast<std::uint64_t>(unzigzag(in.varint()));
                e.payload = st.last_address;
                if (b) {
                    set_memory_bytes(e, read_bytes_field(in));
                }
                break;
            }
            case CodeClass::counter: {
                if (a) {
                    in.fail("counter with modifier a");
                }
                e.id = id_of(location_at(in));
                e.payload = in.u64();
                if (b) {
                    read_extras(in, e);
                }
                break;
            }
            case CodeClass::sample: {
                if (a) {
                    in.fail("sample with modifier a");
                }
                e.id = in.varint();
                e.payload = id_of(location_at(in));
                if (b) {
                    read_extras(in, e);
                }
                break;
            }
            default: { // plain
                e.id = id_of(location_at(in));
                if (a) {
                    e.payload = in.varint();
                }
                if (b) {
                    read_extras(in, e);
                }
                break;
            }
        }
    }

    static std::uint64_t read_bytes_field(ByteReader& in) {
        const std::uint64_t bytes = in.varint();
        if (bytes > max_memory_event_bytes) {
            in.fail("memory bytes exceed 48 bits");
        }
        return bytes;
    }
    static void read_extras(ByteReader& in, Event& e) {
        e.aux = in.varint32("aux");
        const std::uint64_t reserved = in.varint();
        if (reserved > 0xFFFF) {
            in.fail("reserved does not fit 16 bits");
        }
        e.aux_high = static_cast<std::uint16_t>(reserved);
    }

    void build_cut_summary() {
        summary_ = SessionSummary{};
        summary_.info = info_;
        summary_.stop_ticks = std::max(info_.start_ticks, last_timestamp_);
        // As SessionInfo::session_ns(), saturated: a cut file's last timestamp may be anything.
        const double ns = static_cast<double>(static_cast<std::int64_t>(summary_.stop_ticks - info_.start_ticks)) *
                          info_.calibration.ns_per_tick;
        constexpr double limit = 9.2e18;
        summary_.duration_ns = ns >= limit ? static_cast<std::int64_t>(limit)
                                           : ns <= -limit ? -static_cast<std::int64_t>(limit) : static_cast<std::int64_t>(ns);
        for (const auto& entry : threads_) {
            summary_.threads.push_back(entry.second.info);
            summary_.total_events += entry.second.info.events;
            summary_.total_lost += entry.second.info.lost;
        }
    }

    std::string name_;
    ReadOptions options_;
    std::FILE* file_ = nullptr;
    const unsigned char* memory_ = nullptr;
    std::uint64_t size_ = 0;
    std::uint64_t offset_ = 0;
    std::uint64_t block_offset_ = 0;
    std::uint32_t version_ = 0;
    SessionInfo info_;
    SessionSummary summary_;
    std::vector<unsigned char> body_;
    ByteReader chunk_{name_, 0, nullptr, 0};
    bool in_chunk_ = false;
    bool finished_ = false;
    bool complete_ = false;
    std::uint64_t cut_offset_ = 0;
    std::uint64_t chunks_ = 0;
    std::uint64_t events_ = 0;
    std::uint64_t last_timestamp_ = 0;
    std::deque<std::string> strings_;
    std::deque<SourceLocation> locations_;
    std::vector<const SourceLocation*> index_{nullptr};
    std::map<std::uint32_t, ThreadSlot> threads_;
    ChildCache children_;
    std::vector<Event> events_buffer_;
};

} // namespace capture
} // namespace pycroscope
