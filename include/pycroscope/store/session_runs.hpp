#pragma once
// The runs of a stored session, as analysis::RunMeasures: what compare and
// history read. A session folder holds either one run (session.json, with
// the memory section's peak and allocation sites) or, after
// `pycroscope profile --runs N`, a runs.json summarising run-1 .. run-N:
//
//   {"format": "pycroscope-runs", "version": 1,
//    "runs": [{"run": 1, "dir": "run-1", "exit_status": 0, "wall_ns": 103000000,
//              "peak_bytes": 812345,
//              "functions": [{"name": "stage_a", "file": "/w/app.py", "line": 4,
//                             "self_ns": 31000000, "total_ns": 31000000,
//                             "calls": 1, "allocated_bytes": 0}, ...]}, ...]}
//
// Loading throws StoreError with the file and what is wrong.

#include "pycroscope/analysis/profile_comparison.hpp"
#include "pycroscope/core/json_reader.hpp"
#include "pycroscope/model/profile_loader.hpp"
#include "pycroscope/sinks/atomic_file.hpp"
#include "pycroscope/sinks/json_writer.hpp"
#include "pycroscope/store/store_error.hpp"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace pycroscope {
namespace store {

constexpr const char* runs_file_name = "runs.json";
constexpr const char* session_file_name = "session.json";

struct StoredRun {
    int exit_status = 0;
    std::string dir; // relative to the session folder; empty: the session folder itself
    analysis::RunMeasures measures;
};

// One run from its session.json: the Profile (functions, wall time) plus
// the memory section (peak, bytes allocated per function from its sites).
inline analysis::RunMeasures read_run_measures(const std::string& session_json_path) {
    std::string text;
    {
        std::ifstream in(session_json_path, std::ios::binary);
        if (!in) {
            throw StoreError("cannot open '" + session_json_path + "'");
        }
        std::ostringstream buffer;
        buffer << in.rdbuf();
        text = buffer.str();
    }
    analysis::RunMeasures run;
    try {
        const model::Profile profile = model::profile_from_json(text);
        if (profile.unit != model::Unit::nanoseconds) {
            throw StoreError("a sampled profile (--sample) has no times to compare; profile without --sample");
        }
        run = analysis::run_measures(profile);
        const json::Value doc = json::parse(text);
        if (const json::Value* duration = doc.find("duration_ns")) {
            run.wall_ns = static_cast<double>(duration->as_uint());
        }
        const json::Value* memory = doc.find("memory");
        if (memory != nullptr && memory->is_object()) {
            if (const json::Value* peak = memory->find("peak_bytes")) {
                run.peak_bytes = static_cast<double>(peak->as_uint());
            }
            if (const json::Value* sites = memory->find("sites")) {
                for (const json::Value& site : sites->items()) {
                    const std::string& function = site.at("function").as_string();
                    const std::string& file = site.at("file").as_string();
                    const std::uint32_t index = profile.find(function, file);
                    const analysis::FunctionId id{function, file,
                                                  index != model::no_index ? profile.functions[index].line : 0u};
                    run.functions[id].allocated_bytes += static_cast<double>(site.at("bytes").as_uint());
                }
            }
        }
    } catch (const StoreError& e) {
        throw StoreError(session_json_path + ": " + e.detail());
    } catch (const model::ProfileLoadError& e) {
        throw StoreError(session_json_path + ": " + std::string(e.what()).substr(12));
    } catch (const std::exception& e) {
        throw StoreError(session_json_path + ": " + e.what());
    }
    return run;
}

inline std::string runs_json(const std::vector<StoredRun>& runs) {
    std::string out;
    sinks::JsonWriter json(out);
    json.begin_object().field("format", "pycroscope-runs").field("version", 1);
    json.key("runs").begin_array();
    for (std::size_t i = 0; i < runs.size(); ++i) {
        const StoredRun& r = runs[i];
        json.begin_object()
            .field("run", i + 1)
            .field("dir", r.dir)
            .field("exit_status", r.exit_status)
            .field("wall_ns", static_cast<std::uint64_t>(r.measures.wall_ns))
            .field("peak_bytes", static_cast<std::uint64_t>(r.measures.peak_bytes));
        json.key("functions").begin_array();
        for (const auto& f : r.measures.functions) {
            json.begin_object()
                .field("name", f.first.name)
                .field("file", f.first.file)
                .field("line", f.first.line)
                .field("self_ns", static_cast<std::uint64_t>(f.second.self_ns))
                .field("total_ns", static_cast<std::uint64_t>(f.second.total_ns))
                .field("calls", static_cast<std::uint64_t>(f.second.calls))
                .field("allocated_bytes", static_cast<std::uint64_t>(f.second.allocated_bytes))
                .end_object();
        }
        json.end_array().end_object();
    }
    json.end_array().end_object();
    out += '\n';
    return out;
}

inline void write_runs(const std::string& dir, const std::vector<StoredRun>& runs) {
    sinks::AtomicFile file((std::filesystem::path(dir) / runs_file_name).string());
    file.open();
    file.write(runs_json(runs));
    file.commit();
}

inline std::vector<StoredRun> runs_from_json(const json::Value& doc) {
    if (!doc.is_object() || doc.find("format") == nullptr || doc.at("format").as_string() != "pycroscope-runs") {
        throw StoreError("not a pycroscope runs file");
    }
    std::vector<StoredRun> runs;
    for (const json::Value& r : doc.at("runs").items()) {
        StoredRun run;
        run.dir = r.at("dir").as_string();
        run.exit_status = static_cast<int>(r.at("exit_status").as_int());
        run.measures.wall_ns = static_cast<double>(r.at("wall_ns").as_uint());
        run.measures.peak_bytes = static_cast<double>(r.at("peak_bytes").as_uint());
        for (const json::Value& f : r.at("functions").items()) {
            const std::uint64_t line = f.at("line").as_uint();
            if (line > 0xffffffffu) {
                throw StoreError("line number out of range");
            }
            analysis::FunctionMeasures& m = run.measures.functions[analysis::FunctionId{
                f.at("name").as_string(), f.at("file").as_string(), static_cast<std::uint32_t>(line)}];
            m.self_ns = static_cast<double>(f.at("self_ns").as_uint());
            m.total_ns = static_cast<double>(f.at("total_ns").as_uint());
            m.calls = static_cast<double>(f.at("calls").as_uint());
            m.allocated_bytes = static_cast<double>(f.at("allocated_bytes").as_uint());
        }
        runs.push_back(std::move(run));
    }
    return runs;
}

// Every run of the session folder dir: runs.json when there is one, else
// its session.json as one run. Throws StoreError when neither can be read.
inline std::vector<StoredRun> load_session_runs(const std::string& dir) {
    namespace fs = std::filesystem;
    std::error_code error;
    if (!fs::is_directory(dir, error)) {
        throw StoreError("'" + dir + "' is not a folder");
    }
    const fs::path runs_path = fs::path(dir) / runs_file_name;
    if (fs::exists(runs_path, error)) {
        std::vector<StoredRun> runs;
        try {
            runs = runs_from_json(json::parse_file(runs_path.string()));
        } catch (const StoreError& e) {
            throw StoreError(runs_path.string() + ": " + e.detail());
        } catch (const std::exception& e) {
            throw StoreError(runs_path.string() + ": " + e.what());
        }
        if (runs.empty()) {
            throw StoreError(runs_path.string() + ": no runs");
        }
        return runs;
    }
    const fs::path session_path = fs::path(dir) / session_file_name;
    if (!fs::exists(session_path, error)) {
        throw StoreError("no session in '" + dir + "' (neither session.json nor runs.json)");
    }
    StoredRun run;
    run.measures = read_run_measures(session_path.string());
    return {run};
}

inline std::vector<analysis::RunMeasures> measures_of(const std::vector<StoredRun>& runs) {
    std::vector<analysis::RunMeasures> out;
    out.reserve(runs.size());
    for (const StoredRun& r : runs) {
        out.push_back(r.measures);
    }
    return out;
}

} // namespace store
} // namespace pycroscope
