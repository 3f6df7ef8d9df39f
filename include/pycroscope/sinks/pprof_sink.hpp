#pragma once
// pprof profiles (google/pprof proto/profile.proto), gzip-compressed as
// `go tool pprof` and pprof-compatible viewers expect, written with the
// project's own protobuf and DEFLATE encoders (no zlib, no protobuf library).
//
// One sink writes one profile, so a run that wants both writes two files
// with two sinks (each file is one Profile message; pprof has no container):
//   PprofProfile::cpu          time per call stack, with a "thread" label.
//       Traced runs: sample types calls/count (entries of the stack) and
//       wall/nanoseconds (self time: the tracer measures wall-clock time).
//       Sampling runs (the stream holds stack samples): samples/count and,
//       when the sampling interval is known, wall/nanoseconds = samples x
//       interval (period). Frames carry the sampled line.
//   PprofProfile::allocations  the Python allocations traced through the
//       PyMem domains, per stack (open spans, then the allocating line):
//       alloc_objects/count, alloc_space/bytes, then inuse_objects/count and
//       inuse_space/bytes, what was still allocated when the session stopped.
//       In-use needs the frees as the memory model rewrites them (known frees
//       carry the lifetime, so the allocation is found by its timestamp and
//       size). In sampling mode (MemoryOptions::sample_bytes) an "object" is
//       one recorded sample.
// Functions carry name, file and first line; locations one Line each.

#include "pycroscope/model/sample_decoder.hpp"
#include "pycroscope/core/call_tree.hpp"
#include "pycroscope/core/location_tree.hpp"
#include "pycroscope/sinks/file_sink.hpp"
#include "pycroscope/sinks/gzip_writer.hpp"
#include "pycroscope/sinks/memory_folded_sink.hpp"
#include "pycroscope/sinks/per_thread_state.hpp"
#include "pycroscope/sinks/protobuf_writer.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace pycroscope {
namespace sinks {

enum class PprofProfile { cpu, allocations };

// Builds one Profile message: the string table (index 0 is ""), functions and
// locations made on first use, samples appended as they come.
class PprofBuilder {
public:
    struct ValueType {
        const char* type;
        const char* unit;
    };

    PprofBuilder() { string_id(""); }

    std::int64_t string_id(const std::string& text) {
        auto found = strings_.find(text);
        if (found != strings_.end()) {
            return found->second;
        }
        const auto id = static_cast<std::int64_t>(table_.size());
        table_.push_back(text);
        strings_.emplace(text, id);
        return id;
    }

    // The location of code at line (0: the function's first line).
    std::uint64_t location_id(const SourceLocation* location, std::uint32_t line = 0) {
        const auto key = std::make_pair(location, line);
        auto found = locations_.find(key);
        if (found != locations_.end()) {
            return found->second;
        }
        const std::uint64_t id = locations_.size() + 1;
        locations_.emplace(key, id);
        const std::uint64_t function = function_id(location);
        namespace pb = protobuf;
        pb::Writer w(location_bytes_);
        const auto message = w.begin(4); // Profile.location
        w.uint(1, id);                   // Location.id
        const auto line_message = w.begin(4); // Location.line
        w.uint(1, function);                  // Line.function_id
        w.int64(2, line != 0 ? line : (location != nullptr ? location->line : 0)); // Line.line
        w.end(line_message);
        w.end(message);
        return id;
    }

    // stack: location ids, leaf first (pprof's order). values: one per sample type.
    void add_sample(const std::vector<std::uint64_t>& stack, const std::vector<std::int64_t>& values,
                    const std::string& thread) {
        protobuf::Writer w(sample_bytes_);
        const auto message = w.begin(2); // Profile.sample
        w.packed(1, stack);              // Sample.location_id
        w.packed(2, values);             // Sample.value
        if (!thread.empty()) {
            const auto label = w.begin(3); // Sample.label
            w.int64(1, string_id("thread")); // Label.key
            w.int64(2, string_id(thread));   // Label.str
            w.end(label);
        }
        w.end(message);
        ++samples_;
    }

