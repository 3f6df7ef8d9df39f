#pragma once
// Aggregates the samples of a session into an model::SampleProfile and
// writes nothing: for hosts that want hotspots (session.json, a report)
// without stacks.folded. SampledStackSink keeps the same profile.

#include "pycroscope/model/sample_profile.hpp"
#include "pycroscope/sinks/base_sink.hpp"

#include <string>

namespace pycroscope {
namespace sinks {

class SampleProfileSink : public BaseSinkMt {
public:
    std::string describe() const override { return "sample profile"; }

    // Complete once the session stopped draining (from the first close() of
    // any sink on); while recording, read it under with_lock().
    const model::SampleProfile& profile() const noexcept { return profile_; }

protected:
    void open_(const SessionInfo&) override { profile_.clear(); }
    void sink_it_(const ThreadInfo& thread, const Event* events, std::size_t count) override {
        profile_.consume(thread.index, events, count);
    }

private:
    model::SampleProfile profile_;
};

} // namespace sinks
} // namespace pycroscope
