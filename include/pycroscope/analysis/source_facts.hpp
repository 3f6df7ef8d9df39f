#pragma once
// Facts about the profiled Python sources, as plain data: the candidate
// sites of the pattern pass (loops, calls, imports, unreachable statements)
// and every function definition with its McCabe complexity. Gathered by the
// interpreter's own `ast` (python/analysis/source_findings.hpp) and read here
// from the JSON that script returns, so findings.hpp joins them with a
// Profile without Python.

#include "pycroscope/core/json_reader.hpp"
#include "pycroscope/model/profile.hpp"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pycroscope {
namespace analysis {

// A place in a source where a pattern may cost time; the Profile decides.
struct SourceSite {
    std::string kind; // a findings.hpp kind name
    std::uint32_t line = 0;
    std::uint32_t end_line = 0;
    std::string function;            // qualified name; "<module>" at module level
    std::uint32_t function_line = 0; // its first line (first decorator), 0 at module level
    std::string detail;              // what the script saw, for the message
};

struct SourceFunction {
    std::string name;             // qualified name
    std::uint32_t first_line = 0; // co_firstlineno: the first decorator, else the def
    std::uint32_t def_line = 0;
    std::uint32_t end_line = 0;
    std::uint32_t complexity = 1; // McCabe
};

struct SourceFile {
    std::string file;
    std::string skipped; // empty when analysed; "library" or "unreadable: ..." otherwise
    std::vector<SourceSite> sites;
    std::vector<SourceFunction> functions;
};

struct SourceFacts {
    std::vector<SourceFile> files;
    double seconds = 0; // time taken to gather them
    std::string error;  // set when the facts could not be gathered at all
};

// Gathers the facts of these files; include_libraries analyses the standard
// library and installed packages too.
using SourceFactsProvider =
    std::function<SourceFacts(const std::vector<std::string>& files, bool include_libraries)>;

// The Python source files of the functions that ran (or were sampled), in
// path order: "<frozen ...>", "<string>" and other pseudo-files left out.
inline std::vector<std::string> profiled_sources(const model::Profile& profile) {
    std::vector<std::string> files;
    for (const model::Function& f : profile.functions) {
        if (f.kind != LocationKind::python_function || f.file.empty() || f.file.front() == '<') {
            continue;
        }
        if (f.calls == 0 && f.self == 0 && f.inclusive == 0 && f.resumes == 0) {
            continue;
        }
        files.push_back(f.file);
    }
    std::sort(files.begin(), files.end());
    files.erase(std::unique(files.begin(), files.end()), files.end());
    return files;
}

namespace detail {
inline std::uint32_t line_number(const json::Value& v) {
    const std::int64_t n = v.as_int();
    return n < 0 ? 0u : n > 0x7fffffff ? 0x7fffffffu : static_cast<std::uint32_t>(n);
}
} // namespace detail

// The script's JSON: [{file, skipped, sites: [[kind, line, end_line,
// function, function_line, detail]], functions: [[name, first_line,
// def_line, end_line, complexity]]}]. Throws std::runtime_error when malformed.
inline SourceFacts parse_source_facts(std::string_view text) {
    const json::Value doc = json::parse(text);
    SourceFacts facts;
    for (const json::Value& entry : doc.items()) {
        SourceFile file;
        file.file = entry.at("file").as_string();
        file.skipped = entry.at("skipped").as_string();
        for (const json::Value& s : entry.at("sites").items()) {
            if (s.size() != 6) {
                throw std::runtime_error("source facts: a site needs 6 fields");
            }
            SourceSite site;
            site.kind = s[0].as_string();
            site.line = detail::line_number(s[1]);
            site.end_line = std::max(site.line, detail::line_number(s[2]));
            site.function = s[3].as_string();
            site.function_line = detail::line_number(s[4]);
            site.detail = s[5].as_string();
            file.sites.push_back(std::move(site));
        }
        for (const json::Value& f : entry.at("functions").items()) {
            if (f.size() != 5) {
                throw std::runtime_error("source facts: a function needs 5 fields");
            }
            SourceFunction fn;
            fn.name = f[0].as_string();
            fn.first_line = detail::line_number(f[1]);
            fn.def_line = detail::line_number(f[2]);
            fn.end_line = detail::line_number(f[3]);
            fn.complexity = detail::line_number(f[4]);
            file.functions.push_back(std::move(fn));
        }
        facts.files.push_back(std::move(file));
    }
    return facts;
}

} // namespace analysis
} // namespace pycroscope
