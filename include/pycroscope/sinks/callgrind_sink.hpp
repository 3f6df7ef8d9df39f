#pragma once
// The callgrind profile format (valgrind's docs/callgrind-format), read by
// callgrind_annotate, KCachegrind and QCachegrind: per function its self
// time, and per caller -> callee edge the number of calls and the inclusive
// time spent in the callee from that caller. The only event is "ns"
// (nanoseconds of wall-clock time, as traced); positions are source lines:
// a function's costs sit on its first line, calls go to the callee's.
//
// Functions are the span locations of every thread, merged: from the
// session's ProfileBuilder in a traced run (its functions and edges, so the
// times are session.json's, overhead-compensated, and spans open at stop end
// at their thread's last event), else from a call tree per thread kept here
// (raw times, open spans end at stop). callgrind names
// a function by file and name, so two locations that share both (two
// lambdas of one file) are told apart by a suffix "'<line>". File and
// function names are compressed ("(id) name" the first time, "(id)" after).
// Self time per function is the exact sum over threads, converted once, so
// it equals JsonSummarySink's self_ns of that location.

#include "pycroscope/core/call_tree.hpp"
#include "pycroscope/model/profile_builder.hpp"
#include "pycroscope/sinks/file_sink.hpp"
#include "pycroscope/sinks/json_writer.hpp"
#include "pycroscope/sinks/per_thread_state.hpp"
#include "pycroscope/version.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace pycroscope {
namespace sinks {

class CallgrindSink : public FileSink {
public:
    explicit CallgrindSink(std::string path) : FileSink("callgrind profile", std::move(path)) {}
    // A traced run's functions and edges from the builder, which the session
    // feeds and finishes before this sink closes.
    CallgrindSink(std::string path, std::shared_ptr<const model::ProfileBuilder> builder)
        : FileSink("callgrind profile", std::move(path)), builder_(std::move(builder)) {}

protected:
    void open_(const SessionInfo& info) override {
        FileSink::open_(info);
        trees_.clear();
    }

    void sink_it_(const ThreadInfo& thread, const Event* events, std::size_t count) override {
        if (builder_) {
            return;
        }
        CallTree& tree = trees_[thread.index];
        for (std::size_t i = 0; i < count; ++i) {
            tree.add(events[i]);
        }
    }

    void close_(const SessionSummary& summary) override {
        // Ticks from the call trees, nanoseconds from the Profile.
        std::unordered_map<const SourceLocation*, Function> functions =
            builder_ ? from_profile(builder_->profile()) : from_trees(summary);
        const bool in_ns = builder_ != nullptr;
        names_ = unique_names(functions);
        std::vector<const SourceLocation*> order;
        for (const auto& entry : functions) {
            order.push_back(entry.first);
        }
        std::sort(order.begin(), order.end(), [&](const SourceLocation* a, const SourceLocation* b) {
            return names_.at(a) < names_.at(b);
        });

        auto to_ns = [&](std::uint64_t ticks) {
            return in_ns ? ticks : static_cast<std::uint64_t>(summary.info.ticks_to_ns(ticks) + 0.5);
        };
        std::uint64_t total = 0;
        for (const auto& entry : functions) {
            total += to_ns(entry.second.self_ticks);
        }
        std::string out = "# callgrind format\nversion: 1\ncreator: pycroscope " PYCROSCOPE_VERSION_STRING "\n";
        out += "pid: " + std::to_string(summary.info.pid) + "\ncmd: ";
        append_line_safe(out, summary.info.process_name);
        out += "\npart: 1\n\npositions: line\nevents: ns\nsummary: " + std::to_string(total) + "\n";
        file_ids_.clear();
        function_ids_.clear();
        for (const SourceLocation* location : order) {
            const Function& f = functions.at(location);
            out += "\nfl=";
            append_file(out, location);
            out += "\nfn=";
            append_function(out, location);
            out += '\n';
            append_unsigned(out, line_of(location));
            out += ' ';
            append_unsigned(out, to_ns(f.self_ticks));
            out += '\n';
            std::vector<std::pair<const SourceLocation*, Edge>> callees(f.callees.begin(), f.callees.end());
            std::sort(callees.begin(), callees.end(),
                      [&](const auto& a, const auto& b) { return names_.at(a.first) < names_.at(b.first); });
            for (const auto& call : callees) {
                out += "cfl=";
                append_file(out, call.first);
                out += "\ncfn=";
                append_function(out, call.first);
                out += "\ncalls=";
                append_unsigned(out, call.second.calls);
                out += ' ';
                append_unsigned(out, line_of(call.first));
                out += '\n';
                append_unsigned(out, line_of(location));
                out += ' ';
                append_unsigned(out, to_ns(call.second.inclusive_ticks));
                out += '\n';
            }
            if (out.size() > (1u << 20)) {
                file().write(out);
                out.clear();
            }
        }
        out += "\ntotals: " + std::to_string(total) + "\n";
        file().write(out);
        file().commit();
    }

private:
    struct Edge {
        std::uint64_t calls = 0;
        std::uint64_t inclusive_ticks = 0;
    };
    struct Function {
        std::uint64_t self_ticks = 0;
        std::map<const SourceLocation*, Edge> callees; // ordered below by name
    };

