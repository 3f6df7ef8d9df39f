#pragma once
// report.html: one self-contained page (data, script and style inline; no
// network, no server) with the overview, flame graphs, call graph, timeline,
// hotspots, source heatmap, memory, imports, I/O, exceptions, system and
// complexity panels. The page's script and style live in
// include/pycroscope/report/assets/ and are embedded by
// cmake/embed_assets.cmake into report_assets.hpp.
//
//     auto inputs = report::ReportInputs::from_output_dir(dir);
//     report::write_html_report(dir + "/report.html", inputs);
//
// Program data reaches the page only as JSON inside a
// <script type="application/json"> element, escaped so it cannot close that
// element, and the script shows it with textContent. A Content-Security-
// Policy forbids every fetch, so the page works offline and stays inert.

#include "pycroscope/report/html_escape.hpp"
#include "pycroscope/report/json_document.hpp"
#include "pycroscope/report/report_assets.hpp"
#include "pycroscope/report/report_data.hpp"
#include "pycroscope/report/report_file.hpp"
#include "pycroscope/report/report_inputs.hpp"

#include <string>
#include <string_view>

namespace pycroscope {
namespace report {

// The page for already built report data (see report_data.hpp).
inline std::string render_html_report(const JsonValue& data) {
    std::string title = "Pycroscope report";
    if (const JsonValue* session = data.find("session"); session != nullptr && session->is_object()) {
        if (const JsonValue* process = session->find("process")) {
            const std::string name = process->get_string("name");
            if (!name.empty()) {
                title += ": " + name;
            }
        }
    }
    std::string page;
    page.reserve(1 << 18);
    page += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
    page += "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            "script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:\">\n";
    page += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
    page += "<title>" + escape_html(title) + "</title>\n<style>\n";
    for (const char* const* part = assets::report_css; *part != nullptr; ++part) {
        page += *part;
    }
    page += "</style>\n</head>\n<body>\n";
    page += "<noscript>This report needs JavaScript to draw its panels; report.md holds the summary.</noscript>\n";
    page += "<div id=\"app\"></div>\n";
    page += "<script id=\"pycroscope-data\" type=\"application/json\">";
    append_json(page, data, JsonEscape::script);
    page += "</script>\n<script>\n";
    for (const char* const* part = assets::report_js; *part != nullptr; ++part) {
        page += *part;
    }
    page += "</script>\n</body>\n</html>\n";
    return page;
}

inline std::string render_html_report(const ReportInputs& inputs) {
    return render_html_report(build_report_data(inputs));
}

inline void write_html_report(const std::string& path, const ReportInputs& inputs) {
    write_report_file(path, render_html_report(inputs));
}

} // namespace report
} // namespace pycroscope
