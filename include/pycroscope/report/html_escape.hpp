#pragma once
// Escaping text from the profiled program (function names, file paths, the
// script's name) for the few places the C++ side writes it into HTML markup
// itself; everything else reaches the page as JSON data and is shown with
// textContent.

#include <string>
#include <string_view>

namespace pycroscope {
namespace report {

inline std::string escape_html(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

} // namespace report
} // namespace pycroscope