    std::unordered_map<const SourceLocation*, Function> from_trees(const SessionSummary& summary) {
        std::unordered_map<const SourceLocation*, Function> functions;
        trees_.for_each([&](std::uint32_t, CallTree& tree) {
            tree.finish(summary.stop_ticks);
            const auto& nodes = tree.nodes();
            for (std::size_t i = 1; i < nodes.size(); ++i) {
                const CallTree::Node& node = nodes[i];
                Function& f = functions[node.location];
                f.self_ticks += node.self_ticks;
                if (node.parent != 0) {
                    Edge& edge = functions[nodes[node.parent].location].callees[node.location];
                    edge.calls += node.count + node.resumes;
                    edge.inclusive_ticks += node.inclusive_ticks;
                }
            }
        });
        return functions;
    }

    // The Profile's times are nanoseconds already (a sampled Profile has no spans to show).
    static std::unordered_map<const SourceLocation*, Function> from_profile(const model::Profile& profile) {
        std::unordered_map<const SourceLocation*, Function> functions;
        if (profile.unit != model::Unit::nanoseconds) {
            return functions;
        }
        for (const model::Function& f : profile.functions) {
            functions[f.location].self_ticks += f.self;
        }
        for (const model::Edge& e : profile.edges) {
            Edge& edge = functions[profile.functions[e.caller].location].callees[profile.functions[e.callee].location];
            // A generator resumed under a caller is an activation without a
            // call; callgrind reads the cost after "calls=0" as self time.
            edge.calls += std::max<std::uint64_t>(e.calls, 1);
            edge.inclusive_ticks += e.inclusive;
        }
        return functions;
    }

    static std::uint32_t line_of(const SourceLocation* location) noexcept {
        return location != nullptr ? location->line : 0;
    }

    static std::string file_of(const SourceLocation* location) {
        return location != nullptr && location->file != nullptr && location->file[0] != '\0' ? location->file
                                                                                                : "???";
    }

    // Names are lines of the file: no line breaks inside.
    static void append_line_safe(std::string& out, std::string_view text) {
        for (const char c : text) {
            out += (c == '\n' || c == '\r') ? ' ' : c;
        }
    }

    // Display names, with "'<line>" where a file holds two locations of one name.
    template <class Map>
    static std::unordered_map<const SourceLocation*, std::string> unique_names(const Map& functions) {
        std::map<std::pair<std::string, std::string>, std::vector<const SourceLocation*>> by_name;
        for (const auto& entry : functions) {
            const SourceLocation* l = entry.first;
            const char* shown = l != nullptr ? l->display_name() : nullptr;
            by_name[{file_of(l), shown != nullptr ? shown : "<unknown>"}].push_back(l);
        }
        std::unordered_map<const SourceLocation*, std::string> names;
        for (auto& group : by_name) {
            std::string base;
            append_line_safe(base, group.first.second);
            if (group.second.size() == 1) {
                names.emplace(group.second.front(), base);
                continue;
            }
            std::sort(group.second.begin(), group.second.end(), [](const SourceLocation* a, const SourceLocation* b) {
                return line_of(a) < line_of(b);
            });
            std::set<std::string> used;
            for (const SourceLocation* l : group.second) {
                std::string name = base + "'" + std::to_string(line_of(l));
                for (int n = 2; !used.insert(name).second; ++n) { // same line too
                    name = base + "'" + std::to_string(line_of(l)) + "-" + std::to_string(n);
                }
                names.emplace(l, name);
            }
        }
        return names;
    }

    void append_file(std::string& out, const SourceLocation* location) {
        append_compressed(out, file_ids_, file_of(location));
    }
    void append_function(std::string& out, const SourceLocation* location) {
        append_compressed(out, function_ids_, names_.at(location));
    }
    static void append_compressed(std::string& out, std::unordered_map<std::string, std::uint64_t>& ids,
                                  const std::string& name) {
        auto found = ids.find(name);
        if (found != ids.end()) {
            out += '(';
            append_unsigned(out, found->second);
            out += ')';
            return;
        }
        const std::uint64_t id = ids.size() + 1;
        ids.emplace(name, id);
        out += '(';
        append_unsigned(out, id);
        out += ") ";
        append_line_safe(out, name);
    }

    std::shared_ptr<const model::ProfileBuilder> builder_; // traced runs: times from its Profile
    PerThreadState<CallTree> trees_;
    std::unordered_map<const SourceLocation*, std::string> names_;
    std::unordered_map<std::string, std::uint64_t> file_ids_;
    std::unordered_map<std::string, std::uint64_t> function_ids_;
};

} // namespace sinks
} // namespace pycroscope
