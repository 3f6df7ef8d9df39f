#pragma once
// Static description of where an event comes from. Native zones get one
// constexpr instance per macro site (as in Tracy), so an event carries only a
// pointer. Dynamic names and Python code objects are interned into instances
// that live until the process exits, so the pointer stays valid after the code
// object that produced it is freed.

#include <cstdint>

namespace pycroscope {

enum class LocationKind : std::uint32_t {
    native_zone = 0,     // PYCRO_SCOPE* sites
    dynamic_zone = 1,    // zones named at run time
    mark = 2,            // instant events
    counter = 3,         // counter tracks
    frame = 4,           // frame marks
    python_function = 5, // Python code objects
    c_function = 6,      // builtins and methods seen through the profile hook
    python_line = 7,     // one line of a Python function
    other = 8,
    gc_collection = 9,   // a garbage collection span; line = generation
    python_import = 10,  // an import span; function = module name
    io_site = 11,        // an I/O operation at a Python line; name = operation
    exception_type = 12, // a Python exception type; name = qualified type name
};

// "python", "c", "zone", ... as every output names location kinds.
constexpr const char* kind_name(LocationKind kind) noexcept {
    switch (kind) {
    case LocationKind::native_zone: return "zone";
    case LocationKind::dynamic_zone: return "zone";
    case LocationKind::mark: return "mark";
    case LocationKind::counter: return "counter";
    case LocationKind::frame: return "frame";
    case LocationKind::python_function: return "python";
    case LocationKind::c_function: return "c";
    case LocationKind::python_line: return "line";
    case LocationKind::other: return "other";
    case LocationKind::gc_collection: return "gc";
    case LocationKind::python_import: return "import";
    case LocationKind::io_site: return "io";
    case LocationKind::exception_type: return "exception";
    }
    return "other";
}

struct SourceLocation {
    const char* name;      // display name; never null once interned
    const char* function;  // enclosing C++ function, or the Python qualified name
    const char* file;
    std::uint32_t line;
    LocationKind kind;

    // PYCRO_SCOPE() leaves name null so the enclosing function names the zone.
    constexpr const char* display_name() const noexcept { return name != nullptr ? name : function; }
};

} // namespace pycroscope
