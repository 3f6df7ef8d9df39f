#pragma once
// The data a report page embeds: session.json (trimmed to the report's
// limits), the time and memory flame trees, and the profiled source files.
// Aggregates only, never raw events, and cut down step by step until the
// serialized form fits ReportLimits::page_bytes, so the page stays small for
// any run length.
//
//     report::JsonValue data = report::build_report_data(inputs);
//     // {"report": {...}, "session": {...} | null, "flames": {"time", "memory"}, "sources": [...]}
//
// "report.truncated" lists what was cut ({"what", "kept", "total"}) and
// "report.problems" the inputs that could not be read, so the page can say so.

#include "pycroscope/report/flame_tree.hpp"
#include "pycroscope/report/json_document.hpp"
#include "pycroscope/report/report_error.hpp"
#include "pycroscope/report/report_inputs.hpp"
#include "pycroscope/report/source_files.hpp"
#include "pycroscope/version.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace pycroscope {
namespace report {

namespace detail {

inline bool read_whole_file(const std::string& path, std::string& text, std::string& error) {
    std::FILE* file = std::fopen(path.c_str(), "rb");
    if (file == nullptr) {
        error = "cannot read '" + path + "': " + std::strerror(errno);
        return false;
    }
    text.clear();
    char buffer[1 << 16];
    std::size_t got = 0;
    while ((got = std::fread(buffer, 1, sizeof buffer, file)) > 0) {
        text.append(buffer, got);
    }
    const bool failed = std::ferror(file) != 0;
    std::fclose(file);
    if (failed) {
        error = "reading '" + path + "' failed";
        return false;
    }
    return true;
}

inline bool file_exists(const std::string& path) {
    if (path.empty()) {
        return false;
    }
    std::FILE* file = std::fopen(path.c_str(), "rb");
    if (file == nullptr) {
        return false;
    }
    std::fclose(file);
    return true;
}

inline JsonValue truncation(const std::string& what, std::size_t kept, std::size_t total) {
    JsonValue note = JsonValue::make_object();
    note.set("what", JsonValue::make_string(what));
    note.set("kept", JsonValue::make_number_text(std::to_string(kept)));
    note.set("total", JsonValue::make_number_text(std::to_string(total)));
    return note;
}

// Keeps the `limit` rows with the largest `key`, heaviest first.
inline void keep_heaviest(JsonValue* rows, const char* key, std::size_t limit, const std::string& what,
                          JsonValue& notes) {
    if (rows == nullptr || !rows->is_array() || rows->items().size() <= limit) {
        return;
    }
    auto& items = rows->items();
    const std::size_t total = items.size();
    std::stable_sort(items.begin(), items.end(), [key](const JsonValue& a, const JsonValue& b) {
        return a.get_number(key) > b.get_number(key);
    });
    items.resize(limit);
    notes.push_back(truncation(what, limit, total));
}

// Any array longer than limit keeps its first `limit` items (the sections
// are written most important first).
inline void cap_arrays(JsonValue& value, std::size_t limit, const std::string& path, JsonValue& notes) {
    if (value.is_array()) {
        if (value.items().size() > limit) {
            notes.push_back(truncation(path, limit, value.items().size()));
            value.items().resize(limit);
        }
        for (auto& item : value.items()) {
            cap_arrays(item, limit, path + "[]", notes);
        }
    } else if (value.is_object()) {
        for (auto& member : value.members()) {
            cap_arrays(member.second, limit, path.empty() ? member.first : path + "." + member.first, notes);
        }
    }
}

inline void trim_session(JsonValue& session, const ReportLimits& limits, JsonValue& notes) {
    for (const char* table : {"functions", "c_functions", "zones"}) {
        keep_heaviest(session.find(table), "self_ns", limits.functions, table, notes);
        // Call graph edges: the heaviest callers and callees of each function.
        if (JsonValue* rows = session.find(table); rows != nullptr && rows->is_array()) {
            for (auto& row : rows->items()) {
                for (const char* edges : {"callers", "callees"}) {
                    JsonValue* list = row.find(edges);
                    if (list != nullptr && list->is_array() && list->items().size() > 100) {
                        auto& items = list->items();
                        std::stable_sort(items.begin(), items.end(), [](const JsonValue& a, const JsonValue& b) {
                            return a.get_number("time_ns") > b.get_number("time_ns");
                        });
                        items.resize(100);
                    }
                }
            }
        }
    }
    keep_heaviest(session.find("lines"), "time_ns", limits.array_items, "lines", notes);
    cap_arrays(session, limits.array_items, "", notes);
}

inline std::unique_ptr<FlameTree> read_flame(const std::string& path, JsonValue& problems) {
    if (!file_exists(path)) {
        return nullptr;
    }
    try {
        return std::make_unique<FlameTree>(FlameTree::from_file(path));
    } catch (const std::exception& error) {
        problems.push_back(JsonValue::make_string(error.what()));
        return nullptr;
    }
}

inline JsonValue flame_json(FlameTree* tree, std::size_t max_nodes, const char* unit) {
    if (tree == nullptr) {
        return JsonValue();
    }
    tree->prune(max_nodes); // pruning a pruned tree again only cuts further
    JsonValue json = tree->to_json();
    json.set("unit", JsonValue::make_string(unit));
    return json;
}

} // namespace detail

inline JsonValue build_report_data(const ReportInputs& inputs) {
    JsonValue problems = JsonValue::make_array();
    std::unique_ptr<JsonValue> session;
    if (detail::file_exists(inputs.session_json)) {
        std::string text;
        std::string error;
        if (!detail::read_whole_file(inputs.session_json, text, error)) {
            problems.push_back(JsonValue::make_string(error));
        } else {
            try {
                session = std::make_unique<JsonValue>(parse_json(text));
            } catch (const ReportError& bad) {
                problems.push_back(JsonValue::make_string(inputs.session_json + ": " + bad.what()));
            }
            if (session && !session->is_object()) {
                problems.push_back(JsonValue::make_string(inputs.session_json + ": not a JSON object"));
                session.reset();
            }
        }
    } else if (!inputs.session_json.empty()) {
        problems.push_back(JsonValue::make_string("no session.json at '" + inputs.session_json + "'"));
    }

    // In a sampling run stacks.folded counts samples, not nanoseconds: such a
    // run has sampled hotspots and no traced functions.
    bool sampled = false;
    if (session) {
        const JsonValue* hotspots = session->find("hotspots");
        const JsonValue* functions = session->find("functions");
        sampled = hotspots != nullptr && hotspots->is_object() && hotspots->find("samples") != nullptr &&
                  (functions == nullptr || !functions->is_array() || functions->items().empty());
    }
    const char* time_unit = sampled ? "samples" : "ns";
    ReportLimits limits = inputs.limits;
    std::unique_ptr<FlameTree> time_tree = detail::read_flame(inputs.stacks_folded, problems);
    std::unique_ptr<FlameTree> memory_tree = detail::read_flame(inputs.memory_folded, problems);
    JsonValue sources = session ? collect_source_files(*session, limits) : JsonValue::make_array();

    // Cut down until the page fits: each round halves every limit.
    for (int round = 0;; ++round) {
        JsonValue notes = JsonValue::make_array();
        JsonValue trimmed;
        if (session) {
            trimmed = *session;
            detail::trim_session(trimmed, limits, notes);
        }
        JsonValue data = JsonValue::make_object();
        JsonValue meta = JsonValue::make_object();
        meta.set("generator", JsonValue::make_string(std::string("pycroscope ") + PYCROSCOPE_VERSION_STRING));
        meta.set("output_dir", JsonValue::make_string(inputs.output_dir));
        meta.set("problems", problems);
        meta.set("truncated", std::move(notes));
        data.set("report", std::move(meta));
        data.set("session", std::move(trimmed));
        JsonValue flames = JsonValue::make_object();
        flames.set("time", detail::flame_json(time_tree.get(), limits.flame_nodes, time_unit));
        flames.set("memory", detail::flame_json(memory_tree.get(), limits.flame_nodes, "bytes"));
        data.set("flames", std::move(flames));
        data.set("sources", sources);
        if (round >= 8 || to_json(data, JsonEscape::script).size() <= limits.page_bytes) {
            return data;
        }
        limits.flame_nodes = std::max<std::size_t>(limits.flame_nodes / 2, 64);
        limits.functions = std::max<std::size_t>(limits.functions / 2, 20);
        limits.array_items = std::max<std::size_t>(limits.array_items / 2, 20);
        limits.source_total_bytes /= 2;
        limits.source_file_bytes = std::min(limits.source_file_bytes, limits.source_total_bytes);
        if (session) {
            sources = collect_source_files(*session, limits);
        }
    }
}

} // namespace report
} // namespace pycroscope