    std::uint64_t samples() const noexcept { return samples_; }

    // The serialized Profile.
    std::string finish(const std::vector<ValueType>& types, std::size_t default_type, const SessionSummary& summary,
                       ValueType period_type = {nullptr, nullptr}, std::int64_t period = 0) {
        std::string out;
        protobuf::Writer w(out);
        std::vector<std::pair<std::int64_t, std::int64_t>> type_ids;
        for (const auto& t : types) {
            type_ids.emplace_back(string_id(t.type), string_id(t.unit));
        }
        for (const auto& ids : type_ids) {
            const auto message = w.begin(1); // Profile.sample_type
            w.int64(1, ids.first);           // ValueType.type
            w.int64(2, ids.second);          // ValueType.unit
            w.end(message);
        }
        out += sample_bytes_;
        out += location_bytes_;
        out += function_bytes_;
        const std::int64_t comment = string_id("pycroscope " + summary.info.process_name);
        std::int64_t period_ids[2] = {0, 0};
        if (period_type.type != nullptr) {
            period_ids[0] = string_id(period_type.type);
            period_ids[1] = string_id(period_type.unit);
        }
        const std::int64_t default_id = default_type < type_ids.size() ? type_ids[default_type].first : 0;
        for (const auto& text : table_) {
            w.string(6, text); // Profile.string_table
        }
        w.int64(9, summary.info.start_unix_ns); // time_nanos
        w.int64(10, summary.duration_ns);       // duration_nanos
        if (period_type.type != nullptr) {
            const auto message = w.begin(11); // period_type
            w.int64(1, period_ids[0]);
            w.int64(2, period_ids[1]);
            w.end(message);
            w.int64(12, period);
        }
        w.packed(13, std::vector<std::int64_t>{comment}); // comment
        w.int64(14, default_id);                          // default_sample_type
        return out;
    }

private:
    // Functions are keyed by name and file: the line locations of one
    // function (allocation sites) share its Function.
    std::uint64_t function_id(const SourceLocation* location) {
        std::string name = "<unknown>", system_name, file;
        std::uint32_t line = 0;
        if (location != nullptr) {
            const bool line_site = location->kind == LocationKind::python_line && location->function != nullptr;
            const char* shown = line_site ? location->function : location->display_name();
            name = shown != nullptr ? shown : "";
            system_name = location->function != nullptr ? location->function : name;
            file = location->file != nullptr ? location->file : "";
            line = line_site ? 0 : location->line;
        }
        std::string key = name;
        key.push_back('\0');
        key += file;
        auto found = functions_.find(key);
        if (found != functions_.end()) {
            return found->second;
        }
        const std::uint64_t id = functions_.size() + 1;
        functions_.emplace(std::move(key), id);
        protobuf::Writer w(function_bytes_);
        const auto message = w.begin(5);    // Profile.function
        w.uint(1, id);                      // Function.id
        w.int64(2, string_id(name));        // Function.name
        w.int64(3, string_id(system_name)); // Function.system_name
        w.int64(4, string_id(file));        // Function.filename
        w.int64(5, line);                   // Function.start_line
        w.end(message);
        return id;
    }

    struct PairHash {
        std::size_t operator()(const std::pair<const SourceLocation*, std::uint32_t>& key) const noexcept {
            return std::hash<const void*>()(key.first) * 31 + key.second;
        }
    };

    std::vector<std::string> table_;
    std::unordered_map<std::string, std::int64_t> strings_;
    std::unordered_map<std::string, std::uint64_t> functions_; // name \0 file -> id
    std::unordered_map<std::pair<const SourceLocation*, std::uint32_t>, std::uint64_t, PairHash> locations_;
    std::string sample_bytes_, location_bytes_, function_bytes_;
    std::uint64_t samples_ = 0;
};

class PprofSink : public FileSink {
public:
    explicit PprofSink(std::string path, PprofProfile profile = PprofProfile::cpu)
        : FileSink(profile == PprofProfile::cpu ? "pprof cpu profile" : "pprof allocation profile", std::move(path)),
          profile_(profile) {}

