// libFuzzer target: any byte string given to parse_archive() either reads as
// a session archive (export-session / import-session) or throws StoreError.
// Anything else (a crash, a sanitizer report, another exception, an
// allocation past the input's size) is a finding. A parsed archive is
// written back and must read again to the same files.
//
//   cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++-14 -DPYCROSCOPE_BUILD_FUZZERS=ON
//   cmake --build build-fuzz --target session_archive_fuzz
//   build-fuzz/session_archive_fuzz tests/fuzz/corpus/session_archive -max_total_time=600

#include <pycroscope/store/session_archive.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace st = pycroscope::store;
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    st::SessionArchive archive;
    try {
        archive = st::parse_archive(bytes);
    } catch (const st::StoreError&) {
        return 0;
    }
    for (const auto& file : archive.files) {
        if (!st::detail::safe_relative_path(file.path)) {
            std::abort(); // the reader let through a path that escapes the folder
        }
    }
    const st::SessionArchive again = st::parse_archive(st::archive_bytes(archive));
    if (again.id != archive.id || again.files.size() != archive.files.size()) {
        std::abort();
    }
    return 0;
}
