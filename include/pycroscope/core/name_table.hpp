#pragma once
// Interning of names known only at run time (user strings, Python code
// objects). Each distinct (kind, name, function, file, line) becomes one
// SourceLocation that lives until the process exits; events carry its address.
// Interning takes a lock, so it belongs on first sight of a name, never per
// event: callers cache the pointer (see DynamicNameCache for zone sites).

#include "pycroscope/core/source_location.hpp"

#include <cstdint>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace pycroscope {

class NameTable {
public:
    const SourceLocation* intern(LocationKind kind, std::string_view name, std::string_view function = {},
                                 std::string_view file = {}, std::uint32_t line = 0) {
        std::string key;
        key.reserve(name.size() + function.size() + file.size() + 16);
        key.push_back(static_cast<char>(kind));
        key.append(name).push_back('\0');
        key.append(function).push_back('\0');
        key.append(file).push_back('\0');
        key.append(std::to_string(line));

        std::lock_guard<std::mutex> lock(mutex_);
        auto found = index_.find(key);
        if (found != index_.end()) {
            return found->second;
        }
        const char* stored_name = store(name);
        const char* stored_function = function.empty() ? stored_name : store(function);
        const char* stored_file = store(file);
        locations_.push_back(SourceLocation{stored_name, stored_function, stored_file, line, kind});
        const SourceLocation* location = &locations_.back();
        index_.emplace(std::move(key), location);
        return location;
    }

    std::size_t size() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return locations_.size();
    }

private:
    const char* store(std::string_view text) {
        strings_.emplace_back(text);
        return strings_.back().c_str();
    }

    mutable std::mutex mutex_;
    std::unordered_map<std::string, const SourceLocation*> index_;
    std::deque<SourceLocation> locations_; // deque: addresses never move
    std::deque<std::string> strings_;
};

// The process-wide table. Never destroyed, so interned names stay valid for
// events recorded during static destruction and atexit handlers.
inline NameTable& names() {
    static NameTable* table = new NameTable();
    return *table;
}

namespace detail {

inline std::uint64_t fnv1a(std::string_view text, std::uint64_t seed) noexcept {
    std::uint64_t hash = 1469598103934665603ull ^ seed;
    for (const char c : text) {
        hash ^= static_cast<unsigned char>(c);
        hash *= 1099511628211ull;
    }
    return hash;
}

// Per-thread direct-mapped cache from (site, name) to interned location: a
// dynamic zone that repeats a name finds it without the table's lock.
struct DynamicNameCache {
    struct Entry {
        std::uint64_t hash;
        const SourceLocation* site;
        const SourceLocation* location;
    };
    Entry entries[256];
};
inline thread_local DynamicNameCache tls_name_cache{};

} // namespace detail

// Interns a runtime zone name for a zone site (file, line and function come from the site).
inline const SourceLocation* intern_zone_name(const SourceLocation* site, std::string_view name) {
    const std::uint64_t hash = detail::fnv1a(name, reinterpret_cast<std::uintptr_t>(site));
    auto& entry = detail::tls_name_cache.entries[hash & 255];
    if (entry.site == site && entry.hash == hash && entry.location != nullptr &&
        name == std::string_view(entry.location->name)) {
        return entry.location;
    }
    const SourceLocation* location =
        names().intern(LocationKind::dynamic_zone, name, site->function, site->file, site->line);
    entry = detail::DynamicNameCache::Entry{hash, site, location};
    return location;
}

} // namespace pycroscope