    // The sampling interval, for wall/nanoseconds of sampled profiles (0: counts only). Before start().
    void set_sample_interval_ns(std::uint64_t ns) noexcept { sample_interval_ns_ = ns; }

protected:
    struct ThreadState {
        CallTree tree;
        StackPosition position;
    };
    struct AllocationTotals {
        std::int64_t alloc_objects = 0, alloc_bytes = 0, inuse_objects = 0, inuse_bytes = 0;
    };
    struct Live {
        std::uint64_t key; // thread index << 32 | leaf node
        std::uint64_t bytes;
    };

    void open_(const SessionInfo& info) override {
        FileSink::open_(info);
        threads_.clear();
        sample_streams_.clear();
        sampled_.clear();
        tree_.clear();
        allocations_.clear();
        live_.clear();
    }

    void sink_it_(const ThreadInfo& thread, const Event* events, std::size_t count) override {
        ThreadState& state = threads_[thread.index];
        for (std::size_t i = 0; i < count; ++i) {
            const Event& e = events[i];
            if (profile_ == PprofProfile::cpu) {
                if (e.kind == EventKind::sample || e.kind == EventKind::sample_frame) {
                    sample_streams_.push(thread.index, e, [&](const model::SampleView& s) { add_sample(s); });
                } else {
                    state.tree.add(e);
                }
                continue;
            }
            if (e.kind == EventKind::mem_alloc) {
                const SourceLocation* line = e.location() != nullptr ? e.location() : &unattributed_allocation;
                const std::uint64_t key =
                    (static_cast<std::uint64_t>(thread.index) << 32) | tree_.child(state.position.node(), line);
                AllocationTotals& totals = allocations_[key];
                const std::uint64_t bytes = memory_bytes(e);
                ++totals.alloc_objects;
                totals.alloc_bytes += static_cast<std::int64_t>(bytes);
                if ((e.flags & memory_flags::born_freed) == 0) {
                    ++totals.inuse_objects;
                    totals.inuse_bytes += static_cast<std::int64_t>(bytes);
                    live_.emplace(std::make_pair(e.timestamp, bytes), Live{key, bytes});
                }
            } else if (e.kind == EventKind::mem_free) {
                if ((e.flags & memory_flags::known) == 0 || e.payload > e.timestamp) {
                    continue;
                }
                const auto range = live_.equal_range(std::make_pair(e.timestamp - e.payload, memory_bytes(e)));
                if (range.first != range.second) {
                    AllocationTotals& totals = allocations_[range.first->second.key];
                    --totals.inuse_objects;
                    totals.inuse_bytes -= static_cast<std::int64_t>(range.first->second.bytes);
                    live_.erase(range.first);
                }
            } else {
                state.position.add(e, tree_);
            }
        }
    }

    void close_(const SessionSummary& summary) override {
        PprofBuilder builder;
        std::string bytes;
        if (profile_ == PprofProfile::allocations) {
            write_allocations(builder, summary);
            bytes = builder.finish({{"alloc_objects", "count"},
                                    {"alloc_space", "bytes"},
                                    {"inuse_objects", "count"},
                                    {"inuse_space", "bytes"}},
                                   1, summary, {"space", "bytes"}, 0);
        } else if (!sampled_.empty()) {
            const bool timed = sample_interval_ns_ > 0;
            write_samples(builder);
            if (timed) {
                bytes = builder.finish({{"samples", "count"}, {"wall", "nanoseconds"}}, 1, summary,
                                       {"wall", "nanoseconds"}, static_cast<std::int64_t>(sample_interval_ns_));
            } else {
                bytes = builder.finish({{"samples", "count"}}, 0, summary);
            }
        } else {
            write_spans(builder, summary);
            bytes = builder.finish({{"calls", "count"}, {"wall", "nanoseconds"}}, 1, summary);
        }
        file().write(gzip::compress(bytes));
        file().commit();
    }

private:
    static std::string thread_name(const SessionSummary& summary, std::uint32_t index) {
        const ThreadInfo* thread = summary.thread(index);
        return thread != nullptr && !thread->name.empty() ? thread->name : "thread-" + std::to_string(index);
    }

