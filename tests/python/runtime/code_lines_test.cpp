// Per-code line tables (python/code_lines.hpp): every unit of every code
// object of a few large stdlib modules maps to the line PyCode_Addr2Line()
// gives, so the linear LineWalker agrees with CPython's own lookup.

#include "python/python_environment.hpp"

#include <pycroscope/python/runtime/code_lines.hpp>

#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <vector>

namespace code_lines_test {
namespace {

using namespace pycroscope;
using pycroscope_test::ensure_python;

// code and every code object nested in its constants.
void collect_code(PyCodeObject* code, std::vector<PyCodeObject*>& out) {
    out.push_back(code);
    PyObject* constants = code->co_consts;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(constants); ++i) {
        PyObject* item = PyTuple_GET_ITEM(constants, i);
        if (PyCode_Check(item)) {
            collect_code(reinterpret_cast<PyCodeObject*>(item), out);
        }
    }
}

// The compiled module code of a stdlib module's source (a new reference).
PyObject* compile_module(const char* module) {
    const std::string script = std::string("import importlib.util\n"
                                           "spec = importlib.util.find_spec('") +
                               module +
                               "')\n"
                               "source = spec.loader.get_source(spec.name)\n"
                               "code = compile(source, spec.origin, 'exec')\n";
    PyObject* globals = PyDict_New();
    PyObject* result = PyRun_String(script.c_str(), Py_file_input, globals, globals);
    Py_XDECREF(result);
    PyObject* code = result != nullptr ? PyDict_GetItemString(globals, "code") : nullptr;
    Py_XINCREF(code);
    Py_DECREF(globals);
    return code;
}

TEST(CodeLines, TableMatchesAddr2LineForEveryUnit) {
    ensure_python();
    const Py_ssize_t index = python::line_table_index(PyInterpreterState_Get());
    ASSERT_GE(index, 0);
    std::size_t codes = 0, units = 0;
    for (const char* module : {"argparse", "typing", "asyncio.base_events", "json.decoder"}) {
        SCOPED_TRACE(module);
        PyObject* module_code = compile_module(module);
        ASSERT_NE(module_code, nullptr) << "cannot compile " << module;
        std::vector<PyCodeObject*> all;
        collect_code(reinterpret_cast<PyCodeObject*>(module_code), all);
        for (PyCodeObject* code : all) {
            const python::CodeLineTable* table = python::peek_line_table(code);
            if (table == nullptr) {
                table = python::build_line_table(code, index);
            }
            ASSERT_NE(table, nullptr);
            ASSERT_EQ(table->units, python::compat::code_units(code));
            for (Py_ssize_t unit = 0; unit < table->units; ++unit) {
                const int want = PyCode_Addr2Line(code, static_cast<int>(unit * 2));
                const SourceLocation* got = python::line_location(*table, unit);
                ASSERT_NE(got, nullptr);
                ASSERT_EQ(got->line, static_cast<std::uint32_t>(want < 0 ? 0 : want))
                    << "unit " << unit << " of " << python::detail::utf8(code->co_name, "?");
            }
            // Past the end: the first line (a frame still being set up).
            EXPECT_EQ(python::line_location(*table, table->units)->line,
                      static_cast<std::uint32_t>(code->co_firstlineno));
            ++codes;
            units += static_cast<std::size_t>(table->units);
        }
        Py_DECREF(module_code);
    }
    EXPECT_GT(codes, 500u);
    EXPECT_GT(units, 15000u); // 3.9/3.10 bytecode: about 23 000 units; 3.11+: about 60 000
}

} // namespace
} // namespace code_lines_test
