#include "source_analysis.hpp"

#define PYCROSCOPE_PYTHON 1
#include "pycroscope/python/analysis/source_findings.hpp"

#include <stdexcept>
#include <string>
#include <vector>

namespace {
bool started_here = false;
} // namespace

pycroscope::analysis::SourceFactsProvider offline_source_facts() {
    return [](const std::vector<std::string>& files, bool include_libraries) {
        if (!Py_IsInitialized()) {
            PyConfig config;
            PyConfig_InitIsolatedConfig(&config);
            config.install_signal_handlers = 0;
#ifdef PYCROSCOPE_PYTHON_EXECUTABLE
            // The interpreter the live run used, so its library folders are the same.
            const std::string executable = PYCROSCOPE_PYTHON_EXECUTABLE;
            if (!executable.empty()) {
                PyConfig_SetBytesString(&config, &config.program_name, executable.c_str());
            }
#endif
            const PyStatus status = Py_InitializeFromConfig(&config);
            PyConfig_Clear(&config);
            if (PyStatus_Exception(status)) {
                throw std::runtime_error(std::string("cannot start Python for the source pass: ") +
                                         (status.err_msg != nullptr ? status.err_msg : "unknown error"));
            }
            started_here = true;
            // The GIL is released so collect_source_facts() takes it like any thread.
            PyEval_SaveThread();
        }
        return pycroscope::python::collect_source_facts(files, include_libraries);
    };
}

void finish_offline_source_facts() {
    if (started_here && Py_IsInitialized()) {
        PyGILState_Ensure();
        Py_FinalizeEx();
        started_here = false;
    }
}
