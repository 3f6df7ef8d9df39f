// Writes seed captures for capture_reader_fuzz into the directory given: small
// synthetic recordings of every EventKind, a cut one and a header-only one.

#include "capture/capture_test_helpers.hpp"

#include <pycroscope/capture/capture_sink.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s <corpus-directory>\n", argv[0]);
        return 2;
    }
    const std::string dir = argv[1];
    int written = 0;
    const auto write = [&](const capture_test::Recording& recording, const std::string& name, std::size_t chunk) {
        pycroscope::capture::CaptureOptions options;
        options.chunk_bytes = chunk;
        recording.play_live({}, {std::make_shared<pycroscope::capture::CaptureSink>(dir + "/" + name, options)});
        ++written;
    };
    write(capture_test::synthetic_recording(1, 40, 1), "one_thread.pycro", 256);
    write(capture_test::synthetic_recording(3, 120, 2), "three_threads.pycro", 512);
    write(capture_test::synthetic_recording(2, 400, 3), "larger.pycro", 1024);
    write(capture_test::Recording(), "empty_session.pycro", 1024);
    {
        std::ifstream in(dir + "/three_threads.pycro", std::ios::binary);
        const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        std::ofstream(dir + "/cut.pycro", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
        ++written;
    }
    std::printf("%d seeds in %s\n", written, dir.c_str());
    return 0;
}
