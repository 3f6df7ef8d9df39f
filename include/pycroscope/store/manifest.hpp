#pragma once
// manifest.json: what a session folder holds a run of, written next to
// session.json by `pycroscope profile` so the store can list, group and
// compare sessions without reading their profiles:
//
//   {"format": "pycroscope-manifest", "version": 1,
//    "script": "/abs/path/app.py", "args": ["--n", "3"], "cwd": "/abs",
//    "start_unix_ns": ..., "duration_ns": ..., "exit_status": 0, "finished": true,
//    "python_version": "3.11.2", "pycroscope_version": "...",
//    "options": ["--sample"], "host": "build-7", "runs": 1,
//    "git": {"commit": "0123abcd...", "dirty": false}}   (only inside a git work tree)
//
// read_manifest() throws StoreError naming the file and what is wrong.

#include "pycroscope/core/json_reader.hpp"
#include "pycroscope/sinks/atomic_file.hpp"
#include "pycroscope/sinks/json_writer.hpp"
#include "pycroscope/store/git_state.hpp"
#include "pycroscope/store/store_error.hpp"

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace pycroscope {
namespace store {

struct Manifest {
    std::string script; // absolute, normalised
    std::vector<std::string> args;
    std::string cwd;
    std::int64_t start_unix_ns = 0;
    std::int64_t duration_ns = 0;
    int exit_status = 0;
    // False from the run's start until it exits: a manifest still unfinished
    // is a run going on, or one killed by a signal (exit_status -1).
    bool finished = true;
    std::string python_version;
    std::string pycroscope_version;
    std::vector<std::string> options; // the command's options, as given
    std::string host;
    std::uint64_t runs = 1; // > 1: run-1 .. run-N sub-folders and runs.json
    GitState git;
};

constexpr const char* manifest_file_name = "manifest.json";

// The absolute, normalised form of a script path (relative to cwd).
inline std::string normalise_script_path(const std::string& path) {
    std::error_code error;
    std::filesystem::path p = std::filesystem::absolute(path, error);
    if (error) {
        p = path;
    }
    const std::filesystem::path canonical = std::filesystem::weakly_canonical(p, error);
    return (error ? p.lexically_normal() : canonical).string();
}

inline std::string host_name() {
#if defined(__unix__) || defined(__APPLE__)
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) == 0) {
        return name;
    }
#endif
    return {};
}

inline std::string manifest_json(const Manifest& m) {
    std::string out;
    sinks::JsonWriter json(out);
    json.begin_object();
    json.field("format", "pycroscope-manifest");
    json.field("version", 1);
    json.field("script", m.script);
    json.key("args").begin_array();
    for (const auto& a : m.args) {
        json.value(a);
    }
    json.end_array();
    json.field("cwd", m.cwd);
    json.field("start_unix_ns", m.start_unix_ns);
    json.field("duration_ns", m.duration_ns);
    json.field("exit_status", m.exit_status);
    json.field("finished", m.finished);
    json.field("python_version", m.python_version);
    json.field("pycroscope_version", m.pycroscope_version);
    json.key("options").begin_array();
    for (const auto& o : m.options) {
        json.value(o);
    }
    json.end_array();
    json.field("host", m.host);
    json.field("runs", m.runs);
    if (m.git.known) {
        json.key("git").begin_object();
        json.field("commit", m.git.commit);
        json.field("dirty", m.git.dirty);
        json.end_object();
    }
    json.end_object();
    out += '\n';
    return out;
}

// Atomically: a reader never sees half a manifest. Throws on failure.
inline void write_manifest(const std::string& dir, const Manifest& m) {
    sinks::AtomicFile file((std::filesystem::path(dir) / manifest_file_name).string());
    file.open();
    file.write(manifest_json(m));
    file.commit();
}

inline Manifest manifest_from_json(const json::Value& doc) {
    if (!doc.is_object() || doc.find("format") == nullptr || doc.at("format").as_string() != "pycroscope-manifest") {
        throw StoreError("not a pycroscope manifest");
    }
    Manifest m;
    m.script = doc.at("script").as_string();
    for (const auto& a : doc.at("args").items()) {
        m.args.push_back(a.as_string());
    }
    m.cwd = doc.at("cwd").as_string();
    m.start_unix_ns = doc.at("start_unix_ns").as_int();
    m.duration_ns = doc.at("duration_ns").as_int();
    m.exit_status = static_cast<int>(doc.at("exit_status").as_int());
    if (const json::Value* v = doc.find("finished")) {
        m.finished = v->as_bool();
    }
    m.python_version = doc.at("python_version").as_string();
    if (const json::Value* v = doc.find("pycroscope_version")) {
        m.pycroscope_version = v->as_string();
    }
    for (const auto& o : doc.at("options").items()) {
        m.options.push_back(o.as_string());
    }
    m.host = doc.at("host").as_string();
    m.runs = doc.at("runs").as_uint();
    if (const json::Value* git = doc.find("git")) {
        m.git.known = true;
        m.git.commit = git->at("commit").as_string();
        m.git.dirty = git->at("dirty").as_bool();
    }
    return m;
}

inline Manifest read_manifest(const std::string& dir) {
    const std::string path = (std::filesystem::path(dir) / manifest_file_name).string();
    try {
        return manifest_from_json(json::parse_file(path));
    } catch (const StoreError& e) {
        throw StoreError(path + ": " + e.detail());
    } catch (const std::exception& e) {
        throw StoreError(path + ": " + e.what());
    }
}

} // namespace store
} // namespace pycroscope
