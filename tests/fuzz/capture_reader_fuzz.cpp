// libFuzzer target: any byte string given to CaptureReader either reads as a
// capture or throws CaptureError. Anything else (a crash, a sanitizer report,
// another exception, an allocation past the limit) is a finding.
//
//   cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++-14 -DPYCROSCOPE_BUILD_FUZZERS=ON
//   cmake --build build-fuzz --target capture_reader_fuzz capture_fuzz_seeds
//   build-fuzz/capture_fuzz_seeds corpus/ && build-fuzz/capture_reader_fuzz corpus/ -max_total_time=600

#include <pycroscope/capture/capture_reader.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace {

// Reads what a sink would: every string of every location an event names.
std::size_t touch(const pycroscope::SourceLocation* location) {
    if (location == nullptr) {
        return 0;
    }
    std::size_t n = location->line;
    for (const char* text : {location->name, location->function, location->file}) {
        if (text != nullptr) {
            n += std::strlen(text);
        }
    }
    return n;
}

// Reads the input once without checksums (the decoders behind them meet the
// mutations) and once with them.
std::size_t read_capture(const std::uint8_t* data, std::size_t size, bool verify_checksums) {
    std::size_t sink = 0;
    try {
        pycroscope::capture::ReadOptions options;
        options.verify_checksums = verify_checksums;
        pycroscope::capture::CaptureReader reader("fuzz-input", data, size, options);
        pycroscope::capture::CaptureBatch batch;
        while (reader.next(batch)) {
            sink = sink + batch.thread->name.size();
            for (std::size_t i = 0; i < batch.count; ++i) {
                const pycroscope::Event& e = batch.events[i];
                if (e.kind != pycroscope::EventKind::sample && e.kind != pycroscope::EventKind::none &&
                    e.kind != pycroscope::EventKind::mem_free && static_cast<std::uint8_t>(e.kind) <= 65 &&
                    pycroscope::capture::code_of(e.kind) != pycroscope::capture::Code::raw) {
                    sink = sink + touch(e.location());
                }
            }
        }
        const auto& summary = reader.summary();
        sink = sink + summary.threads.size() + summary.errors.size();
    } catch (const pycroscope::capture::CaptureError&) {
    }
    return sink;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    volatile std::size_t sink = read_capture(data, size, false);
    sink = sink + read_capture(data, size, true);
    return 0;
}
