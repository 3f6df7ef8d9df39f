#pragma once
// MemoryCollector: allocations and frees of the three PyMem domains, each
// attributed to the Python line (and, on the drain side, the native zone)
// that made it. The hooks are in memory_hooks.hpp; the drain-side model that
// turns the events into live bytes, peak, lifetimes and leaks is
// analysis/memory_model.hpp.
//
//     PyPreConfig pre; PyPreConfig_InitPythonConfig(&pre); Py_PreInitialize(&pre);
//     pycroscope::python::install_memory_hooks();        // full mode
//     pycroscope::Session<pycroscope::python::MemoryCollector> session(
//         pycroscope::python::memory_tracking_config({}, {})); // an 8 MiB ring
//     auto model = pycroscope::python::add_memory_model(session);
//     session.start();                                    // may precede Py_Initialize
//     Py_InitializeFromConfig(&config);
//     ...
//     session.stop();   // model->peak(), model->sites(), ...
//
// start() and stop() work before Py_Initialize (the peak then counts from
// interpreter start) and after it. Started on a running interpreter without
// install_memory_hooks() it installs the degraded mode (GIL held; see
// memory_hooks.hpp). Started before Py_Initialize without the hooks it
// throws: they must go in after Py_PreInitialize.

#include "pycroscope/core/fork_child.hpp"
#include "pycroscope/model/memory_model.hpp"
#include "pycroscope/core/config.hpp"
#include "pycroscope/core/error.hpp"
#include "pycroscope/core/session_core.hpp"
#include "pycroscope/python/memory/memory_hooks.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <pthread.h>

namespace pycroscope {
namespace python {

struct MemoryOptions {
    bool enabled = true;
    // 0: record every allocation (full mode). Otherwise sampling mode: about
    // one record per sample_bytes allocated, each standing for sample_bytes
    // (an unbiased estimate; frees of unsampled blocks are not recorded).
    std::uint64_t sample_bytes = 0;
    // Resolve the Python line of each allocation (off: sites are all null).
    bool attribution = true;
    // Interval of the live-bytes snapshots used for per-site growth.
    std::uint64_t snapshot_interval_ns = 50'000'000;
};

class MemoryCollector {
public:
    static constexpr const char* name = "memory";

    MemoryOptions options;

    void start(SessionCore& core) {
        if (!options.enabled) {
            return;
        }
        MemoryHooksState state = memory_hooks_state();
        if (state == MemoryHooksState::none) {
            if (!Py_IsInitialized()) {
                throw ConfigError("MemoryCollector: call pycroscope::python::install_memory_hooks() after "
                                  "Py_PreInitialize() and before Py_Initialize(), or start the session after "
                                  "Py_Initialize()");
            }
            if (!PyGILState_Check()) {
                throw ConfigError("MemoryCollector: start the session with the GIL held");
            }
            state = install_memory_hooks();
        }
        mode_ = state;
        if (options.attribution && Py_IsInitialized() && PyGILState_Check()) {
            // Now rather than in a hook, which may not when inside a realloc.
            line_table_index(PyInterpreterState_Get());
        }
        forget_in_forked_child<&detail::stop_recording>(); // the child has no drain thread
        detail::start_recording(core.epoch(), options.sample_bytes, options.attribution);
        active_ = true;
    }

    void stop(SessionCore&) noexcept {
        if (!active_) {
            return;
        }
        detail::stop_recording();
        active_ = false;
    }

    // "full" when every block since interpreter start is known, "degraded"
    // when the hooks went in after Py_Initialize; "none" when not started.
    MemoryHooksState mode() const noexcept { return mode_; }
    bool sampling() const noexcept { return options.sample_bytes != 0; }

private:
    bool active_ = false;
    MemoryHooksState mode_ = MemoryHooksState::none;
};

// The ring size full tracking wants per recording thread: 8 MiB.
constexpr std::size_t full_tracking_buffer_capacity = std::size_t{1} << 18;

// The session config for a collector with these options. Full tracking
// writes an event per allocation and per free: a default-sized ring
// (2 MiB) is drained in many small passes, and fills whenever the drain
// thread is descheduled. A ring the host sized itself is kept.
inline Config memory_tracking_config(Config config, const MemoryOptions& options) {
    if (options.enabled && options.sample_bytes == 0 && config.buffer_capacity == Config{}.buffer_capacity) {
        config.buffer_capacity = full_tracking_buffer_capacity;
    }
    return config;
}

// Adds the memory model to session's processors (before start()) with the
// collector's snapshot interval; returns it for the sinks and sections.
template <class SessionType>
std::shared_ptr<model::MemoryModel> add_memory_model(SessionType& session,
                                                        model::MemoryModelOptions model_options = {}) {
    model_options.snapshot_interval_ns = session.template collector<MemoryCollector>().options.snapshot_interval_ns;
    auto model = std::make_shared<model::MemoryModel>(model_options);
    session.core().add_processor(model);
    return model;
}

} // namespace python
} // namespace pycroscope
