#pragma once
// Reads a Profile back from session.json (its "profile" section, schema in
// docs/session-format.md), so tools can read a session without a capture:
//
//     pycroscope::model::Profile p = pycroscope::model::load_profile("run/session.json");
//
// Bad input throws ProfileLoadError naming what is wrong; indexes are
// checked, so a damaged file never yields a Profile that points outside itself.

#include "pycroscope/core/json_reader.hpp"
#include "pycroscope/model/profile.hpp"

#include <cstdint>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace pycroscope {
namespace model {

class ProfileLoadError : public std::runtime_error {
public:
    explicit ProfileLoadError(const std::string& what) : std::runtime_error("pycroscope: " + what) {}
};

namespace detail {

inline LocationKind parse_kind(const std::string& name) {
    static const std::pair<const char*, LocationKind> kinds[] = {
        {"zone", LocationKind::native_zone},       {"dynamic_zone", LocationKind::dynamic_zone},
        {"mark", LocationKind::mark},              {"counter", LocationKind::counter},
        {"frame", LocationKind::frame},            {"python", LocationKind::python_function},
        {"c", LocationKind::c_function},           {"line", LocationKind::python_line},
        {"other", LocationKind::other},            {"gc", LocationKind::gc_collection},
        {"import", LocationKind::python_import},   {"io", LocationKind::io_site},
        {"exception", LocationKind::exception_type}};
    for (const auto& k : kinds) {
        if (name == k.first) {
            return k.second;
        }
    }
    throw ProfileLoadError("profile: unknown function kind '" + name + "'");
}

class ProfileReader {
public:
    Profile read(const json::Value& section) {
        Profile p;
        const std::int64_t schema = section.at("schema").as_int();
        if (schema != Profile::schema_version) {
            throw ProfileLoadError("profile: schema " + std::to_string(schema) + " is not supported (this build reads " +
                                   std::to_string(Profile::schema_version) + ")");
        }
        const std::string& unit = section.at("unit").as_string();
        if (unit == "ns") {
            p.unit = Unit::nanoseconds;
        } else if (unit == "samples") {
            p.unit = Unit::samples;
        } else {
            throw ProfileLoadError("profile: unknown unit '" + unit + "'");
        }
        p.wall_ns = section.at("wall_ns").as_uint();
        p.total = section.at("total").as_uint();
        p.unclosed_spans = section.at("unclosed_spans").as_uint();
        p.unmatched_ends = section.at("unmatched_ends").as_uint();
        p.max_depth = section.at("max_depth").as_uint();
        p.tree_pruned = section.at("tree_pruned").as_uint();
        for (const auto& t : section.at("threads").items()) {
            p.threads.push_back(Thread{u32(t.at("index")), t.at("os_tid").as_uint(), t.at("name").as_string(),
                                       t.at("total").as_uint()});
        }
        for (const auto& f : section.at("functions").items()) {
            if (f.at("id").as_uint() != p.functions.size()) {
                throw ProfileLoadError("profile: function ids must be 0, 1, 2, ... in order");
            }
            Function fn;
            fn.name = f.at("name").as_string();
            fn.file = f.at("file").as_string();
            fn.line = u32(f.at("line"));
            fn.kind = parse_kind(f.at("kind").as_string());
            fn.calls = f.at("calls").as_uint();
            fn.resumes = f.at("resumes").as_uint();
            fn.self = f.at("self").as_uint();
            fn.inclusive = f.at("inclusive").as_uint();
            fn.unclosed = f.at("unclosed").as_uint();
            for (const auto& s : f.at("threads").items()) {
                fn.threads.push_back(ThreadShare{index(s.at("thread"), p.threads.size(), "thread"),
                                                 s.at("calls").as_uint(), s.at("self").as_uint(),
                                                 s.at("inclusive").as_uint()});
            }
            p.functions.push_back(std::move(fn));
        }
        const std::size_t functions = p.functions.size();
        for (const auto& e : section.at("edges").items()) {
            tuple(e, 5, "edge");
            p.edges.push_back(Edge{index(e[0], functions, "caller"), index(e[1], functions, "callee"), e[2].as_uint(),
                                   e[3].as_uint(), e[4].as_uint()});
        }
        p.tree.push_back(TreeNode{});
        p.tree[0].inclusive = p.total;
        for (const auto& n : section.at("tree").items()) {
            tuple(n, 5, "tree node");
            // A parent precedes its children.
            p.tree.push_back(TreeNode{index(n[0], functions, "tree function"), index(n[1], p.tree.size(), "parent"),
                                      n[2].as_uint(), n[3].as_uint(), n[4].as_uint()});
        }
        for (const auto& l : section.at("lines").items()) {
            Line line;
            line.file = l.at("file").as_string();
            line.line = u32(l.at("line"));
            line.function = index(l.at("function"), functions, "line function");
            line.hits = l.at("hits").as_uint();
            line.time = l.at("time").as_uint();
            line.total = l.at("total").as_uint();
            p.lines.push_back(std::move(line));
        }
        return p;
    }

private:
    static std::uint32_t u32(const json::Value& v) {
        const std::uint64_t n = v.as_uint();
        if (n > 0xffffffffu) {
            throw ProfileLoadError("profile: " + v.number_text() + " does not fit 32 bits");
        }
        return static_cast<std::uint32_t>(n);
    }
    static std::uint32_t index(const json::Value& v, std::size_t size, const char* what) {
        const std::uint64_t n = v.as_uint();
        if (n >= size) {
            throw ProfileLoadError(std::string("profile: ") + what + " index " + std::to_string(n) +
                                   " out of range (" + std::to_string(size) + ")");
        }
        return static_cast<std::uint32_t>(n);
    }
    static void tuple(const json::Value& v, std::size_t size, const char* what) {
        if (!v.is_array() || v.size() != size) {
            throw ProfileLoadError(std::string("profile: a ") + what + " must be an array of " + std::to_string(size) +
                                   " numbers");
        }
    }
};

} // namespace detail

// From the text of a session.json document.
inline Profile profile_from_json(std::string_view text) {
    try {
        const json::Value doc = json::parse(text);
        const json::Value* section = doc.is_object() ? doc.find("profile") : nullptr;
        if (section == nullptr) {
            throw ProfileLoadError("session has no \"profile\" section (written by an older pycroscope?)");
        }
        return detail::ProfileReader().read(*section);
    } catch (const ProfileLoadError&) {
        throw;
    } catch (const std::exception& e) {
        // Parse errors, missing keys, wrong types: one error type for the caller.
        throw ProfileLoadError(std::string("profile: ") + e.what());
    }
}

// From a session.json file.
inline Profile load_profile(const std::string& path) {
    std::string text;
    try {
        std::ifstream in(path, std::ios::binary);
        if (!in) {
            throw ProfileLoadError("cannot open '" + path + "'");
        }
        std::ostringstream buffer;
        buffer << in.rdbuf();
        text = buffer.str();
    } catch (const ProfileLoadError&) {
        throw;
    } catch (const std::exception& e) {
        throw ProfileLoadError("cannot read '" + path + "': " + e.what());
    }
    try {
        return profile_from_json(text);
    } catch (const ProfileLoadError& e) {
        throw ProfileLoadError(path + ": " + std::string(e.what()).substr(std::string_view("pycroscope: ").size()));
    }
}

} // namespace model
} // namespace pycroscope
