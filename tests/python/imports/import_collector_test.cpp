// ImportCollector: the "imports" tree names the same modules with the same
// nesting as `python -X importtime` (the interpreter of the linked libpython,
// run as a subprocess) for the same imports from the same starting set of
// loaded modules; stop() restores importlib's _find_and_load.

#include "python/event_capture.hpp"
#include "support/json.hpp"

#include <pycroscope/python/imports/import_collector.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace import_collector_test {
namespace {

namespace py = pycroscope::python;
using namespace pycroscope_test;

struct Tree {
    std::string module;
    std::vector<Tree> children;
};

std::string render(const std::vector<Tree>& trees) {
    std::string out;
    for (const Tree& t : trees) {
        out.append(out.empty() ? "" : ", ").append(t.module);
        if (!t.children.empty()) {
            out.append(" (").append(render(t.children)).append(")");
        }
    }
    return out;
}

std::vector<Tree> from_section(const json::Value& list) {
    std::vector<Tree> out;
    for (const auto& item : list.items()) {
        out.push_back(Tree{item.at("module").as_string(), from_section(item.at("children"))});
    }
    return out;
}

// importtime prints one line per import when it finishes, indented two
// spaces per level: "import time: <self> | <cumulative> | <indent><module>".
// Lines are post-order, so the pending lines one level deeper are a line's children.
std::vector<Tree> parse_importtime(const std::string& text, const std::string& after_marker) {
    std::istringstream in(text.substr(text.find(after_marker) + after_marker.size()));
    std::vector<std::vector<Tree>> pending(1);
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("import time:", 0) != 0 || line.find("imported package") != std::string::npos) {
            continue;
        }
        const auto bar = line.rfind('|');
        std::string name = line.substr(bar + 2);
        std::size_t spaces = 0;
        while (spaces < name.size() && name[spaces] == ' ') {
            ++spaces;
        }
        const std::size_t level = spaces / 2;
        if (pending.size() < level + 2) {
            pending.resize(level + 2);
        }
        Tree node{name.substr(spaces), std::move(pending[level + 1])};
        pending[level + 1].clear();
        pending[level].push_back(std::move(node));
    }
    return pending[0];
}

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string python_list(const std::vector<std::string>& names) {
    std::string out = "[";
    for (const auto& n : names) {
        out.append("'").append(n).append("', ");
    }
    return out.append("]");
}

std::vector<std::string> loaded_modules() {
    std::vector<std::string> out;
    Ref sys(PyImport_ImportModule("sys"));
    Ref modules(PyObject_GetAttrString(sys.get(), "modules"));
    Ref keys(PyMapping_Keys(modules.get()));
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(keys.get()); ++i) {
        const char* name = PyUnicode_AsUTF8(PyList_GET_ITEM(keys.get(), i));
        if (name != nullptr && std::string(name).find('\'') == std::string::npos) {
            out.push_back(name);
        }
    }
    return out;
}

