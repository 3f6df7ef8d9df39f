#pragma once
// One sink by the name of its format, for hosts that pick outputs by name
// (`pycroscope export --format FMT`, a replayed capture): no Python needed.
//
//   chrome       Chrome trace event JSON           ChromeTraceSink
//   folded       folded stacks (ns)                FoldedStackSink
//   perfetto     Perfetto protobuf trace           PerfettoTraceSink
//   speedscope   speedscope JSON                   SpeedscopeSink
//   pprof        pprof CPU profile (.pb.gz)        PprofSink(cpu)
//   pprof-alloc  pprof allocation profile (.pb.gz) PprofSink(allocations)
//   callgrind    callgrind profile                 CallgrindSink

#include "pycroscope/core/error.hpp"
#include "pycroscope/sinks/callgrind_sink.hpp"
#include "pycroscope/sinks/chrome_trace_sink.hpp"
#include "pycroscope/sinks/folded_stack_sink.hpp"
#include "pycroscope/sinks/perfetto_trace_sink.hpp"
#include "pycroscope/sinks/pprof_sink.hpp"
#include "pycroscope/sinks/speedscope_sink.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace pycroscope {
namespace sinks {

inline constexpr const char* export_formats[] = {"chrome",      "folded",    "perfetto", "speedscope",
                                                 "pprof",       "pprof-alloc", "callgrind"};

// "chrome, folded, ...": for messages and --help.
inline std::string export_format_list() {
    std::string list;
    for (const char* name : export_formats) {
        if (!list.empty()) {
            list += ", ";
        }
        list += name;
    }
    return list;
}

// The usual file name of a format's output, e.g. "profile.pb.gz" for pprof.
inline std::string export_file_name(std::string_view format) {
    if (format == "chrome") return "trace.json";
    if (format == "folded") return "stacks.folded";
    if (format == "perfetto") return "trace.perfetto-trace";
    if (format == "speedscope") return "profile.speedscope.json";
    if (format == "pprof") return "profile.pb.gz";
    if (format == "pprof-alloc") return "alloc.pb.gz";
    if (format == "callgrind") return "callgrind.out";
    throw ConfigError("unknown export format '" + std::string(format) + "' (accepted: " + export_format_list() + ")");
}

// The sink writing format to path. sample_interval_ns: the sampling interval
// of a sampling run (0 when unknown), for the formats that show time per sample.
// profile: a traced run's model, which the aggregate formats read their times
// from (as session.json does) instead of walking the events again.
inline std::shared_ptr<FileSink> make_export_sink(std::string_view format, const std::string& path,
                                              std::uint64_t sample_interval_ns = 0,
                                              std::shared_ptr<const model::ProfileBuilder> profile = nullptr) {
    if (format == "chrome") {
        auto sink = std::make_shared<ChromeTraceSink>(path);
        sink->set_sample_interval_ns(sample_interval_ns);
        return sink;
    }
    if (format == "folded") {
        return std::make_shared<FoldedStackSink>(path);
    }
    if (format == "perfetto") {
        auto sink = std::make_shared<PerfettoTraceSink>(path);
        sink->set_sample_interval_ns(sample_interval_ns);
        return sink;
    }
    if (format == "speedscope") {
        return std::make_shared<SpeedscopeSink>(path);
    }
    if (format == "pprof" || format == "pprof-alloc") {
        auto sink = std::make_shared<PprofSink>(path, format == "pprof" ? PprofProfile::cpu : PprofProfile::allocations);
        sink->set_sample_interval_ns(sample_interval_ns);
        return sink;
    }
    if (format == "callgrind") {
        return profile ? std::make_shared<CallgrindSink>(path, std::move(profile)) : std::make_shared<CallgrindSink>(path);
    }
    throw ConfigError("unknown export format '" + std::string(format) + "' (accepted: " + export_format_list() + ")");
}

} // namespace sinks
} // namespace pycroscope
