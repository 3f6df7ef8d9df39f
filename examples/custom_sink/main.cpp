// A sink written by the host: per-zone call counts and total time as CSV.
//
// A custom sink derives from pycroscope::sinks::BaseSinkMt (the base owns the
// lock, as in spdlog) and implements the hooks:
//   open_(info)                  before recording; throw ConfigError to refuse
//   sink_it_(thread, events, n)  on the drain thread, events of one thread in order
//   close_(summary)              after the last event
//   abort_()                     the session failed: drop partial output
// It never runs on a recording thread, so it may allocate and take its time.

#include <pycroscope.hpp>

#include <cstdio>
#include <map>
#include <string>
#include <unordered_map>

class CsvZoneSink : public pycroscope::sinks::BaseSinkMt {
public:
    explicit CsvZoneSink(std::FILE* out) : out_(out) {}
    std::string describe() const override { return "csv zone sink"; }

protected:
    void open_(const pycroscope::SessionInfo& info) override {
        info_ = info;
        stacks_.clear();
        totals_.clear();
    }

    void sink_it_(const pycroscope::ThreadInfo& thread, const pycroscope::Event* events, std::size_t count) override {
        auto& stack = stacks_[thread.index];
        for (std::size_t i = 0; i < count; ++i) {
            const pycroscope::Event& e = events[i];
            if (pycroscope::opens_span(e.kind)) {
                stack.push(e.location(), e.timestamp, 0);
            } else if (pycroscope::closes_span(e.kind)) {
                stack.pop(e.location(), e.timestamp, [&](const auto& frame, std::uint64_t end) {
                    Total& t = totals_[frame.location->display_name()];
                    t.calls += 1;
                    t.ns += info_.ticks_to_ns(end - frame.begin);
                });
            }
        }
    }

    void close_(const pycroscope::SessionSummary& summary) override {
        std::fprintf(out_, "zone,activations,summed_ms\n");
        for (const auto& entry : totals_) {
            std::fprintf(out_, "\"%s\",%llu,%.3f\n", entry.first.c_str(),
                         static_cast<unsigned long long>(entry.second.calls), entry.second.ns / 1e6);
        }
        std::fprintf(out_, "# %llu events, %llu lost\n", static_cast<unsigned long long>(summary.total_events),
                     static_cast<unsigned long long>(summary.total_lost));
    }

private:
    struct Total {
        unsigned long long calls = 0;
        double ns = 0;
    };
    std::FILE* out_;
    pycroscope::SessionInfo info_;
    std::unordered_map<std::uint32_t, pycroscope::SpanStack<int>> stacks_;
    std::map<std::string, Total> totals_; // ordered: stable output
};

static long fibonacci(int n) {
    PYCRO_SCOPE();
    return n < 2 ? n : fibonacci(n - 1) + fibonacci(n - 2);
}

int main() {
    pycroscope::Session<pycroscope::NativeZones> session;
    session.add_sink<CsvZoneSink>(stdout);
    session.start();
    {
        PYCRO_SCOPE_N("compute");
        std::printf("fibonacci(15) = %ld\n", fibonacci(15));
    }
    session.stop();
    return 0;
}