#ifdef PYCROSCOPE_PYTHON_EXECUTABLE
TEST(ImportCollector, TreeMatchesImportTime) {
    ensure_python();
    TempDir dir;
    const std::string python = PYCROSCOPE_PYTHON_EXECUTABLE;

    // 1. Whatever a fresh interpreter loads at startup is loaded here too.
    {
        std::ofstream(dir.file("startup.py")) << "import sys\nprint('\\n'.join(sorted(sys.modules)))\n";
        const std::string command = python + " " + dir.file("startup.py") + " > " + dir.file("startup.txt");
        ASSERT_EQ(std::system(command.c_str()), 0) << command;
        std::istringstream names(read_text(dir.file("startup.txt")));
        std::string code = "for m in [";
        for (std::string name; std::getline(names, name);) {
            code.append("'").append(name).append("', ");
        }
        code += "]:\n    try:\n        __import__(m)\n    except BaseException:\n        pass\n";
        Ref ns(PyDict_New());
        PyDict_SetItemString(ns.get(), "__builtins__", PyEval_GetBuiltins());
        ASSERT_TRUE(exec_in(ns.get(), code));
    }

    // 2. Standard modules with nested imports that this process has not loaded.
    const std::vector<std::string> loaded = loaded_modules();
    std::vector<std::string> targets;
    for (const char* candidate : {"json", "csv", "email.mime.text", "xml.dom.minidom", "http.cookiejar", "fractions",
                                  "zipfile", "difflib", "configparser", "statistics", "calendar", "decimal"}) {
        if (std::find(loaded.begin(), loaded.end(), candidate) == loaded.end()) {
            targets.push_back(candidate);
        }
    }
    ASSERT_GE(targets.size(), 3u) << "the test process has loaded most candidates already";
    std::string imports;
    for (const auto& t : targets) {
        imports.append("import ").append(t).append("\n");
    }

    // 3. importtime in a subprocess that first loads what this process has loaded.
    const std::string marker = "--pycroscope-imports-start--";
    std::ofstream(dir.file("importtime.py"))
        << "import sys\nfor m in " << python_list(loaded)
        << ":\n    try:\n        __import__(m)\n    except BaseException:\n        pass\n"
        << "sys.stderr.write('" << marker << "\\n')\nsys.stderr.flush()\n"
        << imports;
    const std::string command = python + " -X importtime " + dir.file("importtime.py") + " 2> " + dir.file("err.txt");
    ASSERT_EQ(std::system(command.c_str()), 0) << command << "\n" << read_text(dir.file("err.txt"));
    const std::vector<Tree> expected = parse_importtime(read_text(dir.file("err.txt")), marker);
    // A target that an earlier one imported prints nothing: at least the first is a root.
    ASSERT_FALSE(expected.empty());
    ASSERT_EQ(expected.front().module, targets.front());

    // 4. The same imports here, recorded.
    pycroscope::Session<py::ImportCollector> session;
    auto model = std::make_shared<pycroscope::model::ImportModel>();
    auto summary = std::make_shared<pycroscope::sinks::JsonSummarySink>(dir.file("session.json"));
    pycroscope::model::add_imports_section(*summary, *model);
    session.core().add_processor(model);
    session.add_sink(summary);
    session.start();
    Ref ns(PyDict_New());
    PyDict_SetItemString(ns.get(), "__builtins__", PyEval_GetBuiltins());
    const bool ran = exec_in(ns.get(), imports);
    session.stop();
    ASSERT_TRUE(ran);

    const json::Value doc = json::parse_file(dir.file("session.json"));
    const std::vector<Tree> recorded = from_section(doc.at("imports"));
    EXPECT_EQ(render(recorded), render(expected));
    std::size_t nested = 0;
    for (const auto& root : doc.at("imports").items()) {
        nested += root.at("children").size();
        EXPECT_FALSE(root.at("failed").as_bool());
        EXPECT_GT(root.at("cumulative_ns").as_uint(), 0u);
        EXPECT_LE(root.at("self_ns").as_uint(), root.at("cumulative_ns").as_uint());
        std::uint64_t children_ns = 0;
        for (const auto& child : root.at("children").items()) {
            children_ns += child.at("cumulative_ns").as_uint();
        }
        EXPECT_NEAR(static_cast<double>(root.at("self_ns").as_uint() + children_ns),
                    static_cast<double>(root.at("cumulative_ns").as_uint()), 2.0 + root.at("children").size());
    }
    EXPECT_GT(nested, 0u) << "the chosen modules import others";
}
#endif

TEST(ImportCollector, FailedImportIsMarkedAndStopRestoresImportlib) {
    ensure_python();
    Ref importlib(PyImport_ImportModule("_frozen_importlib"));
    Ref before(PyObject_GetAttrString(importlib.get(), "_find_and_load"));
    pycroscope::Session<py::ImportCollector> session;
    auto model = std::make_shared<pycroscope::model::ImportModel>();
    session.core().add_processor(model);
    session.start();
    Ref during(PyObject_GetAttrString(importlib.get(), "_find_and_load"));
    EXPECT_NE(during.get(), before.get());
    Ref ns(PyDict_New());
    PyDict_SetItemString(ns.get(), "__builtins__", PyEval_GetBuiltins());
    const bool ran = exec_in(ns.get(), "try:\n    import pycroscope_no_such_module\nexcept ImportError:\n    pass\n");
    session.stop();
    EXPECT_TRUE(ran);
    Ref after(PyObject_GetAttrString(importlib.get(), "_find_and_load"));
    EXPECT_EQ(after.get(), before.get());
    ASSERT_EQ(model->roots().size(), 1u);
    const auto& node = model->nodes()[model->roots()[0]];
    EXPECT_EQ(node.module, "pycroscope_no_such_module");
    EXPECT_TRUE(node.failed);
    EXPECT_TRUE(node.children.empty());
}

} // namespace
} // namespace import_collector_test
