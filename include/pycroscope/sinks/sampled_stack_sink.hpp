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
#include "pycroscope/sinks/folded_stack_sink.hpp"
#include "pycroscope/sinks/json_writer.hpp"

#include <map>
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
        std::map<std::string, std::uint64_t> lines;
        std::string path;
        profile_.for_each_stack([&](const model::SampledThread& thread,
                                    const std::vector<const SourceLocation*>& frames,
                                    const model::SampleCounts& self) {
            path.clear();
            if (options_.thread_frames) {
                append_folded_frame(path, thread.name);
            }
            // A separator before every frame but the first (an empty name is still a frame).
            bool first = !options_.thread_frames;
            for (const SourceLocation* location : frames) {
                if (!first) {
                    path += ';';
                }
                first = false;
                append_folded_frame(path, location->display_name());
            }
            if (first) {
                path += "[empty stack]";
            }
            switch (options_.idle) {
            case IdleSamples::include: add_line(lines, path, self.all()); break;
            case IdleSamples::exclude: add_line(lines, path, self.running); break;
            case IdleSamples::mark:
                add_line(lines, path, self.running);
                add_line(lines, path + ";[idle]", self.idle);
                break;
            }
        });
        for (const auto& thread : summary.threads) {
            if (thread.lost > 0 && thread.index < producers_.size() && producers_[thread.index]) {
                std::string line;
                append_folded_frame(line, thread.name);
                line.append(";[").append(std::to_string(thread.lost)).append(" events lost]");
                lines[line] += 1;
            }
        }
        write_folded_lines(file(), lines);
    }

private:
    static void add_line(std::map<std::string, std::uint64_t>& lines, const std::string& path, std::uint64_t n) {
        if (n > 0) {
            lines[path] += n;
        }
    }

    SampledStackOptions options_;
    model::SampleProfile profile_;
    std::vector<bool> producers_; // by thread index: its ring carried samples
};

} // namespace sinks
} // namespace pycroscope
