#pragma once
// Folded stacks of a sampling session ("thread;outer;...;leaf <samples>"),
// weighted by sample counts instead of nanoseconds, for flamegraph.pl,
// inferno and speedscope. Frames are named as in FoldedStackSink (the
// location's display name: the qualified name of Python code), Python
// frames and native zones in call order. Samples are keyed by the sampled
// thread (os_tid), never by the ring that carried them. Idle samples are
// kept, left out or marked with a leaf frame "[idle]" (IdleSamples).
// A sample without frames weighs on the thread frame alone ("[empty stack]"
// without thread frames). Rings that carried samples and lost events get a
// line "<thread>;[N events lost] 1", as in FoldedStackSink.

#include "pycroscope/model/sample_profile.hpp"
#include "pycroscope/sinks/file_sink.hpp"
#include "pycroscope/sinks/folded_lines.hpp"
#include "pycroscope/sinks/json_writer.hpp"

#include <string>
#include <vector>

namespace pycroscope {
namespace sinks {

enum class IdleSamples {
    include, // idle samples weigh like running ones (wall-clock view)
    exclude, // running samples only (CPU view)
    mark,    // idle samples end with an extra leaf frame "[idle]"
};

struct SampledStackOptions {
    bool thread_frames = true; // first frame of every stack is the sampled thread's name
    IdleSamples idle = IdleSamples::include;
    FoldingOptions folding; // runs of one frame fold, deep stacks are cut (see folded_lines.hpp)
};

class SampledStackSink : public FileSink {
public:
    explicit SampledStackSink(std::string path, SampledStackOptions options = {})
        : FileSink("sampled stacks", std::move(path)), options_(options) {}

    // The aggregated samples. Complete once the session stopped draining,
    // that is from the first close() of any sink on (session.json sections
    // read it there); from another thread while recording, use with_lock().
    const model::SampleProfile& profile() const noexcept { return profile_; }

protected:
    void open_(const SessionInfo& info) override {
        FileSink::open_(info);
        profile_.clear();
        producers_.clear();
    }

    void sink_it_(const ThreadInfo& thread, const Event* events, std::size_t count) override {
        const std::uint64_t before = profile_.samples().all();
        profile_.consume(thread.index, events, count);
        if (profile_.samples().all() != before) {
            if (thread.index >= producers_.size()) {
                producers_.resize(thread.index + 1, false);
            }
            producers_[thread.index] = true;
        }
    }

    void close_(const SessionSummary& summary) override {
        FoldedPath path(options_.folding);
        std::string line;
        std::string frame;
        write_folded_stream(file(), [&](auto&& emit) {
            profile_.for_each_stack([&](const model::SampledThread& thread,
                                        const std::vector<const SourceLocation*>& frames,
                                        const model::SampleCounts& self) {
                line.clear();
                if (options_.thread_frames) {
                    append_folded_frame(line, thread.name);
                }
                path.clear();
                for (const SourceLocation* location : frames) {
                    path.push(location->display_name());
                }
                if (frames.empty()) {
                    line += options_.thread_frames ? "" : "[empty stack]";
                } else {
                    path.render(line, options_.thread_frames);
                }
                switch (options_.idle) {
                case IdleSamples::include: emit(std::string_view(line), self.all()); break;
                case IdleSamples::exclude: emit(std::string_view(line), self.running); break;
                case IdleSamples::mark:
                    emit(std::string_view(line), self.running);
                    line += ";[idle]";
                    emit(std::string_view(line), self.idle);
                    break;
                }
            });
            for (const auto& thread : summary.threads) {
                if (thread.lost > 0 && thread.index < producers_.size() && producers_[thread.index]) {
                    line.clear();
                    append_folded_frame(line, thread.name);
                    line += ";[";
                    append_unsigned(line, thread.lost);
                    line += " events lost]";
                    emit(std::string_view(line), 1);
                }
            }
        });
    }

private:
    SampledStackOptions options_;
    model::SampleProfile profile_;
    std::vector<bool> producers_; // by thread index: its ring carried samples
};

} // namespace sinks
} // namespace pycroscope
