#pragma once
// The session store: a folder whose sub-folders are sessions (by default
// ./profiling_results, where `pycroscope profile` writes). A session is a
// sub-folder with a manifest.json; its id is the folder's name. Folders
// without a manifest (written before manifests existed, or by a host that
// writes none) are not listed; damaged manifests are reported, not fatal.
//
//     auto store = pycroscope::store::SessionStore("profiling_results");
//     for (const auto& s : store.sessions()) ...            // newest first
//     auto latest = store.sessions_of("app.py");             // that script's only

#include "pycroscope/store/manifest.hpp"
#include "pycroscope/store/store_error.hpp"

#include <algorithm>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

namespace pycroscope {
namespace store {

constexpr const char* default_sessions_dir = "profiling_results";

struct StoredSession {
    std::string id;   // the folder's name
    std::string path; // the folder
    Manifest manifest;
};

class SessionStore {
public:
    explicit SessionStore(std::string dir) : dir_(std::move(dir)) {}

    const std::string& dir() const noexcept { return dir_; }

    // Newest first (start time, then id). Unreadable manifests are skipped
    // and named in problems().
    std::vector<StoredSession> sessions() {
        namespace fs = std::filesystem;
        problems_.clear();
        std::vector<StoredSession> out;
        std::error_code error;
        if (!fs::is_directory(dir_, error)) {
            throw StoreError("no sessions folder '" + dir_ + "'");
        }
        for (fs::directory_iterator it(dir_, error), end; !error && it != end; it.increment(error)) {
            std::error_code ignored;
            if (!it->is_directory(ignored) || !fs::exists(it->path() / manifest_file_name, ignored)) {
                continue;
            }
            try {
                out.push_back(StoredSession{it->path().filename().string(), it->path().string(),
                                            read_manifest(it->path().string())});
            } catch (const StoreError& e) {
                problems_.push_back(e.detail());
            }
        }
        std::sort(out.begin(), out.end(), [](const StoredSession& a, const StoredSession& b) {
            if (a.manifest.start_unix_ns != b.manifest.start_unix_ns) {
                return a.manifest.start_unix_ns > b.manifest.start_unix_ns;
            }
            return a.id > b.id;
        });
        return out;
    }

    // The sessions of one script (any spelling of its path), newest first.
    std::vector<StoredSession> sessions_of(const std::string& script) {
        const std::string wanted = normalise_script_path(script);
        std::vector<StoredSession> all = sessions();
        all.erase(std::remove_if(all.begin(), all.end(),
                                 [&](const StoredSession& s) { return s.manifest.script != wanted; }),
                  all.end());
        return all;
    }

    // A session by id (a folder of the store) or by path (any session folder).
    StoredSession find(const std::string& id_or_path) const {
        namespace fs = std::filesystem;
        std::error_code error;
        fs::path path = id_or_path;
        if (!fs::is_directory(path, error)) {
            path = fs::path(dir_) / id_or_path;
        }
        if (!fs::is_directory(path, error)) {
            throw StoreError("no session '" + id_or_path + "' (not a folder, nor one in '" + dir_ + "')");
        }
        StoredSession s;
        s.path = path.string();
        s.id = path.lexically_normal().filename().string();
        if (s.id.empty()) {
            s.id = path.lexically_normal().parent_path().filename().string();
        }
        if (fs::exists(path / manifest_file_name, error)) {
            s.manifest = read_manifest(s.path);
        }
        return s;
    }

    const std::vector<std::string>& problems() const noexcept { return problems_; }

private:
    std::string dir_;
    std::vector<std::string> problems_;
};

} // namespace store
} // namespace pycroscope
