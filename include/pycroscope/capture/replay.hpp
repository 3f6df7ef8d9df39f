#pragma once
// Replays a capture into EventProcessors and Sinks the way the live drain fed
// them (core/session_core.hpp): open(info) on every processor then every
// sink; for each batch in recording order, the sinks that take recorded
// events, then the processors (which may rewrite the batch), then the other
// sinks; close(summary) on the processors, then the sinks. A processor or
// sink that throws is dropped and its error kept, as live; the others go on.
//
// A complete capture closes with the session's own summary (its errors
// included); a cut one with the summary the reader builds from what it read.
// A damaged capture aborts every sink and throws CaptureError: nothing is
// written from a file that is not what the session recorded.

#include "pycroscope/capture/capture_reader.hpp"
#include "pycroscope/core/event_processor.hpp"
#include "pycroscope/core/sink.hpp"

#include <memory>
#include <string>
#include <vector>

namespace pycroscope {
namespace capture {

struct ReplayResult {
    bool complete = false;        // the capture has its trailer
    std::uint64_t cut_offset = 0; // a cut capture: where its last whole block ends
    std::uint64_t chunks = 0;
    std::uint64_t events = 0;
    SessionSummary summary;           // what close() got
    std::vector<std::string> errors; // processors and sinks that failed during the replay
};

inline ReplayResult replay(CaptureReader& reader, const std::vector<std::shared_ptr<EventProcessor>>& processors,
                           const std::vector<std::shared_ptr<Sink>>& sinks) {
    ReplayResult result;
    const SessionInfo& info = reader.info();
    for (const auto& processor : processors) {
        processor->open(info);
    }
    for (std::size_t i = 0; i < sinks.size(); ++i) {
        try {
            sinks[i]->open(info);
        } catch (...) {
            for (std::size_t j = 0; j < i; ++j) {
                sinks[j]->abort();
            }
            throw;
        }
    }
    std::vector<bool> processor_failed(processors.size(), false);
    std::vector<bool> sink_failed(sinks.size(), false);
    std::vector<bool> recorded(sinks.size(), false);
    for (std::size_t i = 0; i < sinks.size(); ++i) {
        recorded[i] = sinks[i]->consumes_recorded_events();
    }
    const auto feed = [&](const CaptureBatch& batch, bool recorded_events) {
        for (std::size_t i = 0; i < sinks.size(); ++i) {
            if (sink_failed[i] || recorded[i] != recorded_events) {
                continue;
            }
            try {
                sinks[i]->consume(*batch.thread, batch.events, batch.count);
            } catch (const std::exception& e) {
                sink_failed[i] = true;
                result.errors.push_back(sinks[i]->describe() + ": " + e.what());
                sinks[i]->abort();
            } catch (...) {
                sink_failed[i] = true;
                result.errors.push_back(sinks[i]->describe() + ": unknown exception");
                sinks[i]->abort();
            }
        }
    };
    try {
        CaptureBatch batch;
        while (reader.next(batch)) {
            feed(batch, true);
            for (std::size_t i = 0; i < processors.size(); ++i) {
                if (processor_failed[i]) {
                    continue;
                }
                try {
                    processors[i]->process(*batch.thread, batch.events, batch.count);
                } catch (const std::exception& e) {
                    processor_failed[i] = true;
                    result.errors.push_back(processors[i]->describe() + ": " + e.what());
                }
            }
            feed(batch, false);
        }
    } catch (...) {
        for (std::size_t i = 0; i < sinks.size(); ++i) {
            if (!sink_failed[i]) {
                sinks[i]->abort();
            }
        }
        throw;
    }
    result.complete = reader.complete();
    result.cut_offset = reader.cut_offset();
    result.chunks = reader.chunks_read();
    result.events = reader.events_read();
    result.summary = reader.summary();
    for (const auto& processor : processors) {
        try {
            processor->close(result.summary);
        } catch (const std::exception& e) {
            result.errors.push_back(processor->describe() + ": " + e.what());
        }
    }
    for (std::size_t i = 0; i < sinks.size(); ++i) {
        if (sink_failed[i]) {
            continue;
        }
        try {
            sinks[i]->close(result.summary);
        } catch (const std::exception& e) {
            result.errors.push_back(sinks[i]->describe() + ": " + e.what());
            sinks[i]->abort();
        } catch (...) {
            result.errors.push_back(sinks[i]->describe() + ": unknown exception");
            sinks[i]->abort();
        }
    }
    return result;
}

// Opens the file and replays it (see above).
inline ReplayResult replay(const std::string& path, const std::vector<std::shared_ptr<EventProcessor>>& processors,
                           const std::vector<std::shared_ptr<Sink>>& sinks) {
    CaptureReader reader(path);
    return replay(reader, processors, sinks);
}

} // namespace capture
} // namespace pycroscope