    void write_spans(PprofBuilder& builder, const SessionSummary& summary) {
        std::vector<std::uint64_t> stack;
        threads_.for_each([&](std::uint32_t index, ThreadState& state) {
            state.tree.finish(summary.stop_ticks);
            const std::string thread = thread_name(summary, index);
            state.tree.for_each_node([&](const std::vector<const SourceLocation*>& path, const CallTree::Node& node) {
                const auto ns = static_cast<std::int64_t>(summary.info.ticks_to_ns(node.self_ticks) + 0.5);
                const auto calls = static_cast<std::int64_t>(node.count + node.resumes);
                if (ns == 0 && calls == 0) {
                    return;
                }
                stack.clear();
                for (auto it = path.rbegin(); it != path.rend(); ++it) {
                    stack.push_back(builder.location_id(*it));
                }
                builder.add_sample(stack, {calls, ns}, thread);
            });
        });
    }

    void add_sample(const model::SampleView& sample) {
        SampledStack key;
        key.first = sample.os_tid;
        key.second.reserve(sample.depth);
        for (std::size_t i = 0; i < sample.depth; ++i) {
            key.second.emplace_back(sample.frames[i].location, sample.frames[i].line);
        }
        SampledCount& count = sampled_[key];
        ++count.samples;
        count.thread = model::sampled_thread_name(sample.os_tid, sample.thread_name);
    }

    void write_samples(PprofBuilder& builder) {
        std::vector<std::uint64_t> stack;
        for (const auto& entry : sampled_) {
            stack.clear();
            const auto& frames = entry.first.second;
            for (auto it = frames.rbegin(); it != frames.rend(); ++it) {
                stack.push_back(builder.location_id(it->first, it->second));
            }
            const auto n = static_cast<std::int64_t>(entry.second.samples);
            if (sample_interval_ns_ > 0) {
                builder.add_sample(stack, {n, n * static_cast<std::int64_t>(sample_interval_ns_)}, entry.second.thread);
            } else {
                builder.add_sample(stack, {n}, entry.second.thread);
            }
        }
    }

    void write_allocations(PprofBuilder& builder, const SessionSummary& summary) {
        std::map<std::uint64_t, AllocationTotals> ordered(allocations_.begin(), allocations_.end());
        std::vector<std::uint64_t> stack;
        for (const auto& entry : ordered) {
            stack.clear();
            const auto path = tree_.path(static_cast<std::uint32_t>(entry.first));
            for (auto it = path.rbegin(); it != path.rend(); ++it) {
                const SourceLocation* location = *it;
                stack.push_back(builder.location_id(location));
            }
            const AllocationTotals& t = entry.second;
            builder.add_sample(stack, {t.alloc_objects, t.alloc_bytes, t.inuse_objects, t.inuse_bytes},
                               thread_name(summary, static_cast<std::uint32_t>(entry.first >> 32)));
        }
    }

    using SampledStack = std::pair<std::uint64_t, std::vector<std::pair<const SourceLocation*, std::uint32_t>>>;
    struct SampledCount {
        std::uint64_t samples = 0;
        std::string thread;
    };
    struct LiveHash {
        std::size_t operator()(const std::pair<std::uint64_t, std::uint64_t>& key) const noexcept {
            return static_cast<std::size_t>(key.first * 0x9E3779B97F4A7C15ull ^ key.second);
        }
    };

    PprofProfile profile_;
    std::uint64_t sample_interval_ns_ = 0;
    PerThreadState<ThreadState> threads_;
    model::SampleStreams sample_streams_;
    std::map<SampledStack, SampledCount> sampled_;
    LocationTree tree_;
    std::unordered_map<std::uint64_t, AllocationTotals> allocations_;
    // Live allocations by (timestamp, bytes): a known free names its
    // allocation's timestamp through its lifetime.
    std::unordered_multimap<std::pair<std::uint64_t, std::uint64_t>, Live, LiveHash> live_;
};

} // namespace sinks
} // namespace pycroscope
