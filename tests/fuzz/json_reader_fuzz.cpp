// libFuzzer target for the JSON parser (core/json_reader.hpp) and the
// Profile loader behind it (model/profile_loader.hpp): any input either
// parses or throws the documented error, never crashes, hangs or leaks.
//
//   cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++-14 -DPYCROSCOPE_BUILD_FUZZERS=ON
//   cmake --build build-fuzz --target pycroscope_fuzz_json_reader
//   ./build-fuzz/pycroscope_fuzz_json_reader -max_total_time=60 tests/fuzz/corpus/json_reader

#include <pycroscope/core/json_reader.hpp>
#include <pycroscope/model/profile_loader.hpp>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        const pycroscope::json::Value value = pycroscope::json::parse(text);
        (void)value.type();
    } catch (const std::runtime_error&) {
        // Malformed input: the documented outcome.
    }
    try {
        const pycroscope::model::Profile profile = pycroscope::model::profile_from_json(text);
        // A loaded Profile never points outside itself.
        for (const auto& e : profile.edges) {
            if (e.caller >= profile.functions.size() || e.callee >= profile.functions.size()) {
                __builtin_trap();
            }
        }
        for (std::size_t n = 1; n < profile.tree.size(); ++n) {
            if (profile.tree[n].parent >= n || profile.tree[n].function >= profile.functions.size()) {
                __builtin_trap();
            }
        }
    } catch (const pycroscope::model::ProfileLoadError&) {
    }
    return 0;
}
