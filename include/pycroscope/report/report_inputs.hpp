#pragma once
// ReportInputs: what a report is rendered from (the files of one
// `pycroscope profile` output folder) and the limits that keep the rendered
// page small whatever the run's length.
//
//     auto inputs = report::ReportInputs::from_output_dir("profiling_results/20260101-120000");
//     report::write_html_report(inputs.output_dir + "/report.html", inputs);
//
// Every input is optional: a missing file leaves its panels saying "not
// recorded in this run". Source files are read from disk at render time, by
// the paths session.json names.

#include <cstddef>
#include <string>

namespace pycroscope {
namespace report {

struct ReportLimits {
    std::size_t flame_nodes = 20000;          // per flame graph, before "[other]" nodes
    std::size_t functions = 3000;             // rows of functions / c_functions / zones kept
    std::size_t array_items = 5000;           // any other array in session.json
    std::size_t source_files = 12;            // profiled files shown in the source heatmap
    std::size_t source_file_bytes = 256 * 1024;
    std::size_t source_total_bytes = 1024 * 1024;
    std::size_t page_bytes = 4 * 1024 * 1024; // the embedded data is cut down until it fits
};

struct ReportInputs {
    std::string session_json;   // path of session.json ("" or missing: no session)
    std::string stacks_folded;  // time (or samples) per stack
    std::string memory_folded;  // allocated bytes per stack
    std::string output_dir;     // where the inputs came from (shown in the page)
    ReportLimits limits;

    static ReportInputs from_output_dir(const std::string& dir) {
        ReportInputs inputs;
        std::string base = dir;
        if (!base.empty() && base.back() != '/') {
            base += '/';
        }
        inputs.session_json = base + "session.json";
        inputs.stacks_folded = base + "stacks.folded";
        inputs.memory_folded = base + "memory.folded";
        inputs.output_dir = dir;
        return inputs;
    }
};

} // namespace report
} // namespace pycroscope
